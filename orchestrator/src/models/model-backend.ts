/**
 * The one seam between the engine and model providers: a backend completes a conversation.
 * Each provider is one module behind this interface, created by a factory that reads its key from
 * an environment variable unless one is passed.
 */
import { RlmError } from '../errors.js';

/** Who wrote a {@link ChatMessage}: the user (prompts and REPL output) or the model. */
export type ChatRole = 'user' | 'assistant';

/** One message of a conversation sent to a model. */
export interface ChatMessage {
  /** `user` for prompts and REPL output, `assistant` for the model's earlier answers. */
  role: ChatRole;
  /** The message's text, whole. */
  content: string;
}

/** One model call as the engine makes it: model, system prompt, messages and output cap. */
export interface CompletionRequest {
  /** The provider's model id, e.g. `claude-sonnet-4-5` or `gpt-5-mini`. */
  model: string;
  /** Sent separately from the messages where the provider supports it. */
  system?: string;
  /** The conversation so far, oldest first; the engine's requests alternate `user` and `assistant` and end with `user`. */
  messages: readonly ChatMessage[];
  /** Cap on generated tokens; the backend's default when absent. */
  maxOutputTokens?: number;
}

/** Token counts as the provider reported them. Absent fields were not reported. */
export interface TokenUsage {
  /**
   * Every input token of the call, cache reads and writes included (OpenAI's `prompt_tokens`;
   * Anthropic's `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`).
   */
  inputTokens: number;
  /** Tokens the model generated. */
  outputTokens: number;
  /** Input tokens read from the provider's prompt cache (billed at the cache-read price). */
  cacheReadTokens?: number;
  /** Input tokens written to the provider's prompt cache (billed at the cache-write price). */
  cacheWriteTokens?: number;
  /** A cost the provider itself reported (e.g. OpenRouter), in USD; wins over the price table. */
  reportedCostUsd?: number;
}

/** A model's answer: its text, the model that answered, token usage and why generation stopped. */
export interface CompletionResponse {
  /** The model's answer, whole. */
  text: string;
  /** The model that answered, as the provider names it. */
  model: string;
  /** Token counts of this call as the provider reported them; the basis of its cost. */
  usage: TokenUsage;
  /** Why generation stopped, as the provider said it (`end_turn`, `stop`, `max_tokens`, `length`…). */
  stopReason?: string;
}

/** A model provider behind one small interface: {@link ModelBackend.complete}. The factories (`createAnthropicBackend`, `createOpenAICompatibleBackend`, `createPresetBackend`, `createClaudeCliBackend`) make one; implement it to bring another provider. */
export interface ModelBackend {
  /** Used in errors and usage reports, e.g. `anthropic`, `openai`, `scripted`. */
  readonly name: string;
  /**
   * True when every answer carries the call's cost as the provider billed it (`reportedCostUsd`),
   * so a budget in dollars can be kept without a price table entry (OpenRouter, the Claude CLI).
   */
  readonly reportsCost?: boolean;
  /**
   * Completes the conversation.
   *
   * @throws {ModelCallError} the provider failed (after the backend's own retries) or `signal` fired.
   */
  complete(request: CompletionRequest, options: CompleteOptions): Promise<CompletionResponse>;
}

/** Per-call options of {@link ModelBackend.complete}: a signal that cancels the call (it then rejects with a {@link ModelCallError}) and a callback for streamed text. */
export interface CompleteOptions {
  /** Cancels the call: the provider request is aborted and the call rejects with a {@link ModelCallError}. */
  signal?: AbortSignal;
  /**
   * Called with each piece of text as the provider streams it (for progress display). Backends that
   * stream call it as text arrives; the others once with the whole text. Must not throw.
   */
  onTextDelta?: (text: string) => void;
}

/** Why a model call failed, as {@link ModelCallError.kind}. */
export type ModelCallErrorKind =
  /** The provider refused the key (401): wrong, expired or missing. Fatal. */
  | 'auth'
  /** The key may not use this model or endpoint (403). Fatal. */
  | 'permission'
  /** The provider does not know the model (404, or its "model not found" error). Fatal. */
  | 'model_not_found'
  /** No connection to the provider: an unknown host, or refused connections after the backend's retries. Fatal. */
  | 'unreachable'
  /** Rate limited (429) after the backend's retries. */
  | 'rate_limited'
  /** No answer within the backend's `timeoutMs`, after its retries. */
  | 'timeout'
  /** The provider rejected this request (400, 413, 422: e.g. a prompt too long for the model). */
  | 'invalid_request'
  /** The provider failed (5xx, overloaded, a dropped connection) after the backend's retries, or answered something unreadable. */
  | 'provider_error';

/** The kinds of failure no retry and no other turn can fix: the run ends at once. */
const FATAL_KINDS: ReadonlySet<ModelCallErrorKind> = new Set(['auth', 'permission', 'model_not_found', 'unreachable']);

/**
 * A model call failed; says which backend and model, what to do, and whether trying again may help.
 * A {@link ModelCallError.fatal} one (`auth`, `permission`, `model_not_found`, `unreachable`) ends
 * the run at once: every later call would fail the same way.
 */
export class ModelCallError extends RlmError {
  /** The marker by which `ModelCallError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.ModelCallError';
  /** `'ModelCallError'`, as stack traces and `String(error)` show it. */
  override name = 'ModelCallError';
  /**
   * Why the call failed: `auth`, `permission`, `model_not_found`, `unreachable` (these four are
   * {@link ModelCallError.fatal}), `rate_limited`, `timeout`, `invalid_request` or `provider_error`
   * (the default); see {@link ModelCallErrorKind}.
   */
  declare readonly kind: ModelCallErrorKind;
  /** The base URL the backend sent the call to; absent for backends that are not HTTP (`claude-cli`, `scripted`). */
  readonly baseUrl: string | undefined;
  constructor(
    message: string,
    /** The {@link ModelBackend.name} of the backend that made the call (`anthropic`, `openai`…). */
    readonly backend: string,
    /** The model the call asked for, as the request named it. */
    readonly model: string,
    /**
     * `statusCode`: the HTTP status, when there was one; `isRetryable`: whether the backend would try
     * this failure again; `responseBody`: the start of what the provider answered; `retryAfterMs`: the
     * provider's `retry-after`; `attempts`: how many attempts the backend made before giving up.
     */
    readonly details: { statusCode?: number; isRetryable?: boolean; responseBody?: string; retryAfterMs?: number; attempts?: number } = {},
    options?: ErrorOptions & { kind?: ModelCallErrorKind; baseUrl?: string | undefined },
  ) {
    const { baseUrl, kind, ...rest } = options ?? {};
    super(message, { ...rest, kind: kind ?? 'provider_error' });
    this.baseUrl = baseUrl;
  }

  /** True when no retry can succeed (a refused key, an unknown model, an unreachable provider). */
  get fatal(): boolean {
    return FATAL_KINDS.has(this.kind);
  }
}
