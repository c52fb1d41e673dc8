/**
 * A running tally of tokens and cost across every model call of a run (root, sub-calls and child
 * RLMs), for the live status line: the engine's own usage arrives only with the result.
 */
import type { CompleteOptions, CompletionRequest, CompletionResponse, ModelBackend } from '../../models/model-backend.js';
import { costOf, type PriceOverrides } from '../../usage/pricing.js';

export class LiveUsage {
  calls = 0;
  inputTokens = 0;
  outputTokens = 0;
  #costUsd: number | null = 0;
  readonly #prices: PriceOverrides | undefined;

  constructor(prices?: PriceOverrides) {
    this.#prices = prices;
  }

  /** Null as soon as one call had no known price. */
  get costUsd(): number | null {
    return this.#costUsd;
  }

  record(model: string, response: CompletionResponse): void {
    this.calls += 1;
    this.inputTokens += response.usage.inputTokens;
    this.outputTokens += response.usage.outputTokens;
    const cost = costOf(model, response.usage, this.#prices);
    this.#costUsd = cost === null || this.#costUsd === null ? null : this.#costUsd + cost;
  }
}

/** `backend`, with every successful call added to `usage`. */
export function meteredBackend(backend: ModelBackend, usage: LiveUsage): ModelBackend {
  return {
    name: backend.name,
    async complete(request: CompletionRequest, options: CompleteOptions): Promise<CompletionResponse> {
      const response = await backend.complete(request, options);
      usage.record(request.model, response);
      return response;
    },
  };
}
