/**
 * A backend for Anthropic's Messages API through the official `@anthropic-ai/sdk`: always
 * streaming, prompt caching on by default, extended thinking when configured, and the retry
 * policy of {@link ResilientCaller} (the SDK's own retries are off).
 */
import { summarizeZodError } from '@rlm/shared';
import Anthropic from '@anthropic-ai/sdk';
import { Stream } from '@anthropic-ai/sdk/core/streaming';
import { z } from 'zod';
import { InvalidOptionError, errorMessage } from '../errors.js';
import { ModelCallError, type CompleteOptions, type CompletionRequest, type CompletionResponse, type ModelBackend, type TokenUsage } from './model-backend.js';
import {
  connectionAttemptFailure,
  isFatalKind,
  kindOfHttpError,
  kindOfStreamError,
  withFix,
  type BaseUrlSource,
  type ProviderEndpoint,
} from './provider-failures.js';
import { ResilientCaller, isRetryableStatus, parseRetryAfter, type AttemptFailure, type ResilienceOptions, type ResilienceSeams } from './resilience.js';

/** `max_tokens` when neither the request nor the options say; fits every current Claude model. */
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 16_384;

/** Where calls go when neither `baseURL` nor `ANTHROPIC_BASE_URL` says otherwise (the SDK's own default). */
export const DEFAULT_ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

/** The smallest `budget_tokens` the API accepts. */
const MIN_THINKING_BUDGET = 1_024;

/** Options of {@link createAnthropicBackend}: the key, model defaults, extended thinking and prompt caching, plus the retry and timeout settings of {@link ResilienceOptions}. */
export type AnthropicBackendOptions = ResilienceOptions &
  ResilienceSeams & {
    /** The API key; default: the variable named by `apiKeyEnv`. */
    apiKey?: string;
    /** The environment variable holding the key; default `ANTHROPIC_API_KEY`. */
    apiKeyEnv?: string;
    /** Default: `ANTHROPIC_BASE_URL` from `env`, else `https://api.anthropic.com`. */
    baseURL?: string;
    /** `max_tokens` (in tokens) when the request sets no `maxOutputTokens`; default {@link DEFAULT_ANTHROPIC_MAX_TOKENS}. */
    maxTokens?: number;
    /**
     * Marks the system prompt and the last user message as cache breakpoints, so each turn reads the
     * conversation so far from the prompt cache. Default true.
     */
    promptCaching?: boolean;
    /**
     * Extended thinking with a budget (in tokens, at least 1024); default off. Thinking is not part
     * of the returned text; its tokens count as output. When `max_tokens` would not exceed the
     * budget, it is raised to budget + the requested cap, so the answer keeps the room asked for.
     */
    thinking?: { budgetTokens: number } | false;
    /** Where the key and `ANTHROPIC_BASE_URL` are read; default `process.env`. */
    env?: NodeJS.ProcessEnv;
    /** Used in errors and usage reports; default `anthropic`. */
    name?: string;
    /**
     * The `fetch` the SDK sends requests with; default the global one. A seam for tests (a fetch
     * that fails the way an unknown host does, without any DNS lookup) and for custom transports.
     */
    fetch?: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
  };

/**
 * Creates the backend. Each `complete` streams one Messages API call (text deltas go to
 * `onTextDelta`; after a retry they start over), inside the backend's {@link ResilientCaller}.
 * A failed call is a {@link ModelCallError} whose `kind` and message follow the table in
 * `provider-failures.ts`: a refused key names the variable it came from, an unknown model or host
 * names the setting to check.
 *
 * @throws {RlmError} no key is given and the key variable is unset; the one-line message names
 *   the variable (`apiKey: anthropic has no API key; set ANTHROPIC_API_KEY`, an {@link InvalidOptionError}).
 * @throws {InvalidOptionError} `maxTokens` or `thinking.budgetTokens` is out of range.
 * @throws {InvalidOptionError} a resilience option is out of range.
 */
