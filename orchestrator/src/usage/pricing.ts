/**
 * What model calls cost: the arithmetic from token counts to US dollars, with the prices of the
 * model table (`models/model-table.ts`: ours, then the maintained `@pydantic/genai-prices` data)
 * under the caller's overrides. An unknown model has no price and its cost is `null` — never a
 * guess.
 */
import type { TokenUsage } from '../models/model-backend.js';
import { MODEL_TABLE_AS_OF, lookupModel, matchVersioned, normalizeModelId, type ModelPrice } from '../models/model-table.js';

export type { ModelPrice } from '../models/model-table.js';

/** The date our model table's prices were last checked against the providers' pages (YYYY-MM-DD). */
export const PRICES_AS_OF = MODEL_TABLE_AS_OF;

/** Prices by model id (matched as {@link priceOf} says), overriding and extending the table. */
export type PriceOverrides = Readonly<Record<string, ModelPrice>>;

/** Where a price came from: the caller's overrides, our table, or the maintained data. */
export type PriceSource = 'override' | 'table' | 'genai-prices';

/**
 * The price of `model` and where it came from, or `undefined` when it is not known.
 *
 * An override for the model wins: keyed by the caller's exact spelling (`openai/gpt-5`), else
 * matched like the table (normalized, exact or the longest key the id extends with a version
 * suffix only). Then the model table ({@link lookupModel}): `claude-sonnet-4-5-20250929` →
 * `claude-sonnet-4-5`, `anthropic/claude-3.5-haiku` → `claude-3-5-haiku`, but `o3-pro` is not `o3`.
 */
export function resolvePrice(model: string, overrides?: PriceOverrides): { price: ModelPrice; from: PriceSource } | undefined {
  if (overrides) {
    if (Object.hasOwn(overrides, model)) return { price: overrides[model] as ModelPrice, from: 'override' };
    const table = new Map(Object.entries(overrides).map(([key, price]) => [normalizeModelId(key), price]));
    const key = matchVersioned(table.keys(), normalizeModelId(model));
    if (key !== undefined) return { price: table.get(key) as ModelPrice, from: 'override' };
  }
  const facts = lookupModel(model);
  return facts.price && facts.priceFrom ? { price: facts.price, from: facts.priceFrom } : undefined;
}

/** The price of `model`, or `undefined` when it is not known (see {@link resolvePrice}). */
export function priceOf(model: string, overrides?: PriceOverrides): ModelPrice | undefined {
  return resolvePrice(model, overrides)?.price;
}

/**
 * The cost of one call's (or several calls' summed) usage, in US dollars; `null` when `model` has
 * no known price. A cost the provider reported (`reportedCostUsd`) is returned as is.
 *
 * `usage.inputTokens` counts every input token, cache reads and writes included (see
 * {@link TokenUsage}): the tokens neither read from nor written to the cache are billed at the
 * input price, the others at the cache prices.
 */
export function costOf(model: string, usage: TokenUsage, overrides?: PriceOverrides): number | null {
  if (usage.reportedCostUsd !== undefined) return usage.reportedCostUsd;
  const price = priceOf(model, overrides);
  if (!price) return null;
  const cacheRead = usage.cacheReadTokens ?? 0;
  const cacheWrite = usage.cacheWriteTokens ?? 0;
  const uncached = Math.max(0, usage.inputTokens - cacheRead - cacheWrite);
  const micro =
    uncached * price.input + cacheRead * (price.cacheRead ?? price.input) + cacheWrite * (price.cacheWrite ?? price.input) + usage.outputTokens * price.output;
  return micro / 1_000_000;
}
