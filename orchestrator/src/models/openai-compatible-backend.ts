/**
 * A backend for OpenAI's Chat Completions API and the servers that speak it (OpenRouter, vLLM,
 * Ollama, Gemini, Azure, …), through the official `openai` SDK. It streams every call (so long
 * answers never sit idle on a connection), assembles text and usage from the deltas, and leaves
 * retries, timeouts and the concurrency cap to {@link ResilientCaller}: the SDK's own retries are off.
 *
 * Servers differ in which request fields they take; {@link ChatDialect} says what one server
 * takes and {@link chatCompletionParams} is the one place that decides what is sent.
 * Presets for the common providers are in `openai-presets.ts`.
 */
import { summarizeZodError } from '@rlm/shared';
import { AsyncLocalStorage } from 'node:async_hooks';
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { InvalidOptionError, RlmError, errorMessage } from '../errors.js';
import { ModelCallError, type CompleteOptions, type CompletionRequest, type CompletionResponse, type ModelBackend, type TokenUsage } from './model-backend.js';
import {
  connectionAttemptFailure,
  isFatalKind,
  kindOfHttpError,
  withFix,
  type ApiKeySource,
  type BaseUrlSource,
  type ProviderEndpoint,
} from './provider-failures.js';
import { ResilientCaller, isRetryableStatus, parseRetryAfter, type AttemptFailure, type ResilienceOptions, type ResilienceSeams } from './resilience.js';

/** A `fetch` as the SDKs take it. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Which field carries the output-token cap. `auto`: `max_completion_tokens` for reasoning models, else `max_tokens`. */
export type TokenLimitParameter = 'max_tokens' | 'max_completion_tokens' | 'auto';

/**
 * How a server takes a reasoning effort:
 * - `reasoning_effort`: the top-level field, whatever the model (the server decides);
 * - `reasoning_effort-for-reasoning-models`: the top-level field, only to reasoning models (OpenAI, Azure reject it elsewhere);
 * - `reasoning-object`: `reasoning: { effort }` (OpenRouter, Vercel AI Gateway);
 * - `unsupported`: the server has no such setting; asking for one is an error when the backend is created.
 */
export type ReasoningEffortParameter = 'reasoning_effort' | 'reasoning_effort-for-reasoning-models' | 'reasoning-object' | 'unsupported';

/** Effort levels as OpenAI names them; other servers accept a subset. */
export type ReasoningEffort = 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh';

/** What one server accepts in a chat completion request. */
export interface ChatDialect {
  /** Which field carries {@link CompletionRequest.maxOutputTokens}: `max_tokens`, `max_completion_tokens`, or `auto` (the second for reasoning models, the first for others). */
  tokenLimitParameter: TokenLimitParameter;
  /** How a reasoning effort is sent, if at all (see {@link ReasoningEffortParameter}). */
  reasoningEffortParameter: ReasoningEffortParameter;
  /**
   * Send `stream_options: { include_usage: true }` when streaming. Servers that reject the field
   * get `false`; their usage is read from whatever the stream carries, and is zero when it carries none.
   */
  streamOptions: boolean;
  /** Stream the answer; `false` for servers that cannot (one JSON body, one `onTextDelta` call). */
  stream: boolean;
  /** The server reports each call's cost in `usage.cost` (OpenRouter), so a budget in dollars needs no price table. */
  reportsCost?: boolean;
}

/** The dialect of OpenAI's own API: everything supported, caps picked per model. */
export const OPENAI_DIALECT: Readonly<ChatDialect> = Object.freeze({
  tokenLimitParameter: 'auto',
  reasoningEffortParameter: 'reasoning_effort-for-reasoning-models',
  streamOptions: true,
  stream: true,
});

/** Generation settings sent with every call of a backend. */
export interface GenerationSettings {
  /** Sent per {@link ChatDialect.reasoningEffortParameter}. */
  reasoningEffort?: ReasoningEffort;
  /** Sampling temperature; never sent to reasoning models, which reject it. */
  temperature?: number;
  /** Output cap when the request names none; default: none sent (the server's default). */
  defaultMaxOutputTokens?: number;
}

