/**
 * How the service answers errors: always `{ "error": { "code", "message" } }` with the code's HTTP
 * status (service-types.ts, `HTTP_STATUS_OF`). One error handler maps every failure to that shape —
 * a {@link ServiceError} as it is, Fastify's own (body too large, malformed JSON, bad content type)
 * to our codes, anything else to a 500 `internal` whose message says nothing of the internals (the
 * log line has the error). Messages never echo a request header.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { RlmError } from '../../errors.js';
import { ServiceError, type ServiceErrorCode } from '../service-types.js';

/** The body of every error response. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

/** Seconds a client is told to wait when the store gave none: a queue slot frees when a run ends. */
const DEFAULT_RETRY_AFTER_SECONDS: Partial<Record<ServiceErrorCode, number>> = { queue_full: 5, shutting_down: 5, unavailable: 5 };

/**
 * Codes no retry can fix; the header tells the official OpenAI SDKs (which retry 429 and 5xx on
 * their own) not to try again. (openai-routes.ts sends it with a failed run's 502 too.)
 */
const NOT_RETRYABLE: ReadonlySet<ServiceErrorCode> = new Set(['budget_exhausted']);

/** Answers `error` in our shape, with `Retry-After` for a 429/503 and `x-should-retry: false` for the hopeless ones. */
export function sendServiceError(reply: FastifyReply, error: ServiceError): FastifyReply {
  const retryAfter = error.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS[error.kind];
  if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(retryAfter))));
  if (NOT_RETRYABLE.has(error.kind)) reply.header('x-should-retry', 'false');
  if (error.kind === 'unauthorized') reply.header('www-authenticate', 'Bearer');
  return reply.code(error.status).type('application/json; charset=utf-8').send(errorBody(error.kind, error.message));
}

/** Fastify's own request errors, by their `code`, as ours. */
function fromFastifyError(error: FastifyError, maxBodyBytes: number): ServiceError | undefined {
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413)
    return new ServiceError(
      'payload_too_large',
      `the request body is larger than ${maxBodyBytes} bytes; send a smaller one or raise the server's --max-body-mb`,
    );
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ServiceError('invalid_request', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ServiceError('invalid_request', 'the request body is empty; send a JSON object');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ServiceError('invalid_request', 'unsupported Content-Type; send the body as application/json');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ServiceError('invalid_request', 'the Content-Length does not match the body');
    default:
      break;
  }
  // A body secure-json-parse refused (`__proto__` keys) and the like: the client's fault, said plainly.
  if (error instanceof SyntaxError) return new ServiceError('invalid_request', 'the request body is not valid JSON');
  if (typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500)
    return new ServiceError('invalid_request', 'the request could not be read');
  return undefined;
}

/** Installs the error and not-found handlers on the root instance (children inherit them). */
export function installErrorHandling(app: FastifyInstance, options: { maxBodyBytes: number }): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    if (ServiceError.isInstance(error)) {
      // A drain's 503s are expected by the hundred; a database that does not answer is not.
      if (error.status >= 500 && error.kind !== 'shutting_down') request.log.error({ err: error }, 'request failed');
      return sendServiceError(reply, error);
    }
    const mapped = isFastifyError(error) ? fromFastifyError(error, options.maxBodyBytes) : undefined;
    if (mapped) return sendServiceError(reply, mapped);
    request.log.error({ err: error }, 'request failed with an unexpected error');
    return sendServiceError(reply, new ServiceError('internal', `internal error; quote request id ${request.id} to the operator`));
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendServiceError(reply, new ServiceError('not_found', `no route ${request.method} ${pathOf(request.url)}`)),
  );
}

function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && !RlmError.isInstance(error);
}

/** The URL's path without its query (a query may carry a token a careless client put there). */
export function pathOf(url: string): string {
  const question = url.indexOf('?');
  const path = question === -1 ? url : url.slice(0, question);
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

// ---------------------------------------------------------------------------------------------
// zod → messages naming the field

/**
 * Parses `value` with `schema`; a mismatch becomes a 400 `invalid_request` whose message names
 * every offending field (`limits.maxIterations: must be an integer`), never the value sent.
 * @param where what `value` is, for an issue at its root (`body`, `query`).
 */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  throw new ServiceError('invalid_request', describeIssues(result.error.issues, where), { cause: result.error });
}

/** `path: problem; path: problem`, at most the first 10. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], where: string): string {
  const parts: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) parts.push(`${formatPath([...issue.path, key], where)}: is not a known field`);
    } else {
      parts.push(`${formatPath(issue.path, where)}: ${describeIssue(issue)}`);
    }
  }
  const shown = parts.slice(0, 10);
  if (parts.length > shown.length) shown.push(`and ${parts.length - shown.length} more`);
  return shown.join('; ');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (!('input' in issue) || issue.input === undefined) return 'is required';
      return `must be ${TYPE_NAMES[issue.expected] ?? `of type ${issue.expected}`}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      return boundMessage(issue.origin, 'at least', 'greater than', issue.minimum, issue.inclusive ?? true);
    case 'too_big':
      return boundMessage(issue.origin, 'at most', 'less than', issue.maximum, issue.inclusive ?? true);
    default:
      return issue.message;
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
};

function boundMessage(origin: string, inclusiveWord: string, strictWord: string, bound: number | bigint, inclusive: boolean): string {
  const word = inclusive ? inclusiveWord : strictWord;
  if (origin === 'string') return Number(bound) === 1 && inclusiveWord === 'at least' ? 'must not be empty' : `must be ${word} ${bound} characters long`;
  if (origin === 'array') return Number(bound) === 1 && inclusiveWord === 'at least' ? 'must not be empty' : `must have ${word} ${bound} items`;
  return `must be ${word} ${bound}`;
}

function formatPath(path: readonly PropertyKey[], where: string): string {
  if (path.length === 0) return where;
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}
