/**
 * What model calls cost: a maintained table of list prices, and the arithmetic from token counts
 * to US dollars. An unknown model has no price and its cost is `null` — never a guess.
 *
 * Sources, as of {@link PRICES_AS_OF}: Anthropic's pricing page (platform.claude.com, "Model
 * pricing": base input, 5-minute cache writes, cache hits, output); OpenAI's API pricing page
 * (standard tier; "cached input"); Google's Gemini API pricing page (paid tier, prompts ≤ 200k
 * tokens; context-caching price for text). Not modelled: batch discounts, priority/flex tiers,
 * long-context surcharges (Gemini 2.5 Pro and Claude Sonnet 4/4.5 over 200k input tokens, GPT-5.4
 * over 270k), 1-hour cache writes, audio/image tokens, cache storage. Pass `overrides` where
 * those matter, or where a provider changed a price after this date.
 */
import type { TokenUsage } from '../models/model-backend.js';

/** The date the table below was last checked against the providers' pages (YYYY-MM-DD). */
export const PRICES_AS_OF = '2026-11-21';

/** A model's list price, in US dollars per million tokens. */
export interface ModelPrice {
  /** Price of an input token, USD per million. */
  input: number;
  /** Price of an output token, USD per million. */
  output: number;
  /** Price of an input token read from the prompt cache; the input price when absent. */
  cacheRead?: number;
  /** Price of an input token written to the prompt cache (Anthropic: the 5-minute cache); the input price when absent. */
  cacheWrite?: number;
}

/** Prices by model id (matched as {@link priceOf} says), overriding and extending the table. */
export type PriceOverrides = Readonly<Record<string, ModelPrice>>;

/** Anthropic bills cache hits at 0.1× and 5-minute cache writes at 1.25× the input price. */
function anthropic(input: number, output: number, cacheRead = input * 0.1): ModelPrice {
  return { input, output, cacheRead: round(cacheRead), cacheWrite: round(input * 1.25) };
}

function withCachedInput(input: number, output: number, cacheRead?: number): ModelPrice {
  return cacheRead === undefined ? { input, output } : { input, output, cacheRead };
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * List prices by model id. Keys are lower case, as the providers' APIs spell the ids; a dated
 * snapshot (`claude-sonnet-4-5-20250929`, `gpt-4o-2024-08-06`) matches its undated key unless it
 * has a key of its own.
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  // Anthropic
  'claude-opus-5-5': anthropic(4, 20, 0.2),
  'claude-opus-5': anthropic(5, 25),
  'claude-opus-4-8': anthropic(5, 25),
  'claude-opus-4-7': anthropic(5, 25),
  'claude-opus-4-6': anthropic(5, 25),
  'claude-opus-4-5': anthropic(5, 25),
  'claude-opus-4-1': anthropic(15, 75),
  'claude-opus-4-0': anthropic(15, 75),
  'claude-opus-4': anthropic(15, 75),
  'claude-sonnet-5-5': anthropic(2, 10, 0.1),
  'claude-sonnet-5': anthropic(2, 10),
  'claude-sonnet-4-6': anthropic(3, 15),
  'claude-sonnet-4-5': anthropic(3, 15),
  'claude-sonnet-4-0': anthropic(3, 15),
  'claude-sonnet-4': anthropic(3, 15),
  'claude-3-7-sonnet': anthropic(3, 15),
  'claude-3-5-sonnet': anthropic(3, 15),
  'claude-haiku-4-5': anthropic(1, 5),
  'claude-3-5-haiku': anthropic(0.8, 4),
  'claude-3-haiku': { input: 0.25, output: 1.25, cacheRead: 0.03, cacheWrite: 0.3 },
  'claude-3-opus': anthropic(15, 75),

  // OpenAI
  'gpt-5.4': withCachedInput(2.5, 15, 0.25),
  'gpt-5.4-mini': withCachedInput(0.75, 4.5, 0.075),
  'gpt-5.4-nano': withCachedInput(0.2, 1.25, 0.02),
  'gpt-5.2': withCachedInput(1.75, 14, 0.175),
  'gpt-5.2-pro': withCachedInput(21, 168),
  'gpt-5.1': withCachedInput(1.25, 10, 0.125),
  'gpt-5.1-codex': withCachedInput(1.25, 10, 0.125),
  'gpt-5.1-codex-mini': withCachedInput(0.25, 2, 0.025),
  'gpt-5': withCachedInput(1.25, 10, 0.125),
  'gpt-5-chat-latest': withCachedInput(1.25, 10, 0.125),
  'gpt-5-codex': withCachedInput(1.25, 10, 0.125),
  'gpt-5-mini': withCachedInput(0.25, 2, 0.025),
  'gpt-5-nano': withCachedInput(0.05, 0.4, 0.005),
  'gpt-5-pro': withCachedInput(15, 120),
  'gpt-4.1': withCachedInput(2, 8, 0.5),
  'gpt-4.1-mini': withCachedInput(0.4, 1.6, 0.1),
  'gpt-4.1-nano': withCachedInput(0.1, 0.4, 0.025),
  'gpt-4o': withCachedInput(2.5, 10, 1.25),
  'gpt-4o-2024-05-13': withCachedInput(5, 15),
  'gpt-4o-mini': withCachedInput(0.15, 0.6, 0.075),
  o3: withCachedInput(2, 8, 0.5),
  'o3-pro': withCachedInput(20, 80),
  'o3-mini': withCachedInput(1.1, 4.4, 0.55),
  'o4-mini': withCachedInput(1.1, 4.4, 0.275),
  o1: withCachedInput(15, 60, 7.5),
  'o1-mini': withCachedInput(1.1, 4.4, 0.55),

  // Google (paid tier, prompts ≤ 200k tokens, text)
  'gemini-3-pro-preview': withCachedInput(2, 12, 0.2),
  'gemini-2.5-pro': withCachedInput(1.25, 10, 0.125),
  'gemini-2.5-flash': withCachedInput(0.3, 2.5, 0.03),
  'gemini-2.5-flash-lite': withCachedInput(0.1, 0.4, 0.01),
  'gemini-2.0-flash': withCachedInput(0.1, 0.4, 0.025),
  'gemini-2.0-flash-lite': withCachedInput(0.075, 0.3),
};