/** Options of {@link createOpenAICompatibleBackend}: the endpoint, key, model, dialect details and generation settings, plus the retry and timeout settings of {@link ResilienceOptions}. */
export interface OpenAICompatibleOptions extends ResilienceOptions, ResilienceSeams, GenerationSettings, Partial<ChatDialect> {
  /** Used in errors and usage reports; default `openai`. */
  name?: string;
  /** The API's base URL, ending before `/chat/completions`; default `https://api.openai.com/v1`. */
  baseURL?: string;
  /** The API key; default: the variable named by `apiKeyEnv`. */
  apiKey?: string;
  /** The environment variable holding the key; default `OPENAI_API_KEY`. */
  apiKeyEnv?: string;
  /** Servers that need no key (a local vLLM) pass `false`. Default true. */
  requiresApiKey?: boolean;
  /** Headers sent with every request (gateway routing, attribution). */
  defaultHeaders?: Record<string, string>;
  /** Where keys are read from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * The `fetch` the SDK sends requests with; default the global one. A seam for tests (a fetch
   * that fails the way an unknown host does, without any DNS lookup) and for custom transports.
   */
  fetch?: FetchFunction;
}

/** The OpenAI API, where {@link createOpenAICompatibleBackend} sends calls unless told otherwise. */
export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/**
 * Creates a backend for any server speaking the Chat Completions API. Defaults to OpenAI's API
 * and dialect; for other providers prefer `createPresetBackend`, which knows their quirks.
 * A failed call is a {@link ModelCallError} whose `kind` and message follow the table in
 * `provider-failures.ts`: a refused key names the variable it came from, an unknown model or host
 * names the setting to check.
 *
 * @throws {InvalidOptionError} no key is given and the key variable is unset: `apiKey: openai has no API key; set OPENAI_API_KEY`.
 * @throws {InvalidOptionError} a resilience option is out of range.
 */
export function createOpenAICompatibleBackend(options: OpenAICompatibleOptions = {}): ModelBackend {
  const name = options.name ?? 'openai';
  const apiKeyEnv = options.apiKeyEnv ?? 'OPENAI_API_KEY';
  const apiKey = resolveApiKey(name, { apiKey: options.apiKey, apiKeyEnv, requiresApiKey: options.requiresApiKey ?? true, env: options.env ?? process.env });
  const baseURL = options.baseURL ?? DEFAULT_OPENAI_BASE_URL;
  const resilience = new ResilientCaller(name, resilienceOptionsOf(options), options.clock, { baseUrl: baseURL });
  const dialect = dialectOf(options, OPENAI_DIALECT);
  const client = new OpenAI({
    ...sdkClientOptions(resilience.options.timeoutMs, options.defaultHeaders, options.fetch),
    apiKey: apiKey ?? 'no-key',
    baseURL,
    // The SDK would read these from process.env and send them to whatever server this is.
    organization: null,
    project: null,
  });
  return new ChatCompletionsBackend(name, client, resilience, dialect, options, {
    apiKeySource: apiKeySourceOf(options.apiKey, apiKeyEnv, apiKey),
    baseUrlSource: options.baseURL === undefined ? { from: 'default' } : { from: 'option' },
  });
}

/** Where the key in use came from: the `apiKey` option, the variable, or nowhere (none sent). */
export function apiKeySourceOf(apiKeyOption: string | undefined, apiKeyEnv: string | undefined, resolved: string | undefined): ApiKeySource {
  if (apiKeyOption) return { from: 'option' };
  if (resolved && apiKeyEnv) return { from: 'env', variable: apiKeyEnv };
  return { from: 'none', variable: apiKeyEnv };
}

/**
 * The key from `apiKey`, else from `env[apiKeyEnv]`; undefined when neither is set and no key is required.
 *
 * @throws {InvalidOptionError} a key is required and there is none: `apiKey: <name> has no API key; set <apiKeyEnv>`.
 */