export function createAnthropicBackend(options: AnthropicBackendOptions = {}): ModelBackend {
  const name = options.name ?? 'anthropic';
  const env = options.env ?? process.env;
  const keyVariable = options.apiKeyEnv ?? 'ANTHROPIC_API_KEY';
  const apiKey = options.apiKey || env[keyVariable];
  if (!apiKey) throw new InvalidOptionError('apiKey', `${name} has no API key; set ${keyVariable}`);

  const maxTokens = options.maxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) {
    throw new InvalidOptionError('maxTokens', `must be a positive integer, got ${maxTokens}`);
  }
  const thinkingBudget = options.thinking ? options.thinking.budgetTokens : undefined;
  if (thinkingBudget !== undefined && !(Number.isInteger(thinkingBudget) && thinkingBudget >= MIN_THINKING_BUDGET)) {
    throw new InvalidOptionError('thinking.budgetTokens', `must be an integer of at least ${MIN_THINKING_BUDGET} (the API's minimum), got ${thinkingBudget}`);
  }
  const caching = options.promptCaching !== false;

  const baseUrlSource: BaseUrlSource =
    options.baseURL !== undefined ? { from: 'option' } : env.ANTHROPIC_BASE_URL ? { from: 'env', variable: 'ANTHROPIC_BASE_URL' } : { from: 'default' };
  const endpoint: ProviderEndpoint = {
    backend: name,
    // Never undefined: the SDK would read process.env itself, ignoring `env`.
    baseUrl: options.baseURL ?? (env.ANTHROPIC_BASE_URL || DEFAULT_ANTHROPIC_BASE_URL),
    baseUrlSource,
    apiKeySource: options.apiKey ? { from: 'option' } : { from: 'env', variable: keyVariable },
  };
  const caller = new ResilientCaller(name, resilienceOf(options), options.clock, { baseUrl: endpoint.baseUrl });
  const client = new Anthropic({
    apiKey,
    baseURL: endpoint.baseUrl,
    ...(options.fetch ? { fetch: options.fetch } : {}),
    // One retry policy, the caller's.
    maxRetries: 0,
    // The caller's per-attempt signal enforces timeoutMs and names it in the error; the SDK's own
    // timer (which only covers the wait for response headers) must never fire first.
    timeout: caller.options.timeoutMs + 5_000,
    // Every failure reaches the caller as a ModelCallError; the SDK's own logging would repeat it.
    logLevel: sdkLogLevel(env.ANTHROPIC_LOG),
  });

  return {
    name,
    complete(request: CompletionRequest, { signal, onTextDelta }: CompleteOptions = {}): Promise<CompletionResponse> {
      const params = buildParams(request, { maxTokens, caching, thinkingBudget });
      return caller.call(
        request.model,
        (attemptSignal) => streamMessage(client, params, attemptSignal, onTextDelta, endpoint, request.model),
        (error) => classify(error, endpoint, request.model),
        signal,
      );
    },
  };
}

/** Only the resilience settings: ResilientCaller validates every key it is given as a number. */
function resilienceOf(options: ResilienceOptions): ResilienceOptions {
  const { maxRetries, initialDelayMs, maxDelayMs, maxRetryAfterMs, timeoutMs, maxConcurrency } = options;
  return { maxRetries, initialDelayMs, maxDelayMs, maxRetryAfterMs, timeoutMs, maxConcurrency };
}

type MessageParams = Anthropic.MessageCreateParamsStreaming;

/** The request body: system prompt apart, cache breakpoints, max_tokens and thinking. */
function buildParams(request: CompletionRequest, settings: { maxTokens: number; caching: boolean; thinkingBudget: number | undefined }): MessageParams {
  const cacheControl = { type: 'ephemeral' } as const;
  const lastUser = request.messages.findLastIndex((message) => message.role === 'user');
  const messages: Anthropic.MessageParam[] = request.messages.map((message, index) =>
    // The API rejects cache_control on an empty text block.
    settings.caching && index === lastUser && message.content !== ''
      ? { role: message.role, content: [{ type: 'text', text: message.content, cache_control: cacheControl }] }
      : { role: message.role, content: message.content },
  );
  const requested = request.maxOutputTokens ?? settings.maxTokens;
  const budget = settings.thinkingBudget;
  return {
    model: request.model,
    messages,
    ...(request.system ? { system: settings.caching ? [{ type: 'text', text: request.system, cache_control: cacheControl }] : request.system } : {}),
    // max_tokens counts thinking too and must exceed the budget.
    max_tokens: budget !== undefined && requested <= budget ? budget + requested : requested,
    ...(budget === undefined ? {} : { thinking: { type: 'enabled', budget_tokens: budget } }),
    stream: true,
  };
}

