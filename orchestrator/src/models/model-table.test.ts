import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  CONTEXT_WINDOW_FAMILIES,
  DEFAULT_CONTEXT_WINDOW_TOKENS,
  MODEL_TABLE,
  contextWindowOf,
  estimateTokens,
  lookupModel,
  matchVersioned,
  normalizeModelId,
} from './model-table.js';

const entry = (id: string) => MODEL_TABLE.find((e) => e.id === id);

describe('the model table', () => {
  it('gives each entry a lower-case id, a positive window, an output limit below it, and a price of non-negative numbers', () => {
    const keys = new Set<string>();
    for (const e of MODEL_TABLE) {
      for (const key of [e.id, ...(e.aliases ?? [])]) {
        expect(key, key).toBe(normalizeModelId(key));
        expect(keys.has(key), `${key} is listed twice`).toBe(false);
        keys.add(key);
      }
      expect(e.contextWindowTokens, e.id).toBeGreaterThan(0);
      if (e.outputLimitTokens !== undefined) expect(e.outputLimitTokens, e.id).toBeLessThanOrEqual(e.contextWindowTokens);
      for (const value of Object.values(e.price ?? {})) expect(value, e.id).toBeGreaterThanOrEqual(0);
    }
    for (const [prefix] of CONTEXT_WINDOW_FAMILIES) expect(prefix).toBe(prefix.toLowerCase());
  });

  it('prices Anthropic cache reads at 0.1× and 5-minute cache writes at 1.25× the input price', () => {
    for (const e of MODEL_TABLE) {
      if (!e.id.startsWith('claude-') || !e.price || e.id === 'claude-3-haiku' || e.id.endsWith('-5-5')) continue;
      expect(e.price.cacheRead, e.id).toBeCloseTo(e.price.input * 0.1, 6);
      expect(e.price.cacheWrite, e.id).toBeCloseTo(e.price.input * 1.25, 6);
    }
  });
});

describe('lookupModel', () => {
  it('knows the window, output limit and price of a model in the table', () => {
    expect(lookupModel('claude-sonnet-4-5')).toEqual({
      id: 'claude-sonnet-4-5',
      entryId: 'claude-sonnet-4-5',
      contextWindowTokens: 200_000,
      contextWindowFrom: 'table',
      outputLimitTokens: 64_000,
      price: { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
      priceFrom: 'table',
    });
    expect(lookupModel('gpt-4.1-mini')).toMatchObject({ contextWindowTokens: 1_047_576, outputLimitTokens: 32_768, price: { input: 0.4, output: 1.6 } });
    expect(lookupModel('gemini-2.0-flash')).toMatchObject({ contextWindowTokens: 1_048_576, outputLimitTokens: 8_192 });
  });

  it('resolves dated snapshots, -latest, aliases and router or cloud spellings to the same entry', () => {
    for (const id of [
      'claude-sonnet-4-5-20250929',
      'claude-sonnet-4-5@20250929',
      'anthropic/claude-sonnet-4.5',
      'Claude-Sonnet-4-5',
      'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
    ]) {
      expect(lookupModel(id).entryId, id).toBe('claude-sonnet-4-5');
    }
    expect(lookupModel('claude-3-5-haiku-latest').entryId).toBe('claude-3-5-haiku');
    expect(lookupModel('claude-opus-4-0').entryId).toBe('claude-opus-4');
    expect(lookupModel('claude-sonnet-4-0-20250514').entryId).toBe('claude-sonnet-4');
    expect(lookupModel('openai/gpt-5-2025-08-07').entryId).toBe('gpt-5');
    expect(lookupModel('models/gemini-2.5-pro').entryId).toBe('gemini-2.5-pro');
    expect(lookupModel('gemini-2.0-flash-001').entryId).toBe('gemini-2.0-flash');
  });

  it('lets a snapshot or variant with an entry of its own keep it', () => {
    expect(lookupModel('gpt-4o-2024-05-13')).toMatchObject({ entryId: 'gpt-4o-2024-05-13', outputLimitTokens: 4_096, price: { input: 5, output: 15 } });
    expect(lookupModel('o3-pro').entryId).toBe('o3-pro');
    expect(lookupModel('o1-mini')).toMatchObject({ contextWindowTokens: 128_000, outputLimitTokens: 65_536 });
  });

  it("prices a model our table lacks from the maintained data, at that model's own price", () => {
    const deepResearch = lookupModel('o3-deep-research');
    expect(deepResearch).toMatchObject({ priceFrom: 'genai-prices', contextWindowFrom: 'genai-prices' });
    expect(deepResearch.entryId).toBeUndefined();
    expect(deepResearch.price).not.toEqual(entry('o3')?.price);
    expect(deepResearch.price?.input).toBeGreaterThan(0);
    expect(lookupModel('grok-4')).toMatchObject({ priceFrom: 'genai-prices', price: { input: expect.any(Number), output: expect.any(Number) } });
    // An entry of ours without a price takes the maintained one, and keeps its own window.
    expect(lookupModel('deepseek-chat')).toMatchObject({
      entryId: 'deepseek-chat',
      contextWindowTokens: 128_000,
      contextWindowFrom: 'table',
      priceFrom: 'genai-prices',
    });
  });

  it("does not take the maintained data's guesses: a variant is not priced as the model it extends", () => {
    // The maintained data matches claude-sonnet-5* to claude-sonnet-5; a -7 is another model.
    expect(lookupModel('claude-sonnet-5-7').price).toBeUndefined();
    expect(lookupModel('claude-opus-4-9').price).toBeUndefined();
    expect(lookupModel('gemini-2.5-flash-preview-05-20').price).toBeUndefined();
    expect(lookupModel('my-local-llama').price).toBeUndefined();
    expect(lookupModel('claude-sonnet-5-7').outputLimitTokens).toBeUndefined();
  });

  it('reads the maintained data from the installed package, without any network request', () => {
    const fetch = vi.spyOn(globalThis, 'fetch');
    expect(lookupModel('o3-deep-research-2025-06-26').priceFrom).toBe('genai-prices');
    expect(fetch).not.toHaveBeenCalled();
  });

  it('follows a maintained price that changes with the time of day (DeepSeek off-peak), rather than keeping the first one', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-03T12:00:00Z'));
    const peak = lookupModel('deepseek-chat').price;
    vi.setSystemTime(new Date('2026-12-03T20:00:00Z'));
    const offPeak = lookupModel('deepseek-chat').price;
    expect(peak?.input).toBeGreaterThan(offPeak?.input ?? Number.POSITIVE_INFINITY);
  });

  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });
});