export function resolveApiKey(
  name: string,
  source: { apiKey?: string | undefined; apiKeyEnv?: string | undefined; requiresApiKey: boolean; env: NodeJS.ProcessEnv },
): string | undefined {
  const apiKey = source.apiKey || (source.apiKeyEnv ? source.env[source.apiKeyEnv] : undefined) || undefined;
  if (!apiKey && source.requiresApiKey) {
    throw new InvalidOptionError('apiKey', source.apiKeyEnv ? `${name} has no API key; set ${source.apiKeyEnv}` : `${name} has no API key; pass apiKey`);
  }
  return apiKey;
}

/**
 * The client options every backend shares: no SDK retries, no SDK logging, a timeout that leaves
 * the attempt's own to fire first, and `fetch` (default the global one) recorded for error reports.
 */
export function sdkClientOptions(timeoutMs: number, defaultHeaders: Record<string, string> | undefined, fetch?: FetchFunction) {
  return {
    maxRetries: 0,
    // The SDK's timeout only covers the wait for response headers; ResilientCaller's covers the whole
    // attempt and says which setting to raise. The margin lets that one fire first.
    timeout: Math.min(timeoutMs + 5_000, 2 ** 31 - 1),
    logLevel: 'off' as const,
    fetch: recordingFetch(fetch ?? globalThis.fetch),
    ...(defaultHeaders ? { defaultHeaders } : {}),
  };
}

/** The {@link ResilienceOptions} among a backend's options (ResilientCaller checks every key it is given). */
export function resilienceOptionsOf(options: ResilienceOptions): ResilienceOptions {
  const { maxRetries, initialDelayMs, maxDelayMs, maxRetryAfterMs, timeoutMs, maxConcurrency } = options;
  return { maxRetries, initialDelayMs, maxDelayMs, maxRetryAfterMs, timeoutMs, maxConcurrency };
}

/** Options over preset: the dialect a backend ends up with. */
export function dialectOf(options: Partial<ChatDialect>, base: Readonly<ChatDialect>): ChatDialect {
  return {
    tokenLimitParameter: options.tokenLimitParameter ?? base.tokenLimitParameter,
    reasoningEffortParameter: options.reasoningEffortParameter ?? base.reasoningEffortParameter,
    streamOptions: options.streamOptions ?? base.streamOptions,
    stream: options.stream ?? base.stream,
    ...((options.reportsCost ?? base.reportsCost) ? { reportsCost: true } : {}),
  };
}

/**
 * Reasoning models: OpenAI's o-series and GPT-5 family, by the last segment of the id (so
 * OpenRouter's `openai/o3` and Portkey's `@openai/gpt-5` count). They take
 * `max_completion_tokens` and reject `max_tokens` and `temperature`.
 */
export function isReasoningModel(model: string): boolean {
  const id = (model.split('/').at(-1) ?? model).toLowerCase();
  return /^o[1-9](-|$)/.test(id) || /^gpt-5/.test(id);
}

/**
 * The request body for one call: the decision table in code. Only fields the dialect accepts are
 * set; a field with no value is left out, never sent as `null`.
 *
 * | field | sent when |
 * |---|---|
 * | `model`, `messages` (system first) | always |
 * | `stream: true` | `dialect.stream` |
 * | `stream_options: { include_usage: true }` | `dialect.stream && dialect.streamOptions` |
 * | `max_completion_tokens` | a cap is set and the parameter is `max_completion_tokens`, or `auto` and a reasoning model |
 * | `max_tokens` | a cap is set and the parameter is `max_tokens`, or `auto` and not a reasoning model |
 * | `temperature` | set and not a reasoning model |
 * | `reasoning_effort` | set and the parameter is `reasoning_effort`, or `reasoning_effort-for-reasoning-models` and a reasoning model |
 * | `reasoning: { effort }` | set and the parameter is `reasoning-object` |
 */
