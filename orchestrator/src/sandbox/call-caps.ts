/**
 * Per-sandbox caps on what a sandbox may have the host do at once: sub-call requests, their prompts
 * and prompt bytes, tool calls. The REPL server inside the container has caps of its own, but the
 * server is as hostile as the cells (a cell that takes it over can forge any well-formed request),
 * so the host counts for itself, across every request of the sandbox and across its replacement
 * containers, until each handler has really finished.
 *
 * Beyond a cap a request is refused at once, never queued: a sub-call gets one error outcome per
 * prompt, a tool call an error result, each saying which cap and how to stay under it. Memory held
 * on the sandbox's behalf is therefore bounded by configuration, not by what the sandbox sends.
 */
import { MAX_BATCH_PROMPTS, formatBytes, type SubcallParams, type SubcallResult, type ToolCallResult } from '@rlm/shared';
import { InvalidOptionError } from '../errors.js';

/** Caps on one sandbox's calls to the host; each counts what is being served at the moment. */
export interface SandboxCallCaps {
  /** Sub-call requests (`llm_query`, a whole `llm_query_batched`…) served at once. Default 16. */
  maxSubcallsInFlight: number;
  /**
   * Prompts of those requests, summed. Default 10,000 (`MAX_BATCH_PROMPTS`): one batch of the
   * protocol's largest size fits, two do not.
   */
  maxSubcallPromptsInFlight: number;
  /** UTF-8 bytes of those prompts, summed. Default 64 MiB. */
  maxPendingPromptBytes: number;
  /** Custom tool calls served at once. Default 8. */
  maxToolCallsInFlight: number;
}

/** The caps a sandbox puts on the calls its cells make to the host when none are given; frozen. */
export const DEFAULT_SANDBOX_CALL_CAPS: Readonly<SandboxCallCaps> = Object.freeze({
  maxSubcallsInFlight: 16,
  maxSubcallPromptsInFlight: MAX_BATCH_PROMPTS,
  maxPendingPromptBytes: 64 * 1024 * 1024,
  maxToolCallsInFlight: 8,
});

/**
 * The caps with defaults filled in.
 * @throws {InvalidOptionError} naming `callCaps.<field>` when a value is not a positive integer.
 */
export function resolveCallCaps(caps: Partial<SandboxCallCaps> | undefined): SandboxCallCaps {
  const resolved = { ...DEFAULT_SANDBOX_CALL_CAPS };
  for (const key of Object.keys(DEFAULT_SANDBOX_CALL_CAPS) as (keyof SandboxCallCaps)[]) {
    const value = caps?.[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value <= 0) throw new InvalidOptionError(`callCaps.${key}`, `must be a positive integer, got ${String(value)}`);
    resolved[key] = value;
  }
  return resolved;
}

/** Counts one sandbox's calls in flight and refuses those over a cap. */
export class CallGate {
  readonly caps: SandboxCallCaps;
  #subcalls = 0;
  #prompts = 0;
  #promptBytes = 0;
  #toolCalls = 0;

  constructor(caps: SandboxCallCaps) {
    this.caps = caps;
  }

  /** What is in flight now (for tests and diagnostics). */
  get inFlight(): { subcalls: number; prompts: number; promptBytes: number; toolCalls: number } {
    return { subcalls: this.#subcalls, prompts: this.#prompts, promptBytes: this.#promptBytes, toolCalls: this.#toolCalls };
  }

  /**
   * Runs `serve` for `request` when it fits under every cap, counting it until `serve` settles;
   * otherwise answers at once with one error outcome per prompt. Never throws what `serve` does not.
   */
  async subcall(request: SubcallParams, serve: () => Promise<SubcallResult>): Promise<SubcallResult> {
    let bytes = 0;
    for (const prompt of request.prompts) bytes += Buffer.byteLength(prompt, 'utf8');
    const refusal = this.#subcallRefusal(request, bytes);
    if (refusal !== undefined) return { outcomes: request.prompts.map(() => ({ ok: false as const, error: refusal })) };
    this.#subcalls += 1;
    this.#prompts += request.prompts.length;
    this.#promptBytes += bytes;
    try {
      return await serve();
    } finally {
      this.#subcalls -= 1;
      this.#prompts -= request.prompts.length;
      this.#promptBytes -= bytes;
    }
  }

  /** Runs `serve` when fewer than `maxToolCallsInFlight` tool calls are being served; otherwise an error result at once. */
  async toolCall(name: string, serve: () => Promise<ToolCallResult>): Promise<ToolCallResult> {
    if (this.#toolCalls >= this.caps.maxToolCallsInFlight) {
      return {
        ok: false,
        error:
          `the call of ${name} was refused: ${this.#toolCalls} tool calls are already being served for this sandbox, ` +
          `its cap (maxToolCallsInFlight) is ${this.caps.maxToolCallsInFlight}; call tools one at a time`,
      };
    }
    this.#toolCalls += 1;
    try {
      return await serve();
    } finally {
      this.#toolCalls -= 1;
    }
  }

  #subcallRefusal(request: SubcallParams, bytes: number): string | undefined {
    const call = `${request.kind}${request.batched ? '_batched' : ''}`;
    const { maxSubcallsInFlight, maxSubcallPromptsInFlight, maxPendingPromptBytes } = this.caps;
    if (this.#subcalls >= maxSubcallsInFlight) {
      return (
        `${call} was refused: ${this.#subcalls} sub-call requests are already being served for this sandbox, ` +
        `its cap (maxSubcallsInFlight) is ${maxSubcallsInFlight}; wait for them, or put many prompts in one batched call`
      );
    }
    const prompts = request.prompts.length;
    if (this.#prompts + prompts > maxSubcallPromptsInFlight) {
      return (
        `${call} was refused: its ${prompts.toLocaleString('en-US')} prompt(s) and the ${this.#prompts.toLocaleString('en-US')} being served ` +
        `would exceed this sandbox's cap of ${maxSubcallPromptsInFlight.toLocaleString('en-US')} prompts in flight (maxSubcallPromptsInFlight); ` +
        'send fewer prompts per batch'
      );
    }
    if (this.#promptBytes + bytes > maxPendingPromptBytes) {
      return (
        `${call} was refused: its prompts (${formatBytes(bytes)}) and the ${formatBytes(this.#promptBytes)} being served ` +
        `would exceed this sandbox's cap of ${formatBytes(maxPendingPromptBytes)} of pending prompts (maxPendingPromptBytes); ` +
        'send shorter prompts or fewer per batch'
      );
    }
    return undefined;
  }
}
