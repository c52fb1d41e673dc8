/**
 * The one table from a provider's failures to {@link ModelCallError} kinds, and the fixes their
 * messages name. The HTTP backends share it, so a refused key, an unknown model or a server that is
 * not running reads the same from Anthropic as from vLLM:
 *
 * | failure | kind | retried |
 * | --- | --- | --- |
 * | 401 | `auth` | no |
 * | 402, 403 | `permission` | no |
 * | 404; the provider's "model not found" (OpenAI's `model_not_found` code, a 400 saying the model does not exist) | `model_not_found` | no |
 * | unknown host (`ENOTFOUND`) | `unreachable` | no |
 * | connection refused (`ECONNREFUSED`), DNS down (`EAI_AGAIN`), connect timeout | `unreachable` | at most twice |
 * | 429 | `rate_limited` | yes |
 * | 408; an attempt past `timeoutMs` | `timeout` | yes |
 * | 400, 413, 422 and other 4xx | `invalid_request` | no |
 * | 409, 5xx, overloaded, a dropped connection, an unreadable answer | `provider_error` | yes (an unreadable answer: no) |
 */
import { ModelCallError, type ModelCallErrorKind } from './model-backend.js';
import { REFUSED_CONNECTION_MAX_DELAY_MS, REFUSED_CONNECTION_MAX_RETRIES, connectionFailureOf, type AttemptFailure } from './resilience.js';

/** Where a backend's API key came from, so an `auth` error can say what to check. */
export type ApiKeySource =
  /** The backend's `apiKey` option. */
  | { from: 'option' }
  /** This environment variable. */
  | { from: 'env'; variable: string }
  /** No key was sent; `variable` is where one would have been read, if anywhere. */
  | { from: 'none'; variable?: string | undefined };

/** Where a backend's base URL came from, so an `unreachable` or `model_not_found` error can say what to check. */
export type BaseUrlSource =
  /** The backend's `baseURL` option (the CLI's `--base-url`, `--sub-base-url`, `baseURL` in the config file). */
  | { from: 'option' }
  /** This environment variable (`ANTHROPIC_BASE_URL`, `OLLAMA_HOST`, `AZURE_OPENAI_ENDPOINT`). */
  | { from: 'env'; variable: string }
  /** The backend's built-in URL (the provider's public API). */
  | { from: 'default' };

/** What an HTTP backend talks to, as its error messages name it. */
export interface ProviderEndpoint {
  /** The backend's name, e.g. `anthropic`, `openrouter`. */
  backend: string;
  /** The base URL calls go to. */
  baseUrl: string;
  baseUrlSource: BaseUrlSource;
  apiKeySource: ApiKeySource;
}

/** The settings that name a model, for the `model_not_found` fix. */
const MODEL_SETTINGS = '--model or --sub-model, or model: in the config file';

/** What the provider said about an HTTP error, as far as it said it. */
export interface ProviderErrorInfo {
  /** The error's type (`authentication_error`, `invalid_request_error`…). */
  type?: string | null | undefined;
  /** The error's code (OpenAI's `model_not_found`…), which some servers send as a number. */
  code?: unknown;
  /** The provider's message. */
  reason?: string | undefined;
}

/** Error types and codes that mean "no such model", whatever the status. */
const MODEL_NOT_FOUND_CODES = new Set(['model_not_found', 'not_found_error', 'DeploymentNotFound', 'NotFoundError']);

/** A message saying the model does not exist (OpenAI, vLLM, Ollama, OpenRouter and friends word it differently). */
const UNKNOWN_MODEL_MESSAGE =
  /\b(?:model|deployment)\b[^.\n]*\b(?:does not exist|do(?:es)? not exist|not found|is not a valid model)|\b(?:unknown|invalid|no such) model\b|not a valid model id/i;

/** The kind of an HTTP error answer (see the table at the top). */
export function kindOfHttpError(status: number, info: ProviderErrorInfo = {}): ModelCallErrorKind {
  if (status === 401) return 'auth';
  const code = typeof info.code === 'string' ? info.code : undefined;
  if (status === 404 || (status >= 400 && status < 500 && ((code && MODEL_NOT_FOUND_CODES.has(code)) || info.type === 'not_found_error'))) {
    return 'model_not_found';
  }
  if (status === 402 || status === 403) return 'permission';
  if ((status === 400 || status === 422) && info.reason && UNKNOWN_MODEL_MESSAGE.test(info.reason)) return 'model_not_found';
  if (status === 429) return 'rate_limited';
  if (status === 408) return 'timeout';
  if (status === 409 || status >= 500) return 'provider_error';
  if (status >= 400) return 'invalid_request';
  return 'provider_error';
}

/** The kind of an error the provider reported inside a stream, by its type (Anthropic's names). */
export function kindOfStreamError(type: string): ModelCallErrorKind {
  switch (type) {
    case 'authentication_error':
      return 'auth';
    case 'permission_error':
    case 'billing_error':
      return 'permission';
    case 'not_found_error':
      return 'model_not_found';
    case 'rate_limit_error':
      return 'rate_limited';
    case 'timeout_error':
      return 'timeout';
    case 'invalid_request_error':
    case 'request_too_large':
      return 'invalid_request';
    default:
      return 'provider_error';
  }
}

/** True for the kinds no retry can fix: they are never retried, whatever the provider's headers say. */
export function isFatalKind(kind: ModelCallErrorKind): boolean {
  return kind === 'auth' || kind === 'permission' || kind === 'model_not_found' || kind === 'unreachable';
}

/**
 * What to do about a failure of `kind`, to follow the provider's words in the message, or
 * undefined when the message says enough (rate limits, server errors…). `status` tells a billing
 * refusal (402) from a forbidden model (403); `reason` whether a 404 named the model.
 */