export function chatCompletionParams(request: CompletionRequest, dialect: ChatDialect, settings: GenerationSettings = {}): Record<string, unknown> {
  const reasoningModel = isReasoningModel(request.model);
  const params: Record<string, unknown> = {
    model: request.model,
    messages: [
      ...(request.system ? [{ role: 'system', content: request.system }] : []),
      ...request.messages.map((m) => ({ role: m.role, content: m.content })),
    ],
  };
  if (dialect.stream) {
    params.stream = true;
    if (dialect.streamOptions) params.stream_options = { include_usage: true };
  }
  const cap = request.maxOutputTokens ?? settings.defaultMaxOutputTokens;
  if (cap !== undefined) {
    const useCompletionTokens = dialect.tokenLimitParameter === 'auto' ? reasoningModel : dialect.tokenLimitParameter === 'max_completion_tokens';
    params[useCompletionTokens ? 'max_completion_tokens' : 'max_tokens'] = cap;
  }
  if (settings.temperature !== undefined && !reasoningModel) params.temperature = settings.temperature;
  if (settings.reasoningEffort !== undefined) {
    switch (dialect.reasoningEffortParameter) {
      case 'reasoning_effort':
        params.reasoning_effort = settings.reasoningEffort;
        break;
      case 'reasoning_effort-for-reasoning-models':
        if (reasoningModel) params.reasoning_effort = settings.reasoningEffort;
        break;
      case 'reasoning-object':
        params.reasoning = { effort: settings.reasoningEffort };
        break;
      case 'unsupported':
        break;
    }
  }
  return params;
}

/** The parts of a streamed chunk the backend reads; anything else the server sends is ignored. */
const Usage = z.object({
  prompt_tokens: z.number().int().nonnegative(),
  completion_tokens: z.number().int().nonnegative(),
  prompt_tokens_details: z.object({ cached_tokens: z.number().int().nonnegative().nullish() }).nullish(),
  // DeepSeek reports cache hits its own way.
  prompt_cache_hit_tokens: z.number().int().nonnegative().nullish(),
  // OpenRouter reports the call's price in USD.
  cost: z.number().nonnegative().nullish(),
});
type Usage = z.infer<typeof Usage>;

