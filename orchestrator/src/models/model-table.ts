/**
 * What rlm knows of each model, in one table: its context window, its output limit, its list price
 * and the other ids it goes by. Pricing (`usage/pricing.ts`), the context-window guard (the engine
 * refuses a prompt that cannot fit before any provider sees it) and `rlm doctor` all read it
 * through {@link lookupModel}.
 *
 * Under the table lies a maintained one, the `@pydantic/genai-prices` package's bundled data, read
 * from the installed package (never fetched): a model our table does not know is still priced, and
 * its context window known, when that data knows it. Our table wins wherever it has the fact. The
 * package is loaded on the first lookup our table cannot answer (about 50 ms and 20 MB, once per
 * process), never at import, so `rlm --version` does not pay for it.
 *
 * Sources of our table, as of {@link MODEL_TABLE_AS_OF}: Anthropic's pricing and models pages
 * (base input, 5-minute cache writes, cache hits, output; context window and max output);
 * OpenAI's API pricing page (standard tier; "cached input") and model pages; Google's Gemini API
 * pricing page (paid tier, prompts ≤ 200k tokens; context-caching price for text) and model
 * pages. Not modelled, here or from the maintained data: batch discounts, priority/flex tiers,
 * long-context surcharges (Gemini 2.5 Pro and Claude Sonnet 4/4.5 over 200k input tokens, GPT-5.4
 * over 272k: the base price is used), 1-hour cache writes, audio/image tokens, cache storage.
 * Pass price overrides (`prices`) where those matter, or where a provider changed a price.
 */
import { createRequire } from 'node:module';
import type * as GenaiPrices from '@pydantic/genai-prices';

/** The date our table was last checked against the providers' pages (YYYY-MM-DD). */
export const MODEL_TABLE_AS_OF = '2026-11-21';

/** Assumed for a model nobody knows the window of, in tokens; override per role with `contextWindowTokens`. */
export const DEFAULT_CONTEXT_WINDOW_TOKENS = 128_000;

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

/** One model our table knows. */
export interface ModelEntry {
  /** The id as the provider's API spells it, lower case. */
  readonly id: string;
  /** Other ids of the same model (dated snapshots and `-latest` need none: see {@link lookupModel}). */
  readonly aliases?: readonly string[];
  /** Input and output together, in tokens, as the provider's API serves it without beta headers. */
  readonly contextWindowTokens: number;
  /** The most output tokens one call may ask for; absent where we have not checked it. */
  readonly outputLimitTokens?: number;
  /** The list price; absent where the maintained data's price is used. */
  readonly price?: ModelPrice;
}

/** Anthropic bills cache hits at 0.1× and 5-minute cache writes at 1.25× the input price. */
function anthropic(input: number, output: number, cacheRead = input * 0.1): ModelPrice {
  return { input, output, cacheRead: round(cacheRead), cacheWrite: round(input * 1.25) };
}