describe('contextWindowOf', () => {
  it('gives a known model its window, a new variant its family window by the longest prefix, and others the default', () => {
    expect(contextWindowOf('claude-sonnet-4-5-20250929')).toBe(200_000);
    expect(contextWindowOf('gpt-5.4')).toBe(1_050_000);
    expect(contextWindowOf('gpt-5-chat-latest')).toBe(128_000);
    // No entry, ours or maintained, names these: the family's window.
    expect(contextWindowOf('claude-opus-4-9')).toBe(200_000);
    expect(contextWindowOf('gpt-4.1-mini-experimental')).toBe(1_047_576);
    expect(contextWindowOf('qwen3:8b')).toBe(131_072);
    expect(contextWindowOf('llama-3.3-70b-versatile')).toBe(128_000);
    // The Claude CLI's aliases.
    expect(contextWindowOf('sonnet')).toBe(200_000);
    expect(contextWindowOf('my-local-llama')).toBe(DEFAULT_CONTEXT_WINDOW_TOKENS);
    expect(lookupModel('my-local-llama').contextWindowFrom).toBe('default');
  });
});

describe('matchVersioned', () => {
  it('takes the key itself or the longest key extended by version suffixes only', () => {
    const keys = ['gpt-4o', 'gpt-4o-mini', 'o3'];
    expect(matchVersioned(keys, 'gpt-4o-mini-2024-07-18')).toBe('gpt-4o-mini');
    expect(matchVersioned(keys, 'gpt-4o-latest')).toBe('gpt-4o');
    expect(matchVersioned(keys, 'o3-pro')).toBeUndefined();
    expect(matchVersioned(keys, 'o3-v1:0')).toBe('o3');
  });
});

describe('estimateTokens', () => {
  it('counts 3.5 characters a token, rounding up', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcdefg')).toBe(2);
    expect(estimateTokens('x'.repeat(3_500_000))).toBe(1_000_000);
  });
});
