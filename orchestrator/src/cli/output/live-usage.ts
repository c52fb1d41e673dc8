/**
 * A running tally of tokens and cost across every model call of a run (root turns, sub-calls,
 * child RLMs, compaction), for the live status line, fed from the engine's events — which carry
 * each call's tokens and the cost the engine priced it at.
 */
import type { CallUsage, RunEvent } from '../../engine/run-events.js';

export class LiveUsage {
  calls = 0;
  inputTokens = 0;
  outputTokens = 0;
  #costUsd: number | null = 0;

  /** Null as soon as one call had no known price. */
  get costUsd(): number | null {
    return this.#costUsd;
  }

  /** Adds the model call an event reports, if it reports one. */
  onEvent(event: RunEvent): void {
    switch (event.type) {
      case 'model_response':
        this.#add(event);
        return;
      case 'subcall_end':
        // A child RLM's calls arrive as its own events; only a plain call carries usage here.
        if (event.usage) this.#add(event.usage);
        return;
      case 'compaction':
        this.#add(event.usage);
        return;
      default:
        return;
    }
  }

  #add(usage: CallUsage): void {
    this.calls += 1;
    this.inputTokens += usage.inputTokens;
    this.outputTokens += usage.outputTokens;
    this.#costUsd = usage.costUsd === null || this.#costUsd === null ? null : this.#costUsd + usage.costUsd;
  }
}