const ChatCompletionChunk = z.object({
  model: z.string().nullish(),
  choices: z
    .array(
      z.object({
        index: z.number().int().nullish(),
        delta: z.object({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: Usage.nullish(),
  // Groq puts usage here when it is not asked for with stream_options.
  x_groq: z.object({ usage: Usage.nullish() }).nullish(),
});

const ChatCompletionBody = z.object({
  model: z.string().nullish(),
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1, 'the response has no choices'),
  usage: Usage.nullish(),
});

/** The assembled answer, checked before it leaves the backend. */
const AssembledResponse = z.object({
  text: z.string(),
  model: z.string().min(1),
  usage: z.object({
    inputTokens: z.number().int().nonnegative(),
    outputTokens: z.number().int().nonnegative(),
    cacheReadTokens: z.number().int().nonnegative().optional(),
    reportedCostUsd: z.number().nonnegative().optional(),
  }),
  stopReason: z.string().optional(),
});

/** The body of the response an attempt is reading, kept (head and tail) for error reports. */
class BodyRecorder {
  static readonly LIMIT = 4_000;
  #head = '';
  #tail = '';
  #truncated = false;
  readonly #decoder = new TextDecoder();

  add(bytes: Uint8Array): void {
    const text = this.#decoder.decode(bytes, { stream: true });
    const half = BodyRecorder.LIMIT / 2;
    if (this.#head.length < half) {
      const take = text.slice(0, half - this.#head.length);
      this.#head += take;
      this.#append(text.slice(take.length));
    } else {
      this.#append(text);
    }
  }

  #append(text: string): void {
    this.#tail += text;
    if (this.#tail.length > BodyRecorder.LIMIT / 2) {
      this.#tail = this.#tail.slice(-BodyRecorder.LIMIT / 2);
      this.#truncated = true;
    }
  }

  get text(): string {
    return this.#truncated ? `${this.#head}\n…\n${this.#tail}` : this.#head + this.#tail;
  }
}

const currentRecorder = new AsyncLocalStorage<BodyRecorder>();

/**
 * `inner` with the response body copied into the current attempt's recorder as the SDK reads it,
 * so a malformed body or a provider's unusual error shape can be quoted. The SDK parses JSON and
 * SSE itself and would otherwise keep only the parse error.
 */
function recordingFetch(inner: FetchFunction): FetchFunction {
  return async (input, init) => {
    const response = await inner(input, init);
    const recorder = currentRecorder.getStore();
    if (!recorder || !response.body || [101, 204, 205, 304].includes(response.status)) return response;
    const tap = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        recorder.add(chunk);
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(tap), { status: response.status, statusText: response.statusText, headers: response.headers });
  };
}

/** An attempt that failed, already classified (the body it read is only known inside the attempt). */
class ClassifiedFailure extends Error {
  constructor(readonly failure: AttemptFailure) {
    super(failure.error.message, { cause: failure.error });
  }
}

/** The backend itself; built by the factories, which resolve keys, URLs and dialects. */
export class ChatCompletionsBackend implements ModelBackend {
  /** What this backend calls, as its error messages name it. */
  readonly endpoint: ProviderEndpoint;

  /** @param sources where the key and the base URL came from, for the fixes error messages give. */
  constructor(
    readonly name: string,
    readonly client: OpenAI,
    readonly resilience: ResilientCaller,
    readonly dialect: ChatDialect,
    readonly settings: GenerationSettings = {},
    sources: { apiKeySource: ApiKeySource; baseUrlSource: BaseUrlSource } = { apiKeySource: { from: 'option' }, baseUrlSource: { from: 'option' } },
  ) {
    if (settings.reasoningEffort !== undefined && dialect.reasoningEffortParameter === 'unsupported') {
      throw new RlmError(`${name}: this provider takes no reasoning effort; remove reasoningEffort`);
    }
    this.endpoint = { backend: name, baseUrl: client.baseURL, ...sources };
  }

  get reportsCost(): boolean {
    return this.dialect.reportsCost === true;
  }

  /**
   * Streams one completion (or fetches it whole when the dialect cannot stream), retrying as the
   * backend's {@link ResilienceOptions} say. `onTextDelta` gets each piece of text as it arrives;
   * if an attempt breaks mid-stream and is retried, the retry's text follows what was already sent.
   *
   * @throws {ModelCallError} naming this backend, the model and the provider's message.
   * @throws {AbortedError} `signal` fired.
   */
  complete(request: CompletionRequest, options: CompleteOptions = {}): Promise<CompletionResponse> {
    const params = chatCompletionParams(request, this.dialect, this.settings);
    return this.resilience.call(
      request.model,
      (signal) => {
        const recorder = new BodyRecorder();
        return currentRecorder.run(recorder, async () => {
          try {
            const response = this.dialect.stream
              ? await this.#streamed(params, request.model, signal, options.onTextDelta)
              : await this.#whole(params, request.model, signal, options.onTextDelta);
            return this.#validated(response, request.model, recorder);
          } catch (error) {
            // A timeout or abort is the caller's to report; it knows which setting to name.
            if (signal.aborted || error instanceof ClassifiedFailure) throw error;
            throw new ClassifiedFailure(this.#classify(error, request.model, recorder));
          }
        });
      },
      (error) => (error instanceof ClassifiedFailure ? error.failure : this.#classify(error, request.model, undefined)),
      options.signal,
    );
  }

  async #streamed(
    params: Record<string, unknown>,
    model: string,
    signal: AbortSignal,
    onTextDelta: ((text: string) => void) | undefined,
  ): Promise<CompletionResponse> {
    // The dialect decided which fields go out; the SDK's types know only OpenAI's own set.
    const stream = await this.client.chat.completions.create(params as unknown as ChatCompletionCreateParamsStreaming, { signal });
    let text = '';
    let answeredBy: string | undefined;
    let usage: Usage | undefined;
    let stopReason: string | undefined;
    let events = 0;
    for await (const raw of stream) {
      const chunk = ChatCompletionChunk.safeParse(raw);
      if (!chunk.success)
        throw new MalformedResponse(`a stream event does not fit the Chat Completions protocol: ${summarizeZodError(chunk.error)}`, chunk.error);
      events += 1;
      answeredBy ||= chunk.data.model || undefined;
      usage = chunk.data.usage ?? chunk.data.x_groq?.usage ?? usage;
      for (const choice of chunk.data.choices ?? []) {
        if ((choice.index ?? 0) !== 0) continue;
        const delta = choice.delta?.content;
        if (delta) {
          text += delta;
          onTextDelta?.(delta);
        }
        if (choice.finish_reason) stopReason = choice.finish_reason;
      }
    }
    // The SDK ends the iteration quietly when the request is aborted; a partial answer must not pass for a whole one.
    signal.throwIfAborted();
    if (events === 0) {
      throw new MalformedResponse('the server sent no stream events; check baseURL, or set stream: false if this server cannot stream');
    }
    return assemble(text, answeredBy ?? model, usage, stopReason);
  }

  async #whole(
    params: Record<string, unknown>,
    model: string,
    signal: AbortSignal,
    onTextDelta: ((text: string) => void) | undefined,
  ): Promise<CompletionResponse> {
    const raw: unknown = await this.client.chat.completions.create(params as unknown as ChatCompletionCreateParamsNonStreaming, { signal });
    const body = ChatCompletionBody.safeParse(raw);
    if (!body.success) throw new MalformedResponse(`the response is not a chat completion: ${summarizeZodError(body.error)}`, body.error);
    const choice = body.data.choices[0];
    const text = choice?.message.content ?? '';
    if (text) onTextDelta?.(text);
    return assemble(text, body.data.model || model, body.data.usage ?? undefined, choice?.finish_reason ?? undefined);
  }

  #validated(response: CompletionResponse, model: string, recorder: BodyRecorder): CompletionResponse {
    const checked = AssembledResponse.safeParse(response);
    if (!checked.success) {
      throw new ClassifiedFailure({
        error: new ModelCallError(
          `${this.name} ${model}: malformed response: ${summarizeZodError(checked.error)}`,
          this.name,
          model,
          { isRetryable: false, responseBody: recorder.text },
          { cause: checked.error },
        ),
        retryable: false,
      });
    }
    return response;
  }

  /** The table from failures to errors (see `provider-failures.ts`): the kind, whether to retry, and what the message says. */
  #classify(error: unknown, model: string, recorder: BodyRecorder | undefined): AttemptFailure {
    const prefix = `${this.name} ${model}`;
    const endpoint = this.endpoint;
    const responseBody = recorder?.text || undefined;
    const body = responseBody === undefined ? {} : { responseBody };
    if (error instanceof OpenAI.APIError && error.status !== undefined) {
      const status = error.status;
      const reason = providerMessage(error, responseBody);
      const kind = kindOfHttpError(status, { type: error.type, code: error.code ?? bodyCode(responseBody), reason });
      const retryable = !isFatalKind(kind) && isRetryableStatus(status);
      const retryAfterMs = parseRetryAfter(error.headers);
      return {
        error: new ModelCallError(
          withFix(`${prefix}: HTTP ${status}: ${reason}`, kind, endpoint, model, { status, reason }),
          this.name,
          model,
          { statusCode: status, isRetryable: retryable, ...body, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
          { cause: error, kind, baseUrl: endpoint.baseUrl },
        ),
        retryable,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    }
    const connection = connectionAttemptFailure(
      error,
      endpoint,
      model,
      () => `${prefix}: the connection to ${endpoint.baseUrl} failed: ${describeConnectionError(error)}`,
      responseBody,
    );
    if (connection) return connection;
    if (error instanceof OpenAI.APIError) {
      // An error event inside a stream (no HTTP status): OpenRouter and others send one when the upstream fails mid-answer.
      const code = (error.error as { code?: unknown } | undefined)?.code;
      const reason = providerMessage(error, undefined);
      const kind = typeof code === 'number' ? kindOfHttpError(code, { reason }) : /rate.?limit/i.test(error.message) ? 'rate_limited' : 'provider_error';
      const retryable =
        !isFatalKind(kind) &&
        (typeof code === 'number' ? isRetryableStatus(code) : /overload|rate.?limit|timeout|unavailable|server.?error/i.test(error.message));
      return {
        error: new ModelCallError(
          withFix(`${prefix}: the stream reported an error: ${reason}`, kind, endpoint, model, { reason }),
          this.name,
          model,
          { isRetryable: retryable, ...body },
          { cause: error, kind, baseUrl: endpoint.baseUrl },
        ),
        retryable,
      };
    }
    if (error instanceof MalformedResponse || error instanceof SyntaxError) {
      // A server that answers in another protocol will do so again: not worth retrying.
      return {
        error: new ModelCallError(`${prefix}: malformed response: ${error.message}`, this.name, model, { isRetryable: false, ...body }, { cause: error }),
        retryable: false,
      };
    }
    const message = errorMessage(error);
    return {
      error: new ModelCallError(`${prefix}: ${message}`, this.name, model, { isRetryable: false, ...body }, { cause: error }),
      retryable: false,
    };
  }
}

class MalformedResponse extends Error {
  override name = 'MalformedResponse';
}

function assemble(text: string, model: string, usage: Usage | undefined, stopReason: string | undefined): CompletionResponse {
  const cacheRead = usage?.prompt_tokens_details?.cached_tokens ?? usage?.prompt_cache_hit_tokens ?? undefined;
  const tokenUsage: TokenUsage = {
    inputTokens: usage?.prompt_tokens ?? 0,
    outputTokens: usage?.completion_tokens ?? 0,
    ...(cacheRead ? { cacheReadTokens: cacheRead } : {}),
    ...(usage?.cost === undefined || usage.cost === null ? {} : { reportedCostUsd: usage.cost }),
  };
  return { text, model, usage: tokenUsage, ...(stopReason ? { stopReason } : {}) };
}

/**
 * The provider's own words. The SDK reads them from `{"error": {"message"}}`; servers that answer
 * `{"message"}` (vLLM), `{"detail"}` (FastAPI) or plain text are quoted from the recorded body.
 */
function providerMessage(error: InstanceType<typeof OpenAI.APIError>, responseBody: string | undefined): string {
  const inner = error.error as { message?: unknown } | string | undefined;
  if (typeof inner === 'string' && inner) return inner;
  if (inner && typeof inner === 'object' && typeof inner.message === 'string' && inner.message) return inner.message;
  const raw = responseBody?.trim();
  if (raw) {
    try {
      const parsed = JSON.parse(raw) as { message?: unknown; detail?: unknown; error?: unknown };
      const found = [parsed.message, parsed.detail, parsed.error].find((value) => value !== undefined && value !== null);
      if (found !== undefined) return typeof found === 'string' ? found : JSON.stringify(found);
    } catch {
      // Not JSON: quote the text.
    }
    return raw.length > 500 ? `${raw.slice(0, 500)}…` : raw;
  }
  return error.message;
}

/** The `code` of an error body in a shape the SDK does not read (vLLM's top-level `{"code": …}`). */
function bodyCode(responseBody: string | undefined): unknown {
  if (!responseBody) return undefined;
  try {
    const parsed: unknown = JSON.parse(responseBody);
    return typeof parsed === 'object' && parsed !== null ? (parsed as { code?: unknown }).code : undefined;
  } catch {
    return undefined;
  }
}

function describeConnectionError(error: unknown): string {
  const parts: string[] = [];
  for (let current = error, depth = 0; current && depth < 4; depth++) {
    const message = errorMessage(current);
    const code = (current as { code?: unknown }).code;
    const part = typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
    // The SDK's own wrapper says nothing the causes don't.
    if (!/^connection error\.?$/i.test(part) && !parts.includes(part)) parts.push(part);
    current = (current as { cause?: unknown }).cause;
  }
  return parts.join(': ');
}