function withCachedInput(input: number, output: number, cacheRead?: number): ModelPrice {
  return cacheRead === undefined ? { input, output } : { input, output, cacheRead };
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/** Claude's window without the 1M-context beta header, which the Anthropic backend does not send. */
const CLAUDE_WINDOW = 200_000;
const GEMINI_WINDOW = 1_048_576;

function entry(id: string, contextWindowTokens: number, outputLimitTokens: number | undefined, price: ModelPrice | undefined, aliases?: string[]): ModelEntry {
  return {
    id,
    contextWindowTokens,
    ...(outputLimitTokens === undefined ? {} : { outputLimitTokens }),
    ...(price === undefined ? {} : { price }),
    ...(aliases === undefined ? {} : { aliases }),
  };
}

/**
 * The models we know, by the id their provider's API uses (lower case). An output limit left
 * `undefined` is one we have not checked: shown as unknown, never guessed.
 */
export const MODEL_TABLE: readonly ModelEntry[] = [
  // Anthropic
  entry('claude-opus-5-5', CLAUDE_WINDOW, undefined, anthropic(4, 20, 0.2)),
  entry('claude-opus-5', CLAUDE_WINDOW, undefined, anthropic(5, 25)),
  entry('claude-opus-4-8', CLAUDE_WINDOW, undefined, anthropic(5, 25)),
  entry('claude-opus-4-7', CLAUDE_WINDOW, undefined, anthropic(5, 25)),
  entry('claude-opus-4-6', CLAUDE_WINDOW, 128_000, anthropic(5, 25)),
  entry('claude-opus-4-5', CLAUDE_WINDOW, 64_000, anthropic(5, 25)),
  entry('claude-opus-4-1', CLAUDE_WINDOW, 32_000, anthropic(15, 75)),
  entry('claude-opus-4', CLAUDE_WINDOW, 32_000, anthropic(15, 75), ['claude-opus-4-0']),
  entry('claude-sonnet-5-5', CLAUDE_WINDOW, undefined, anthropic(2, 10, 0.1)),
  entry('claude-sonnet-5', CLAUDE_WINDOW, undefined, anthropic(2, 10)),
  entry('claude-sonnet-4-6', CLAUDE_WINDOW, 64_000, anthropic(3, 15)),
  entry('claude-sonnet-4-5', CLAUDE_WINDOW, 64_000, anthropic(3, 15)),
  entry('claude-sonnet-4', CLAUDE_WINDOW, 64_000, anthropic(3, 15), ['claude-sonnet-4-0']),
  entry('claude-3-7-sonnet', CLAUDE_WINDOW, 64_000, anthropic(3, 15)),
  entry('claude-3-5-sonnet', CLAUDE_WINDOW, 8_192, anthropic(3, 15)),
  entry('claude-haiku-4-5', CLAUDE_WINDOW, 64_000, anthropic(1, 5)),
  entry('claude-3-5-haiku', CLAUDE_WINDOW, 8_192, anthropic(0.8, 4)),
  entry('claude-3-haiku', CLAUDE_WINDOW, 4_096, { input: 0.25, output: 1.25, cacheRead: 0.03, cacheWrite: 0.3 }),
  entry('claude-3-opus', CLAUDE_WINDOW, 4_096, anthropic(15, 75)),

  // OpenAI
  entry('gpt-5.4', 1_050_000, 128_000, withCachedInput(2.5, 15, 0.25)),
  entry('gpt-5.4-mini', 400_000, undefined, withCachedInput(0.75, 4.5, 0.075)),
  entry('gpt-5.4-nano', 400_000, undefined, withCachedInput(0.2, 1.25, 0.02)),
  entry('gpt-5.2', 400_000, 128_000, withCachedInput(1.75, 14, 0.175)),
  entry('gpt-5.2-pro', 400_000, 128_000, withCachedInput(21, 168)),
  entry('gpt-5.1', 400_000, 128_000, withCachedInput(1.25, 10, 0.125)),
  entry('gpt-5.1-codex', 400_000, 128_000, withCachedInput(1.25, 10, 0.125)),
  entry('gpt-5.1-codex-mini', 400_000, 128_000, withCachedInput(0.25, 2, 0.025)),
  entry('gpt-5', 400_000, 128_000, withCachedInput(1.25, 10, 0.125)),
  entry('gpt-5-chat-latest', 128_000, 16_384, withCachedInput(1.25, 10, 0.125)),
  entry('gpt-5-codex', 400_000, 128_000, withCachedInput(1.25, 10, 0.125)),
  entry('gpt-5-mini', 400_000, 128_000, withCachedInput(0.25, 2, 0.025)),
  entry('gpt-5-nano', 400_000, 128_000, withCachedInput(0.05, 0.4, 0.005)),
  entry('gpt-5-pro', 400_000, 272_000, withCachedInput(15, 120)),
  entry('gpt-4.1', 1_047_576, 32_768, withCachedInput(2, 8, 0.5)),
  entry('gpt-4.1-mini', 1_047_576, 32_768, withCachedInput(0.4, 1.6, 0.1)),
  entry('gpt-4.1-nano', 1_047_576, 32_768, withCachedInput(0.1, 0.4, 0.025)),
  entry('gpt-4o', 128_000, 16_384, withCachedInput(2.5, 10, 1.25)),
  entry('gpt-4o-2024-05-13', 128_000, 4_096, withCachedInput(5, 15)),
  entry('gpt-4o-mini', 128_000, 16_384, withCachedInput(0.15, 0.6, 0.075)),
  entry('o3', 200_000, 100_000, withCachedInput(2, 8, 0.5)),
  entry('o3-pro', 200_000, 100_000, withCachedInput(20, 80)),
  entry('o3-mini', 200_000, 100_000, withCachedInput(1.1, 4.4, 0.55)),
  entry('o4-mini', 200_000, 100_000, withCachedInput(1.1, 4.4, 0.275)),
  entry('o1', 200_000, 100_000, withCachedInput(15, 60, 7.5)),
  entry('o1-mini', 128_000, 65_536, withCachedInput(1.1, 4.4, 0.55)),

  // Google (paid tier, prompts ≤ 200k tokens, text)
  entry('gemini-3-pro-preview', GEMINI_WINDOW, 65_536, withCachedInput(2, 12, 0.2)),
  entry('gemini-2.5-pro', GEMINI_WINDOW, 65_536, withCachedInput(1.25, 10, 0.125)),
  entry('gemini-2.5-flash', GEMINI_WINDOW, 65_536, withCachedInput(0.3, 2.5, 0.03)),
  entry('gemini-2.5-flash-lite', GEMINI_WINDOW, 65_536, withCachedInput(0.1, 0.4, 0.01)),
  entry('gemini-2.0-flash', GEMINI_WINDOW, 8_192, withCachedInput(0.1, 0.4, 0.025)),
  entry('gemini-2.0-flash-lite', GEMINI_WINDOW, 8_192, withCachedInput(0.075, 0.3)),

  // DeepSeek: the window only (the maintained data still says 64k, the V3 figure); its prices
  // vary by time of day, which the maintained data models.
  entry('deepseek-chat', 128_000, undefined, undefined),
  entry('deepseek-reasoner', 128_000, undefined, undefined),
];

/**
 * Context windows of model families, by id prefix, for ids that no entry (ours or the maintained
 * data's) names: a new snapshot or variant is assumed to keep its family's window. Every id and
 * alias of {@link MODEL_TABLE} is such a prefix too; the longest prefix wins.
 */
export const CONTEXT_WINDOW_FAMILIES: ReadonlyArray<readonly [prefix: string, tokens: number]> = [
  ['claude-', CLAUDE_WINDOW],
  // The Claude CLI's aliases (`--backend claude-cli --model sonnet`): whichever model of the
  // family the installed CLI picks; every one has this window.
  ['sonnet', CLAUDE_WINDOW],
  ['opus', CLAUDE_WINDOW],
  ['haiku', CLAUDE_WINDOW],
  ['gemini-2.5', GEMINI_WINDOW],
  ['gemini-2.0', GEMINI_WINDOW],
  ['deepseek', 128_000],
  ['qwen3', 131_072],
  ['llama-3', 128_000],
];

/** Where a fact came from: our table, the maintained data, a family prefix, or the default. */
export type ModelFactSource = 'table' | 'genai-prices' | 'family' | 'default';

/** What {@link lookupModel} knows of one model id. */
export interface ModelFacts {
  /** The id looked up, normalized (see {@link normalizeModelId}). */
  readonly id: string;
  /** The id of our table's entry it resolved to, when our table knows the model. */
  readonly entryId?: string;
  /** The context window in tokens; {@link DEFAULT_CONTEXT_WINDOW_TOKENS} when nobody knows it. */
  readonly contextWindowTokens: number;
  readonly contextWindowFrom: ModelFactSource;
  /** The most output tokens one call may ask for; undefined when unknown. */
  readonly outputLimitTokens?: number;
  /** The list price; undefined when the model has no known price (its cost is then unknown, never guessed). */
  readonly price?: ModelPrice;
  readonly priceFrom?: 'table' | 'genai-prices';
}

/**
 * What may follow a known id in a model id and still name the same model: a date
 * (`-20250929`, `-2024-08-06`, `@20250929` on Vertex), `-latest`, a numbered snapshot (`-001`),
 * a Bedrock version (`-v1:0`), or several of these. Anything else (`-pro`, `-mini`, `-7`, and
 * `-preview…`, whose prices often differ) is another model, known only if it has its own entry.
 */
const VERSION_SUFFIX = /^(?:[-@]\d{8}|-\d{4}-\d{2}-\d{2}|-latest|-\d{3}|-v\d+(?::\d+)?)+$/;

/**
 * Normalizes how routers and clouds spell a model id: lower case; no provider prefix
 * (`openai/gpt-5`, `models/gemini-2.5-pro`); no Bedrock region or vendor prefix
 * (`us.anthropic.claude-…`); OpenRouter's dotted Claude versions as Anthropic's dashes
 * (`claude-sonnet-4.5` → `claude-sonnet-4-5`).
 */
export function normalizeModelId(model: string): string {
  let id = model.trim().toLowerCase();
  id = id.slice(id.lastIndexOf('/') + 1);
  id = id.replace(/^(?:[a-z]{2,6}\.)?anthropic\./, '');
  if (id.startsWith('claude-')) id = id.replace(/(\d)\.(\d)/g, '$1-$2');
  return id;
}

/**
 * The key among `keys` that `id` (normalized) names: the key itself, else the longest key that `id`
 * extends with a version suffix only (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, but
 * `o3-pro` is not `o3`). Undefined when none does.
 */
export function matchVersioned(keys: Iterable<string>, id: string): string | undefined {
  let best: string | undefined;
  for (const key of keys) {
    if (key === id) return key;
    if (id.startsWith(key) && VERSION_SUFFIX.test(id.slice(key.length)) && (best === undefined || key.length > best.length)) best = key;
  }
  return best;
}

const entriesByKey: ReadonlyMap<string, ModelEntry> = new Map(MODEL_TABLE.flatMap((e) => [e.id, ...(e.aliases ?? [])].map((key) => [key, e] as const)));

/** Context windows by prefix: every id and alias of the table, then the families. */
const windowPrefixes: ReadonlyArray<readonly [string, number]> = [
  ...[...entriesByKey].map(([key, e]) => [key, e.contextWindowTokens] as const),
  ...CONTEXT_WINDOW_FAMILIES,
];

const cache = new Map<string, ModelFacts>();
/** Bounds the memo when ids come from many sources (a service): it is cleared when this full. */
const CACHE_LIMIT = 1_000;

/**
 * What is known of `model`: its context window, output limit and price. Never throws; opens no
 * connection.
 *
 * The id is normalized ({@link normalizeModelId}), then resolved:
 * - our table's entry, if the id is its id or alias, or one of these with a version suffix
 *   (`claude-3-5-haiku-latest` → `claude-3-5-haiku`);
 * - else, for what the entry lacks, the maintained data's model, under the same rule (its own,
 *   looser matching is not trusted: `claude-sonnet-5-7` is not `claude-sonnet-5`);
 * - the context window, where neither names the model, by the longest known prefix (a table id
 *   or a {@link CONTEXT_WINDOW_FAMILIES} prefix), else {@link DEFAULT_CONTEXT_WINDOW_TOKENS};
 * - the price and the output limit are never inferred from a family: undefined when unknown.
 *
 * Answers are memoized per id, except a maintained price that depends on the time of day or the
 * date, which is the one in force at each call.
 */
export function lookupModel(model: string): ModelFacts {
  const cached = cache.get(model);
  if (cached) return cached;
  const { facts, lasting } = resolve(model);
  if (!lasting) return facts;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(model, facts);
  return facts;
}

/** The facts, and whether they hold for the life of the process (a maintained price may change with the time of day or on a date). */
function resolve(model: string): { facts: ModelFacts; lasting: boolean } {
  const id = normalizeModelId(model);
  const key = matchVersioned(entriesByKey.keys(), id);
  const known = key === undefined ? undefined : entriesByKey.get(key);
  const maintained = known?.price ? undefined : maintainedModel(id);
  let contextWindowTokens: number;
  let contextWindowFrom: ModelFactSource;
  if (known) {
    contextWindowTokens = known.contextWindowTokens;
    contextWindowFrom = 'table';
  } else if (maintained?.contextWindowTokens !== undefined) {
    contextWindowTokens = maintained.contextWindowTokens;
    contextWindowFrom = 'genai-prices';
  } else {
    const family = longestPrefix(id);
    contextWindowTokens = family ?? DEFAULT_CONTEXT_WINDOW_TOKENS;
    contextWindowFrom = family === undefined ? 'default' : 'family';
  }
  const price = known?.price ?? maintained?.price;
  const facts: ModelFacts = {
    id,
    ...(known ? { entryId: known.id } : {}),
    contextWindowTokens,
    contextWindowFrom,
    ...(known?.outputLimitTokens === undefined ? {} : { outputLimitTokens: known.outputLimitTokens }),
    ...(price === undefined ? {} : { price, priceFrom: known?.price ? ('table' as const) : ('genai-prices' as const) }),
  };
  return { facts, lasting: !maintained?.scheduled };
}

function longestPrefix(id: string): number | undefined {
  let best: readonly [string, number] | undefined;
  for (const prefix of windowPrefixes) {
    if (id.startsWith(prefix[0]) && (!best || prefix[0].length > best[0].length)) best = prefix;
  }
  return best?.[1];
}

/** The context window of `model` in tokens (see {@link lookupModel}). */
export function contextWindowOf(model: string): number {
  return lookupModel(model).contextWindowTokens;
}

/**
 * Tokens `text` will take, estimated at 3.5 characters a token (English prose runs ~4, code and
 * other scripts fewer), erring on the side of refusing a prompt that might not fit.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3.5);
}

// ---------------------------------------------------------------------------------------------
// The maintained data

type GenaiModule = typeof GenaiPrices;

/** Loaded on first use, synchronously (pricing is synchronous), from the installed package. */
let genai: GenaiModule | undefined;

function genaiPrices(): GenaiModule {
  genai ??= createRequire(import.meta.url)('@pydantic/genai-prices') as GenaiModule;
  return genai;
}

/**
 * The maintained data's context window and current price of `id` (normalized), when it names the
 * model; `scheduled` when its price depends on the time of day or the date (DeepSeek's off-peak
 * hours, an announced change).
 */
function maintainedModel(id: string): { contextWindowTokens?: number; price?: ModelPrice; scheduled: boolean } | undefined {
  let found: GenaiPrices.PriceCalculationResult;
  try {
    // Prices under a time-of-day or start-date constraint are the ones in force now.
    found = genaiPrices().calcPrice({}, id);
  } catch {
    // Data it cannot read: as if it did not know the model (our table and the defaults still answer).
    return undefined;
  }
  if (!found || !namesModel(found.model, id)) return undefined;
  const price = priceFromGenai(found.model_price);
  return {
    ...(found.model.context_window === undefined ? {} : { contextWindowTokens: found.model.context_window }),
    ...(price === undefined ? {} : { price }),
    scheduled: Array.isArray(found.model.prices),
  };
}

/** Whether `model`'s id or one of the ids its match rule spells out is `id`, or `id` without a version suffix. */
function namesModel(model: GenaiPrices.ModelInfo, id: string): boolean {
  const spelled = [model.id.toLowerCase()];
  const collect = (logic: GenaiPrices.MatchLogic): void => {
    if ('or' in logic) logic.or.forEach(collect);
    else if ('equals' in logic) spelled.push(logic.equals.toLowerCase());
    else if ('starts_with' in logic) spelled.push(logic.starts_with.toLowerCase());
  };
  collect(model.match);
  return matchVersioned(spelled, id) !== undefined;
}

/** Our price from the maintained one: per million tokens; the base of a tiered price (long-context surcharges are not modelled). */
function priceFromGenai(price: GenaiPrices.ModelPrice): ModelPrice | undefined {
  const perMillion = (key: string): number | undefined => {
    const value = price[key];
    return typeof value === 'number' ? value : value === undefined ? undefined : value.base;
  };
  const input = perMillion('input_mtok');
  const output = perMillion('output_mtok');
  // A model priced by request or by audio second is not one a token count can price.
  if (input === undefined || output === undefined) return undefined;
  const cacheRead = perMillion('cache_read_mtok');
  const cacheWrite = perMillion('cache_write_mtok');
  return { input, output, ...(cacheRead === undefined ? {} : { cacheRead }), ...(cacheWrite === undefined ? {} : { cacheWrite }) };
}