/** Runs one attempt: sends the request and assembles the streamed message. */
async function streamMessage(
  client: Anthropic,
  params: MessageParams,
  signal: AbortSignal,
  onTextDelta: ((text: string) => void) | undefined,
  endpoint: ProviderEndpoint,
  model: string,
): Promise<CompletionResponse> {
  const backend = endpoint.backend;
  // The raw response, so the events are parsed here (with zod, keeping the raw text of a bad one)
  // and an abort mid-body surfaces as an error (the SDK's iterator ends quietly on abort).
  const response = await postMessages(client, params, signal).asResponse();
  const contentType = response.headers.get('content-type') ?? '';
  if (!contentType.includes('text/event-stream')) {
    const body = await response.text();
    throw malformed(backend, model, `expected an event stream, got ${contentType || 'no content type'}`, body);
  }
  const assembler = new MessageAssembler(endpoint, model, onTextDelta);
  for await (const sse of Stream.rawEvents(response)) {
    assembler.add(sse.event, sse.data);
  }
  // Belt and braces: never return a message cut short by our own signal as if it were whole.
  signal.throwIfAborted();
  return assembler.finish();
}

/** Input counts and the output count as the stream reports them (both events carry nullable fields). */
const StreamUsage = z.object({
  input_tokens: z.number().int().nonnegative().nullish(),
  output_tokens: z.number().int().nonnegative().nullish(),
  cache_creation_input_tokens: z.number().int().nonnegative().nullish(),
  cache_read_input_tokens: z.number().int().nonnegative().nullish(),
});

/** The events this backend reads; others (`ping`, `content_block_stop`, future ones) are skipped. */
const StreamEvents = {
  message_start: z.object({ message: z.object({ model: z.string(), usage: StreamUsage }) }),
  content_block_start: z.object({ index: z.number().int().nonnegative(), content_block: z.looseObject({ type: z.string(), text: z.string().optional() }) }),
  content_block_delta: z.object({
    index: z.number().int().nonnegative(),
    delta: z.looseObject({ type: z.string(), text: z.string().optional() }),
  }),
  message_delta: z.object({ delta: z.object({ stop_reason: z.string().nullish() }), usage: StreamUsage }),
  message_stop: z.object({}),
  error: z.object({ error: z.object({ type: z.string(), message: z.string() }) }),
} as const;

/** The message once the stream has ended: what a complete stream must have delivered. */
const AssembledMessage = z.object({
  model: z.string(),
  text: z.string(),
  stopReason: z.string().optional(),
  usage: z.object({
    input_tokens: z.number({ error: 'no input_tokens in message_start or message_delta' }).int().nonnegative(),
    output_tokens: z.number({ error: 'no output_tokens in message_start or message_delta' }).int().nonnegative(),
    cache_creation_input_tokens: z.number().int().nonnegative().optional(),
    cache_read_input_tokens: z.number().int().nonnegative().optional(),
  }),
});

type UsageKey = keyof z.infer<typeof StreamUsage>;

/** Error types the API sends (in a body or an `error` event) for failures worth retrying. */
const RETRYABLE_ERROR_TYPES = new Set(['overloaded_error', 'rate_limit_error', 'api_error', 'timeout_error']);