/**
 * What may follow a table key in a model id and still name the same priced model: a date
 * (`-20250929`, `-2024-08-06`, `@20250929` on Vertex), `-latest`, a numbered snapshot (`-001`),
 * a Bedrock version (`-v1:0`), or several of these. Anything else (`-pro`, `-mini`, `-7`, and
 * `-preview…`, whose prices often differ) is another model, priced only if it has its own key.
 */
const VERSION_SUFFIX = /^(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest|-\d{3}|-v\d+(?::\d+)?)+$/;

/**
 * Normalizes how routers and clouds spell a model id: lower case; no provider prefix
 * (`openai/gpt-5`, `models/gemini-2.5-pro`); no Bedrock region or vendor prefix
 * (`us.anthropic.claude-…`); OpenRouter's dotted Claude versions as Anthropic's dashes
 * (`claude-sonnet-4.5` → `claude-sonnet-4-5`).
 */
function normalizeModelId(model: string): string {
  let id = model.trim().toLowerCase();
  id = id.slice(id.lastIndexOf('/') + 1);
  id = id.replace(/^(?:[a-z]{2,6}\.)?anthropic\./, '');
  if (id.startsWith('claude-')) id = id.replace(/(\d)\.(\d)/g, '$1-$2');
  return id;
}

function lookup(table: Readonly<Record<string, ModelPrice>>, id: string): ModelPrice | undefined {
  if (Object.hasOwn(table, id)) return table[id];
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    if (id.startsWith(key) && VERSION_SUFFIX.test(id.slice(key.length)) && (best === undefined || key.length > best.length)) {
      best = key;
    }
  }
  return best === undefined ? undefined : table[best];
}

function normalizeTable(overrides: PriceOverrides): Record<string, ModelPrice> {
  const table: Record<string, ModelPrice> = {};
  for (const [key, price] of Object.entries(overrides)) table[normalizeModelId(key)] = price;
  return table;
}

/**
 * The price of `model`, or `undefined` when it is not known.
 *
 * The id is normalized (see above), then matched exactly or by the longest table key that it
 * extends with a version suffix only: `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`,
 * `anthropic/claude-3.5-haiku` → `claude-3-5-haiku`, but `o3-pro` is not `o3`. An override for
 * the model (exact, or matching the same way) wins over the table, the table over nothing.
 */
export function priceOf(model: string, overrides?: PriceOverrides): ModelPrice | undefined {
  const id = normalizeModelId(model);
  if (overrides) {
    // The caller's exact spelling first, so an override keyed by e.g. `openai/gpt-5` still applies.
    if (Object.hasOwn(overrides, model)) return overrides[model];
    const price = lookup(normalizeTable(overrides), id);
    if (price) return price;
  }
  return lookup(MODEL_PRICES, id);
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
