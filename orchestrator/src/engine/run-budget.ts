/**
 * The limits of one run, shared by its whole recursion tree: every RLM (root or child) draws
 * turns, time, tokens and dollars from the same budget, so a child sees what is really left and a
 * child that overspends stops the tree.
 */
import { RlmError } from '../errors.js';
import type { TokenUsage } from '../models/model-backend.js';

/** What a run (its whole tree: root and children together) may spend; each has a default in {@link DEFAULT_LIMITS}. A run that reaches one ends with `success: false` and a {@link RunLimitError}. */
export interface RlmLimits {
  /** Model turns across the whole tree (root and children together). Default 30. */
  maxIterations: number;
  /** Deepest child RLM: at depth `maxDepth`, `rlm_query` is a plain `llm_query`. Default 1. */
  maxDepth: number;
  /** Wall-clock limit of the whole tree in milliseconds; none by default. */
  timeoutMs?: number;
  /** Spending limit of the whole tree in USD; none by default. */
  maxCostUsd?: number;
  /** Input + output tokens of the whole tree; none by default. */
  maxTokens?: number;
  /** A run stops after this many failing turns in a row (model call failed, or every cell failed). Default 5. */
  maxConsecutiveFailures: number;
  /** Wall-clock limit of one cell in milliseconds, never more than the time left. Default 120 000. */
  cellTimeoutMs: number;
  /** How many prompts of one batched sub-call run at once. Default 8. */
  subcallConcurrency: number;
  /**
   * Sandboxes (containers) of the tree alive at once, the root's included. Default 4; 1 means no
   * child ever gets a sandbox of its own.
   *
   * A child RLM (`rlm_query`) takes a sandbox when it starts and gives it back when it ends. When
   * none is free it waits, and a freed sandbox goes to the deepest waiting child (the oldest first
   * among equals), since finishing a subtree frees sandboxes soonest. The tree always finishes:
   * - when every run holding a sandbox is itself waiting for a child (no sandbox can ever free),
   *   the deepest waiting child (the newest among equals) is answered as a plain `llm_query` of
   *   its prompt instead, until the deadlock is gone;
   * - with a wall-clock limit (`timeoutMs`), a child waits at most half the time the run had left
   *   when it asked, then is answered as a plain `llm_query` the same way.
   * Either way the call's record carries a note and a `warning` event says so.
   */
  maxSandboxes: number;
  /**
   * UTF-8 bytes of prompts one cell may pass to `llm_query`/`rlm_query` (and their batched forms)
   * for configured models, all its calls together, prompts refused for size included. Default
   * 64 MiB. Past it, each further prompt of the cell gets an error string naming this limit; the
   * run goes on.
   */
  maxSubcallPromptBytesPerCell: number;
  /** The same for the whole tree (every cell of the root and its children). Default 512 MiB. */
  maxSubcallPromptBytesPerRun: number;
}

/** The limits a run gets for every field of {@link RlmLimits} left unset; frozen. */
export const DEFAULT_LIMITS: Readonly<RlmLimits> = Object.freeze({
  maxIterations: 30,
  maxDepth: 1,
  maxConsecutiveFailures: 5,
  cellTimeoutMs: 120_000,
  subcallConcurrency: 8,
  maxSandboxes: 4,
  maxSubcallPromptBytesPerCell: 64 * 1024 * 1024,
  maxSubcallPromptBytesPerRun: 512 * 1024 * 1024,
});

/** A limit that can stop a run: `iterations` (model turns), `timeout` (wall clock), `cost` (USD), `tokens`, or `consecutive_failures` (failing turns in a row: the model call failed, or every cell did). */
export type LimitName = 'iterations' | 'timeout' | 'cost' | 'tokens' | 'consecutive_failures';

/** A limit ended the run (`kind`: `limit_reached`; which one in `limit`). `partialAnswer` is the best answer the run had when it stopped. */
export class RunLimitError extends RlmError {
  /** The marker by which `RunLimitError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.RunLimitError';
  /** `'RunLimitError'`, as stack traces and `String(error)` show it. */
  override name = 'RunLimitError';
  /** Always `limit_reached`; which limit is in {@link RunLimitError.limit}. */
  declare readonly kind: 'limit_reached';
  constructor(
    /** The limit that stopped the run: `iterations`, `timeout`, `cost`, `tokens` or `consecutive_failures`. */
    readonly limit: LimitName,
    message: string,
    /** The root model's last words outside its code blocks when the run stopped; null when it had none. */
    readonly partialAnswer: string | null = null,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, kind: 'limit_reached' });
  }

  /** The same error with the partial answer of the run that reports it. */
  withPartialAnswer(partialAnswer: string | null): RunLimitError {
    return new RunLimitError(this.limit, this.message, partialAnswer ?? this.partialAnswer, this.cause === undefined ? undefined : { cause: this.cause });
  }
}

/** Prices usage for the budget; `null` when the model's price is unknown. */
export type CostFunction = (model: string, usage: TokenUsage) => number | null;