/** Builds the message from the stream's events, in order. */
class MessageAssembler {
  #started = false;
  #stopped = false;
  #model: string | undefined;
  #stopReason: string | undefined;
  readonly #usage: Record<UsageKey, number | undefined> = {
    input_tokens: undefined,
    output_tokens: undefined,
    cache_creation_input_tokens: undefined,
    cache_read_input_tokens: undefined,
  };
  /** Text by content-block index; thinking and other blocks are not kept. */
  readonly #text = new Map<number, string>();

  readonly backend: string;

  constructor(
    readonly endpoint: ProviderEndpoint,
    readonly model: string,
    readonly onTextDelta: ((text: string) => void) | undefined,
  ) {
    this.backend = endpoint.backend;
  }

  add(event: string | null, data: string): void {
    if (event === 'ping' || !data || this.#stopped) return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch (error) {
      throw malformed(this.backend, this.model, `an event is not JSON (${event ?? 'no event name'})`, data, error);
    }
    const type = event ?? (isRecord(json) && typeof json.type === 'string' ? json.type : undefined);
    const parse = <T extends z.ZodType>(schema: T): z.infer<T> => {
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        throw malformed(this.backend, this.model, `a ${type} event does not match the API: ${summarizeZodError(parsed.error)}`, data, parsed.error);
      }
      return parsed.data;
    };
    if (type === 'error') {
      const { type: errorType, message } = parse(StreamEvents.error).error;
      const kind = kindOfStreamError(errorType);
      throw new ModelCallError(
        withFix(`${this.backend} ${this.model}: ${errorType} during the stream: ${message}`, kind, this.endpoint, this.model, { reason: message }),
        this.backend,
        this.model,
        { isRetryable: RETRYABLE_ERROR_TYPES.has(errorType) && !isFatalKind(kind), responseBody: snippet(data) },
        { kind },
      );
    }
    if (type !== 'message_start' && !this.#started && type !== undefined && Object.hasOwn(StreamEvents, type)) {
      throw malformed(this.backend, this.model, `${type} before message_start`, data);
    }
    switch (type) {
      case 'message_start': {
        const { message } = parse(StreamEvents.message_start);
        this.#started = true;
        this.#model = message.model;
        this.#mergeUsage(message.usage);
        return;
      }
      case 'content_block_start': {
        const { index, content_block: block } = parse(StreamEvents.content_block_start);
        if (block.type === 'text') this.#appendText(index, block.text ?? '');
        return;
      }
      case 'content_block_delta': {
        const { index, delta } = parse(StreamEvents.content_block_delta);
        if (delta.type === 'text_delta') {
          if (typeof delta.text !== 'string') throw malformed(this.backend, this.model, 'a text_delta without text', data);
          this.#appendText(index, delta.text);
        }
        return;
      }
      case 'message_delta': {
        const { delta, usage } = parse(StreamEvents.message_delta);
        if (delta.stop_reason) this.#stopReason = delta.stop_reason;
        this.#mergeUsage(usage);
        return;
      }
      case 'message_stop':
        this.#stopped = true;
        return;
      default:
        // ping, content_block_stop, and event types added after this was written.
        return;
    }
  }

  /** The assembled message; throws when the stream ended before `message_stop`. */
  finish(): CompletionResponse {
    if (!this.#started) throw malformed(this.backend, this.model, 'the response has no message_start event', '');
    if (!this.#stopped) {
      // Like a dropped connection: the server went away mid-answer, and asking again may work.
      throw new ModelCallError(`${this.backend} ${this.model}: the stream ended before message_stop`, this.backend, this.model, {
        isRetryable: true,
      });
    }
    const text = [...this.#text.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, piece]) => piece)
      .join('');
    const assembled = { model: this.#model, text, stopReason: this.#stopReason, usage: definedOnly(this.#usage) };
    const parsed = AssembledMessage.safeParse(assembled);
    if (!parsed.success) {
      throw malformed(this.backend, this.model, `the streamed message is incomplete: ${summarizeZodError(parsed.error)}`, JSON.stringify(assembled));
    }
    const message = parsed.data;
    return {
      text: message.text,
      model: message.model,
      usage: toTokenUsage(message.usage),
      ...(message.stopReason === undefined ? {} : { stopReason: message.stopReason }),
    };
  }

  #appendText(index: number, text: string): void {
    this.#text.set(index, (this.#text.get(index) ?? '') + text);
    if (text) this.onTextDelta?.(text);
  }

  /** The counts are cumulative totals: a later non-null value replaces an earlier one. */
  #mergeUsage(usage: z.infer<typeof StreamUsage>): void {
    for (const key of Object.keys(this.#usage) as UsageKey[]) {
      const value = usage[key];
      if (value !== null && value !== undefined) this.#usage[key] = value;
    }
  }
}

/** Anthropic's `input_tokens` excludes cache reads and writes; {@link TokenUsage.inputTokens} includes them. */
function toTokenUsage(usage: z.infer<typeof AssembledMessage>['usage']): TokenUsage {
  const write = usage.cache_creation_input_tokens;
  const read = usage.cache_read_input_tokens;
  return {
    inputTokens: usage.input_tokens + (write ?? 0) + (read ?? 0),
    outputTokens: usage.output_tokens,
    ...(read === undefined ? {} : { cacheReadTokens: read }),
    ...(write === undefined ? {} : { cacheWriteTokens: write }),
  };
}

/**
 * Maps a failed attempt to the caller's terms. Retryable: 408, 409, 429, 5xx (529 overloaded
 * included), an error type worth retrying, dropped connections, and whatever the API marks with
 * `x-should-retry: true`; not retryable: other 4xx, `x-should-retry: false`, malformed answers,
 * and the fatal kinds (a refused key, an unknown model or host) whatever the headers say.
 * A refused connection is retried at most twice (see `connectionAttemptFailure`).
 */
function classify(error: unknown, endpoint: ProviderEndpoint, model: string): AttemptFailure {
  const backend = endpoint.backend;
  if (error instanceof ModelCallError) {
    return {
      error,
      retryable: error.details.isRetryable === true,
      ...(error.details.retryAfterMs === undefined ? {} : { retryAfterMs: error.details.retryAfterMs }),
    };
  }
  if (error instanceof Anthropic.APIError && error.status !== undefined) {
    const status = error.status;
    // A body that is not the API's JSON (a proxy's HTML page) is only in `message`, after the status.
    const reason = error.apiMessage ?? error.message.replace(/^\d{3} /, '');
    const kind = kindOfHttpError(status, { type: error.type, reason });
    const shouldRetry = error.headers?.get('x-should-retry');
    const retryable = isFatalKind(kind)
      ? false
      : shouldRetry === 'true'
        ? true
        : shouldRetry === 'false'
          ? false
          : isRetryableStatus(status) || (error.type !== null && RETRYABLE_ERROR_TYPES.has(error.type));
    const retryAfterMs = retryable ? parseRetryAfter(error.headers) : undefined;
    const message = withFix(`${backend} ${model}: HTTP ${status}${error.type ? ` ${error.type}` : ''}: ${reason}`, kind, endpoint, model, { status, reason });
    const responseBody = snippet(error.error === undefined ? reason : JSON.stringify(error.error));
    return {
      error: new ModelCallError(
        message,
        backend,
        model,
        {
          statusCode: status,
          isRetryable: retryable,
          responseBody,
          ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
        },
        { cause: error, kind },
      ),
      retryable,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  const connection = connectionAttemptFailure(error, endpoint, model, () => `${backend} ${model}: connection failed: ${rootMessage(error)}`);
  if (connection) return connection;
  return {
    error: new ModelCallError(`${backend} ${model}: ${rootMessage(error)}`, backend, model, { isRetryable: false }, { cause: error }),
    retryable: false,
  };
}

function malformed(backend: string, model: string, problem: string, raw: string, cause?: unknown): ModelCallError {
  return new ModelCallError(
    `${backend} ${model}: malformed response: ${problem}`,
    backend,
    model,
    { isRetryable: false, responseBody: snippet(raw) },
    cause === undefined ? undefined : { cause },
  );
}

/** The innermost message of an error chain (`fetch failed` says less than its cause). */
function rootMessage(error: unknown): string {
  const messages: string[] = [];
  for (let current = error, depth = 0; current !== undefined && current !== null && depth < 5; depth++) {
    const message = errorMessage(current).replace(/\.$/, '');
    if (message && !messages.includes(message)) messages.push(message);
    current = (current as { cause?: unknown }).cause;
  }
  return messages.join(': ') || 'unknown error';
}

const snippet = (raw: string) => raw.slice(0, 2_000);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function definedOnly<T extends Record<string, number | undefined>>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const SDK_LOG_LEVELS = ['off', 'error', 'warn', 'info', 'debug'] as const;

/** `ANTHROPIC_LOG` when it names a level, so SDK debugging still works; otherwise quiet. */
function sdkLogLevel(value: string | undefined): (typeof SDK_LOG_LEVELS)[number] {
  return SDK_LOG_LEVELS.find((level) => level === value) ?? 'off';
}

/** Models this process has called through `messages.create` once already. */
const introducedModels = new Set<string>();

/**
 * POSTs /v1/messages. The first call for a model goes through `messages.create`, which prints the
 * SDK's own warning when the model is being retired; later calls post directly, because that
 * warning is a `console.warn` on every call and a run makes hundreds. For our parameters (no
 * workspace, profile or tools) both send the same request.
 */
function postMessages(client: Anthropic, params: MessageParams, signal: AbortSignal) {
  if (!introducedModels.has(params.model)) {
    introducedModels.add(params.model);
    return client.messages.create(params, { signal });
  }
  return client.post<unknown>('/v1/messages', { body: params, stream: true, signal });
}
