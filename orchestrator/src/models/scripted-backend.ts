/**
 * A model that answers from a script: for tests and demos, with no provider and no network. It
 * records every request so a test can assert on what was sent.
 */
import { type CompletionRequest, type CompletionResponse, type ModelBackend, ModelCallError, type TokenUsage } from './model-backend.js';

/** One scripted answer: its text, a full response (usage and all), or an error to throw. */
export type ScriptedReply = string | CompletionResponse | Error;

/** Computes the answer to call `callIndex` (0-based, in the order calls started). */
export type ScriptFunction = (request: CompletionRequest, callIndex: number) => ScriptedReply | Promise<ScriptedReply>;

/** Options of {@link ScriptedBackend}. */
export interface ScriptedBackendOptions {
  /** The backend's name in errors and usage; `scripted` by default. */
  name?: string;
  /** Delay before each answer, in milliseconds (cancelled by the call's signal). */
  latencyMs?: number;
}

/** A call the backend received: a copy of the request, as it was when the call started. */
export interface RecordedCall {
  /** The request as the call received it, copied (its messages too), so later changes by the caller do not show. */
  request: CompletionRequest;
  /** 0-based, in the order calls started. */
  index: number;
}

/** Roughly four characters per token, rounded up, as a stand-in for a provider's count. */
export function estimateScriptedTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/**
 * A {@link ModelBackend} whose answers come from a list (one per call, in order) or a function.
 *
 * A string answer gets usage estimated at four characters per token (the system prompt and every
 * message as input, the answer as output); a {@link CompletionResponse} is returned as given; an
 * `Error` is thrown as given (a {@link ModelCallError} tests the engine's handling of provider
 * failures; anything else, of unexpected ones).
 *
 * @throws {ModelCallError} the list has no answer left for this call (`isRetryable: false`), or the
 *   call's signal fired (the signal's reason is the `cause`).
 */
export class ScriptedBackend implements ModelBackend {
  /** `options.name`, `scripted` by default: the backend's name in errors and usage. */
  readonly name: string;
  /** Every call so far, in the order they started. */
  readonly calls: RecordedCall[] = [];
  readonly #script: ScriptFunction;
  readonly #latencyMs: number;

  constructor(script: readonly ScriptedReply[] | ScriptFunction, options: ScriptedBackendOptions = {}) {
    this.name = options.name ?? 'scripted';
    this.#latencyMs = options.latencyMs ?? 0;
    if (typeof script === 'function') {
      this.#script = script;
    } else {
      const replies = [...script];
      this.#script = (request, index) => {
        const reply = replies[index];
        if (reply === undefined) {
          throw new ModelCallError(
            `${this.name}: the script has ${replies.length} response${replies.length === 1 ? '' : 's'} and call #${index + 1} asked for another (model ${request.model}); add responses to the script`,
            this.name,
            request.model,
            { isRetryable: false },
          );
        }
        return reply;
      };
    }
  }

  /** The requests received so far, in order. */
  get requests(): CompletionRequest[] {
    return this.calls.map((call) => call.request);
  }

  /**
   * Records the call, waits `latencyMs` (if set), and answers with the script's next reply: a
   * string as a response with estimated usage and `stopReason: 'end_turn'`, a response as given.
   *
   * @throws the script's reply when it is an `Error`, as given.
   * @throws {ModelCallError} the list has no reply left for this call, or `signal` fired before the answer.
   */
  async complete(request: CompletionRequest, options: { signal?: AbortSignal } = {}): Promise<CompletionResponse> {
    const index = this.calls.length;
    const recorded: CompletionRequest = { ...request, messages: request.messages.map((message) => ({ ...message })) };
    this.calls.push({ request: recorded, index });
    const { signal } = options;
    this.#throwIfAborted(request, signal);
    if (this.#latencyMs > 0) {
      await wait(this.#latencyMs, signal);
      this.#throwIfAborted(request, signal);
    }
    const reply = await this.#script(recorded, index);
    this.#throwIfAborted(request, signal);
    if (reply instanceof Error) throw reply;
    if (typeof reply !== 'string') return reply;
    return { text: reply, model: request.model, usage: estimateUsage(request, reply), stopReason: 'end_turn' };
  }

  #throwIfAborted(request: CompletionRequest, signal: AbortSignal | undefined): void {
    if (!signal?.aborted) return;
    throw new ModelCallError(
      `${this.name}: the call to ${request.model} was cancelled`,
      this.name,
      request.model,
      { isRetryable: false },
      { cause: signal.reason },
    );
  }
}

/**
 * Resolves after `ms`, or at once when `signal` fires. On the global `setTimeout` (not
 * `node:timers/promises`), so tests can drive the latency with fake timers.
 */
function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function estimateUsage(request: CompletionRequest, text: string): TokenUsage {
  let input = estimateScriptedTokens(request.system ?? '');
  for (const message of request.messages) input += estimateScriptedTokens(message.content);
  return { inputTokens: input, outputTokens: estimateScriptedTokens(text) };
}
