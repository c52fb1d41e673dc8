/**
 * Usage, cost and iterations of a run, summed from its events as they arrive. A run that ends with
 * a result reports the engine's own totals; one that was cancelled (the engine rejects, no result)
 * or failed by a throw reports these, so the tokens it spent still count toward its team's budget.
 */
import type { CallUsage, RunEvent } from '../../engine/run-events.js';
import type { ModelUsage } from '../../usage/usage-ledger.js';
import type { RunUsage } from '../service-types.js';

export class EventUsage {
  readonly #byModel = new Map<string, ModelUsage>();
  /** The root model of each run of the tree (by the engine's run id), for its compaction calls. */
  readonly #rootModels = new Map<string, string>();
  #iterations = 0;

  add(event: RunEvent): void {
    switch (event.type) {
      case 'run_start':
        this.#rootModels.set(event.runId, event.rootModel);
        break;
      case 'turn_start':
        if (event.depth === 0) this.#iterations = Math.max(this.#iterations, event.turn);
        break;
      case 'model_response':
        this.#record(event.model, event, false);
        break;
      case 'subcall_end':
        // A child RLM's own calls arrive as its events; `usage` is only the call's own model call.
        if (event.usage) this.#record(event.model, event.usage, event.cancelled === true);
        break;
      case 'compaction':
        this.#record(this.#rootModels.get(event.runId) ?? 'unknown', event.usage, false);
        break;
      default:
        break;
    }
  }

  usage(): RunUsage {
    const usage: RunUsage = {};
    for (const [model, entry] of this.#byModel)
      Object.defineProperty(usage, model, { value: { ...entry }, enumerable: true, writable: true, configurable: true });
    return usage;
  }

  /** USD across every model; null when any call's cost was unknown. */
  costUsd(): number | null {
    let total = 0;
    for (const entry of this.#byModel.values()) {
      if (entry.costUsd === null) return null;
      total += entry.costUsd;
    }
    return total;
  }

  /** Turns the root model started. */
  iterations(): number {
    return this.#iterations;
  }

  #record(model: string, call: CallUsage, cancelled: boolean): void {
    const entry = this.#byModel.get(model) ?? { calls: 0, inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0 };
    if (cancelled) entry.cancelledCalls = (entry.cancelledCalls ?? 0) + 1;
    else entry.calls += 1;
    entry.inputTokens += call.inputTokens;
    entry.outputTokens += call.outputTokens;
    entry.costUsd = entry.costUsd === null || call.costUsd === null ? null : entry.costUsd + call.costUsd;
    this.#byModel.set(model, entry);
  }
}
