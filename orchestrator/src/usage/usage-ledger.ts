/**
 * Token counts and cost per model, summed over the calls of a run (and its children, merged in).
 */
import type { TokenUsage } from '../models/model-backend.js';
import { type PriceOverrides, costOf } from './pricing.js';

/** One model's usage in a run, summed over its whole tree: calls, tokens, and cost in USD (null when its price is unknown). */
export interface ModelUsage {
  /** Calls that completed (answered, or failed with the provider's answer). */
  calls: number;
  /**
   * Calls aborted while they ran — their cell ended, the run was cancelled or stopped — present only
   * when there were some. Their tokens, when the provider reported any before the abort, are in the
   * token counts.
   */
  cancelledCalls?: number;
  /** Every input token, cache reads and writes included (see {@link TokenUsage.inputTokens}). */
  inputTokens: number;
  /** Tokens the model generated (see {@link TokenUsage.outputTokens}). */
  outputTokens: number;
  /** Input tokens read from the provider's prompt cache (part of `inputTokens`); 0 where the provider reports none. */
  cacheReadTokens: number;
  /** Input tokens written to the provider's prompt cache (part of `inputTokens`); 0 where the provider reports none. */
  cacheWriteTokens: number;
  /** US dollars; `null` when any call of this model had no known price and no reported cost. */
  costUsd: number | null;
}

/** Usage per model id, as the calls named their model. */
export type UsageByModel = Record<string, ModelUsage>;

export class UsageLedger {
  readonly #byModel = new Map<string, ModelUsage>();
  readonly #priceOverrides: PriceOverrides | undefined;

  /** @param options.priceOverrides prices that win over the built-in table (see {@link costOf}). */
  constructor(options: { priceOverrides?: PriceOverrides } = {}) {
    this.#priceOverrides = options.priceOverrides;
  }

  /** Adds one call of `model`; its cost comes from {@link costOf} (a reported cost wins). */
  record(model: string, usage: TokenUsage): void {
    this.#add(model, {
      calls: 1,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      cacheReadTokens: usage.cacheReadTokens ?? 0,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      costUsd: costOf(model, usage, this.#priceOverrides),
    });
  }

  /** Records a call aborted while it ran, with the tokens the provider reported before the abort (usually none). */
  recordCancelled(model: string, usage: TokenUsage = { inputTokens: 0, outputTokens: 0 }): void {
    const reported = usage.inputTokens + usage.outputTokens > 0;
    this.#add(model, {
      calls: 0,
      cancelledCalls: 1,
      inputTokens: usage.inputTokens,
      outputTokens: usage.outputTokens,
      cacheReadTokens: usage.cacheReadTokens ?? 0,
      cacheWriteTokens: usage.cacheWriteTokens ?? 0,
      // Nothing reported costs nothing; an unknown price must not make a known total unknown then.
      costUsd: reported ? costOf(model, usage, this.#priceOverrides) : 0,
    });
  }

  /** Adds everything another ledger (or a snapshot of one, e.g. a child run's) recorded. */
  merge(other: UsageLedger | UsageByModel): void {
    const entries = other instanceof UsageLedger ? other.#byModel.entries() : Object.entries(other);
    for (const [model, usage] of entries) this.#add(model, usage);
  }

  /** A copy of the usage per model, in the order models were first seen. */
  snapshot(): UsageByModel {
    const snapshot: UsageByModel = {};
    // Defined, not assigned: a model named `__proto__` must be an entry, not the object's prototype.
    for (const [model, usage] of this.#byModel)
      Object.defineProperty(snapshot, model, { value: { ...usage }, enumerable: true, writable: true, configurable: true });
    return snapshot;
  }

  /** Total cost in US dollars; `null` when the cost of any model with calls is unknown. */
  totalCostUsd(): number | null {
    let total = 0;
    for (const usage of this.#byModel.values()) {
      if (usage.calls === 0) continue;
      if (usage.costUsd === null) return null;
      total += usage.costUsd;
    }
    return total;
  }

  /** Input plus output tokens over every model (cache reads and writes are within the input). */
  totalTokens(): number {
    let total = 0;
    for (const usage of this.#byModel.values()) total += usage.inputTokens + usage.outputTokens;
    return total;
  }

  #add(model: string, usage: ModelUsage): void {
    const current = this.#byModel.get(model);
    if (!current) {
      this.#byModel.set(model, { ...usage });
      return;
    }
    current.calls += usage.calls;
    if (usage.cancelledCalls) current.cancelledCalls = (current.cancelledCalls ?? 0) + usage.cancelledCalls;
    current.inputTokens += usage.inputTokens;
    current.outputTokens += usage.outputTokens;
    current.cacheReadTokens += usage.cacheReadTokens;
    current.cacheWriteTokens += usage.cacheWriteTokens;
    current.costUsd = current.costUsd === null || usage.costUsd === null ? null : current.costUsd + usage.costUsd;
  }
}