export function fixFor(
  kind: ModelCallErrorKind,
  endpoint: ProviderEndpoint,
  model: string,
  context: { status?: number; reason?: string } = {},
): string | undefined {
  switch (kind) {
    case 'auth':
      return authFix(endpoint.apiKeySource);
    case 'permission':
      return context.status === 402
        ? `the account of the API key${keyOrigin(endpoint.apiKeySource)} cannot pay for this call: check its billing and credits with the provider`
        : `the API key${keyOrigin(endpoint.apiKeySource)} may not use the model "${model}" or the endpoint ${endpoint.baseUrl}: check the key's access with the provider, or choose another model (${MODEL_SETTINGS})`;
    case 'model_not_found': {
      const fix = `${endpoint.baseUrl} does not know the model "${model}": check the model name (${MODEL_SETTINGS})`;
      // A 404 that says nothing of a model may be a wrong path: a base URL missing its /v1, say.
      const namedTheModel = context.reason !== undefined && (/model|deployment/i.test(context.reason) || context.reason.includes(model));
      return namedTheModel ? fix : `${fix}, or the base URL if the model name is right (${baseUrlFix(endpoint)})`;
    }
    default:
      return undefined;
  }
}

/** `head` with the fix for `kind` appended: `<head>; <fix>`. */
export function withFix(
  head: string,
  kind: ModelCallErrorKind,
  endpoint: ProviderEndpoint,
  model: string,
  context: { status?: number; reason?: string } = {},
): string {
  const fix = fixFor(kind, endpoint, model, context);
  // The provider's sentence may end in a full stop; `.;` reads badly.
  return fix === undefined ? head : `${head.replace(/\.+\s*$/, '')}; ${fix}`;
}

function authFix(source: ApiKeySource): string {
  switch (source.from) {
    case 'option':
      return 'the provider refused the API key: check the apiKey option';
    case 'env':
      return `the provider refused the API key: check ${source.variable}`;
    case 'none':
      return source.variable
        ? `the server wants an API key and none was sent: set ${source.variable}`
        : 'the server wants an API key and none was sent: name the variable holding it with apiKeyEnv (in the config file, or the backend option)';
  }
}

/** ` (from ANTHROPIC_API_KEY)`, ` (the apiKey option)`, or nothing when no key was sent. */
function keyOrigin(source: ApiKeySource): string {
  if (source.from === 'env') return ` (from ${source.variable})`;
  if (source.from === 'option') return ' (the apiKey option)';
  return '';
}

/** Which setting to check for a wrong or unreachable base URL. */
export function baseUrlFix(endpoint: ProviderEndpoint): string {
  const source = endpoint.baseUrlSource;
  switch (source.from) {
    case 'option':
      return "check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)";
    case 'env':
      return `check ${source.variable} (or set --base-url)`;
    case 'default':
      return `that is ${endpoint.backend}'s default base URL: check this machine's network (DNS, proxy, firewall), or set another with --base-url`;
  }
}

/**
 * A failed connection as an {@link AttemptFailure}, or undefined when `error` is not one:
 * - an unknown host: `unreachable`, not retried;
 * - refused, DNS unavailable, a connect timeout: retried at most {@link REFUSED_CONNECTION_MAX_RETRIES}
 *   times, waiting at most {@link REFUSED_CONNECTION_MAX_DELAY_MS} each, then `unreachable`, the
 *   message saying how many attempts were made;
 * - dropped: `provider_error`, retried as the backend's options say, with `droppedMessage` as its message.
 */
export function connectionAttemptFailure(
  error: unknown,
  endpoint: ProviderEndpoint,
  model: string,
  droppedMessage: () => string,
  responseBody?: string,
): AttemptFailure | undefined {
  const failure = connectionFailureOf(error);
  if (!failure) return undefined;
  const { backend, baseUrl } = endpoint;
  const prefix = `${backend} ${model}`;
  const body = responseBody === undefined ? {} : { responseBody };
  const unreachable = (message: string, isRetryable: boolean) =>
    new ModelCallError(message, backend, model, { isRetryable, ...body }, { cause: error, kind: 'unreachable', baseUrl });
  const code = failure.code ? `, ${failure.code}` : '';
  if (failure.kind === 'unknown_host') {
    const error = unreachable(`${prefix}: cannot resolve the host of ${baseUrl} (unknown host${code}); ${baseUrlFix(endpoint)}`, false);
    return { error, retryable: false };
  }
  if (failure.kind === 'dropped') {
    return {
      error: new ModelCallError(droppedMessage(), backend, model, { isRetryable: true, ...body }, { cause: error, kind: 'provider_error', baseUrl }),
      retryable: true,
    };
  }
  const describe = (attempts: number): string => {
    const after = `after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`;
    switch (failure.kind) {
      case 'refused':
        return `${prefix}: cannot connect to ${baseUrl} (connection refused) ${after}: is the server running? ${baseUrlFix(endpoint)}`;
      case 'dns_unavailable':
        return `${prefix}: cannot resolve the host of ${baseUrl} (DNS unavailable${code}) ${after}: check this machine's DNS and network; ${baseUrlFix(endpoint)}`;
      default:
        return `${prefix}: cannot connect to ${baseUrl} (no answer to the connection${code}) ${after}: is the address right and reachable from this machine? ${baseUrlFix(endpoint)}`;
    }
  };
  return {
    error: unreachable(describe(1), true),
    retryable: true,
    maxRetries: REFUSED_CONNECTION_MAX_RETRIES,
    maxDelayMs: REFUSED_CONNECTION_MAX_DELAY_MS,
    finalError: (attempts) => unreachable(describe(attempts), false),
  };
}