export class RunBudget {
  readonly limits: Readonly<RlmLimits>;
  readonly #startedAt = performance.now();
  readonly #controller = new AbortController();
  readonly #costOf: CostFunction;
  #iterations = 0;
  #tokens = 0;
  #costUsd = 0;
  #unpricedCalls = 0;
  #promptBytes = 0;
  #exceeded: RunLimitError | undefined;
  #failure: RlmError | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: Readonly<RlmLimits>, costOf: CostFunction) {
    this.limits = limits;
    this.#costOf = costOf;
    if (limits.timeoutMs !== undefined) {
      this.#timer = setTimeout(
        () =>
          this.#exceed(
            new RunLimitError(
              'timeout',
              `the run exceeded its wall-clock limit of ${formatSeconds(limits.timeoutMs ?? 0)}; raise the timeout to give it longer`,
            ),
          ),
        limits.timeoutMs,
      );
      this.#timer.unref();
    }
  }

  /** Fires when any limit is exceeded anywhere in the tree: model calls and cells in flight stop. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The limit that stopped the tree, if one did. */
  get exceeded(): RunLimitError | undefined {
    return this.#exceeded;
  }

  /** The error that stopped the tree without a limit: a model call no retry can fix (see {@link fail}). */
  get failure(): RlmError | undefined {
    return this.#failure;
  }

  /** What stopped the tree, if anything did: the exceeded limit, or the error it failed with. */
  get stopped(): RlmError | undefined {
    return this.#exceeded ?? this.#failure;
  }

  /**
   * Stops the whole tree with `error` — a failure every later call would repeat, such as a refused
   * key or an unknown model — the way an exceeded limit does: model calls and cells in flight stop.
   * The first stop wins; later ones are ignored.
   */
  fail(error: RlmError): void {
    if (this.#exceeded || this.#failure) return;
    this.#failure = error;
    this.#controller.abort(error);
  }

  get iterationsUsed(): number {
    return this.#iterations;
  }

  get iterationsLeft(): number {
    return Math.max(0, this.limits.maxIterations - this.#iterations);
  }

  get tokensUsed(): number {
    return this.#tokens;
  }

  /** Spent so far in USD, counting only calls with a known price. */
  get costUsd(): number {
    return this.#costUsd;
  }

  /** Milliseconds left before the wall-clock limit; `Infinity` without one. */
  remainingMs(): number {
    if (this.limits.timeoutMs === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(0, this.limits.timeoutMs - (performance.now() - this.#startedAt));
  }

  /** The cell timeout to use now: the configured one, never past the wall-clock limit. */
  cellTimeoutMs(): number {
    return Math.max(1, Math.min(this.limits.cellTimeoutMs, Math.floor(this.remainingMs())));
  }

  /**
   * Takes one turn from the tree's pool.
   *
   * @throws {RunLimitError} `iterations` when the pool is empty, or the limit that already stopped the tree.
   */
  takeTurn(): void {
    this.assertWithinLimits();
    if (this.#iterations >= this.limits.maxIterations) {
      throw new RunLimitError('iterations', `the run used all ${this.limits.maxIterations} iterations (shared by the root and its child RLMs)`);
    }
    this.#iterations += 1;
  }

  /** UTF-8 bytes of sub-call prompts the tree's cells have passed so far (see {@link takePromptBytes}). */
  get promptBytesUsed(): number {
    return this.#promptBytes;
  }

  /**
   * Counts `bytes` of sub-call prompt against `maxSubcallPromptBytesPerRun`. Returns false, counting
   * nothing, when they would pass it; the prompt is then refused, and the tree goes on.
   */
  takePromptBytes(bytes: number): boolean {
    if (this.#promptBytes + bytes > this.limits.maxSubcallPromptBytesPerRun) return false;
    this.#promptBytes += bytes;
    return true;
  }

  /** @throws {RunLimitError} the limit that stopped the tree, if any; or the error it {@link fail}ed with. */
  assertWithinLimits(): void {
    if (this.#exceeded) throw this.#exceeded;
    if (this.#failure) throw this.#failure;
  }

  /**
   * Records a model call's usage and returns its cost in USD (null when the model's price is
   * unknown); exceeding the token or cost budget stops the tree.
   */
  charge(model: string, usage: TokenUsage): number | null {
    this.#tokens += usage.inputTokens + usage.outputTokens;
    const cost = this.#costOf(model, usage);
    if (cost === null) this.#unpricedCalls += 1;
    else this.#costUsd += cost;
    const { maxTokens, maxCostUsd } = this.limits;
    if (maxTokens !== undefined && this.#tokens > maxTokens) {
      this.#exceed(
        new RunLimitError('tokens', `the run used ${this.#tokens.toLocaleString('en-US')} tokens, over its budget of ${maxTokens.toLocaleString('en-US')}`),
      );
    } else if (maxCostUsd !== undefined && this.#costUsd > maxCostUsd) {
      this.#exceed(new RunLimitError('cost', `the run cost $${this.#costUsd.toFixed(4)}, over its budget of $${maxCostUsd.toFixed(4)}`));
    } else if (maxCostUsd !== undefined && cost === null) {
      // A budget in dollars cannot be kept with calls of unknown price: say so rather than guess.
      this.#exceed(
        new RunLimitError(
          'cost',
          `a call to ${model} has no known price, so the $${maxCostUsd} budget cannot be enforced; add the model to the price table (prices option)`,
        ),
      );
    }
    return cost;
  }

  /** Stops the tree with `error` (the first limit hit wins). */
  #exceed(error: RunLimitError): void {
    if (this.#exceeded || this.#failure) return;
    this.#exceeded = error;
    this.#controller.abort(error);
  }

  /** Frees the wall-clock timer. Safe to call twice. */
  dispose(): void {
    clearTimeout(this.#timer);
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
