import { describe, expect, it } from 'vitest';
import { MODEL_TABLE, type ModelPrice } from '../models/model-table.js';
import { PRICES_AS_OF, costOf, priceOf, resolvePrice } from './pricing.js';

/** Our table's price of `id`. */
const tablePrice = (id: string): ModelPrice | undefined => MODEL_TABLE.find((entry) => entry.id === id)?.price;

describe('priceOf', () => {
  it('knows current Anthropic, OpenAI and Google models', () => {
    expect(priceOf('claude-sonnet-4-5')).toEqual({ input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 });
    expect(priceOf('claude-opus-4-1')).toEqual({ input: 15, output: 75, cacheRead: 1.5, cacheWrite: 18.75 });
    expect(priceOf('claude-opus-4-5')).toMatchObject({ input: 5, output: 25 });
    expect(priceOf('claude-haiku-4-5')).toEqual({ input: 1, output: 5, cacheRead: 0.1, cacheWrite: 1.25 });
    expect(priceOf('claude-3-5-haiku-latest')).toMatchObject({ input: 0.8, output: 4 });
    expect(priceOf('gpt-5')).toEqual({ input: 1.25, output: 10, cacheRead: 0.125 });
    expect(priceOf('gpt-5-mini')).toMatchObject({ input: 0.25, output: 2 });
    expect(priceOf('gpt-5-nano')).toMatchObject({ input: 0.05, output: 0.4 });
    expect(priceOf('gpt-4.1-mini')).toMatchObject({ input: 0.4, output: 1.6 });
    expect(priceOf('gpt-4o-mini')).toMatchObject({ input: 0.15, output: 0.6 });
    expect(priceOf('o4-mini')).toMatchObject({ input: 1.1, output: 4.4 });
    expect(priceOf('gemini-2.5-pro')).toMatchObject({ input: 1.25, output: 10 });
    expect(priceOf('gemini-2.5-flash-lite')).toMatchObject({ input: 0.1, output: 0.4 });
    expect(PRICES_AS_OF).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('matches dated snapshots and version suffixes to the undated model', () => {
    expect(priceOf('claude-sonnet-4-5-20250929')).toBe(tablePrice('claude-sonnet-4-5'));
    expect(priceOf('claude-opus-4-20250514')).toBe(tablePrice('claude-opus-4'));
    expect(priceOf('claude-opus-4-1-20250805')).toBe(tablePrice('claude-opus-4-1'));
    expect(priceOf('gpt-4o-2024-08-06')).toBe(tablePrice('gpt-4o'));
    expect(priceOf('gpt-5-2025-08-07')).toBe(tablePrice('gpt-5'));
    expect(priceOf('gemini-2.0-flash-001')).toBe(tablePrice('gemini-2.0-flash'));
    expect(priceOf('claude-sonnet-4-5@20250929')).toBe(tablePrice('claude-sonnet-4-5'));
  });

  it('lets a snapshot with a price of its own keep it', () => {
    expect(priceOf('gpt-4o-2024-05-13')).toEqual({ input: 5, output: 15 });
  });

  it('reads router and cloud spellings of model ids', () => {
    expect(priceOf('openai/gpt-5')).toBe(tablePrice('gpt-5'));
    expect(priceOf('anthropic/claude-sonnet-4.5')).toBe(tablePrice('claude-sonnet-4-5'));
    expect(priceOf('anthropic/claude-3.5-haiku')).toBe(tablePrice('claude-3-5-haiku'));
    expect(priceOf('google/gemini-2.5-flash')).toBe(tablePrice('gemini-2.5-flash'));
    expect(priceOf('models/gemini-2.5-pro')).toBe(tablePrice('gemini-2.5-pro'));
    expect(priceOf('us.anthropic.claude-sonnet-4-20250514-v1:0')).toBe(tablePrice('claude-sonnet-4'));
    expect(priceOf('GPT-4.1')).toBe(tablePrice('gpt-4.1'));
  });

  it('does not give a variant the price of the model it extends', () => {
    expect(priceOf('o3-pro')).toEqual({ input: 20, output: 80 });
    // Priced, if at all, at its own price (the maintained data's), never at o3's.
    expect(priceOf('o3-deep-research')).not.toEqual(tablePrice('o3'));
    expect(resolvePrice('gpt-4o-audio-preview')?.from).not.toBe('table');
    expect(priceOf('claude-opus-4-9')).toBeUndefined();
    expect(priceOf('claude-sonnet-5-7')).toBeUndefined();
    expect(priceOf('gemini-2.5-flash-preview-05-20')).toBeUndefined();
    expect(priceOf('my-local-llama')).toBeUndefined();
  });

  it('says where a price came from: the overrides, our table, or the maintained data', () => {
    expect(resolvePrice('gpt-5', { 'gpt-5': { input: 1, output: 2 } })).toEqual({ price: { input: 1, output: 2 }, from: 'override' });
    expect(resolvePrice('gpt-5')).toEqual({ price: tablePrice('gpt-5'), from: 'table' });
    expect(resolvePrice('o3-deep-research')?.from).toBe('genai-prices');
    expect(resolvePrice('my-local-llama')).toBeUndefined();
  });

  it('lets overrides win over the table and price unknown models', () => {
    const overrides = { 'gpt-5': { input: 1, output: 2 }, 'my-local-llama': { input: 0, output: 0 }, 'openai/gpt-5-mini': { input: 9, output: 9 } };
    expect(priceOf('gpt-5-2025-08-07', overrides)).toEqual({ input: 1, output: 2 });
    expect(priceOf('my-local-llama', overrides)).toEqual({ input: 0, output: 0 });
    expect(priceOf('openai/gpt-5-mini', overrides)).toEqual({ input: 9, output: 9 });
    expect(priceOf('gpt-5-mini', overrides)).toEqual({ input: 9, output: 9 });
    expect(priceOf('gpt-5-nano', overrides)).toBe(tablePrice('gpt-5-nano'));
  });
});

describe('costOf', () => {
  it('multiplies tokens by the price per million', () => {
    expect(costOf('claude-sonnet-4-5', { inputTokens: 1_000_000, outputTokens: 100_000 })).toBeCloseTo(3 + 1.5, 10);
    expect(costOf('gpt-5-mini', { inputTokens: 2_000, outputTokens: 1_000 })).toBeCloseTo(0.0005 + 0.002, 12);
  });

  it('bills cache reads and writes, counted within the input tokens, at the cache prices', () => {
    // 1M input tokens: 600k read from the cache, 300k written to it, 100k neither.
    const usage = { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 600_000, cacheWriteTokens: 300_000 };
    expect(costOf('claude-sonnet-4-5', usage)).toBeCloseTo(0.1 * 3 + 0.6 * 0.3 + 0.3 * 3.75, 10);
    // OpenAI has no cache-write price: writes are billed as input.
    expect(costOf('gpt-5', { inputTokens: 1_000_000, outputTokens: 0, cacheReadTokens: 500_000 })).toBeCloseTo(0.5 * 1.25 + 0.5 * 0.125, 10);
  });

  it('is null for a model without a price, never a guess', () => {
    expect(costOf('my-local-llama', { inputTokens: 10, outputTokens: 10 })).toBeNull();
  });

  it('prefers the cost the provider reported', () => {
    expect(costOf('claude-sonnet-4-5', { inputTokens: 1_000_000, outputTokens: 0, reportedCostUsd: 0.42 })).toBe(0.42);
    expect(costOf('some/unknown-model', { inputTokens: 5, outputTokens: 5, reportedCostUsd: 0.001 })).toBe(0.001);
  });
});
