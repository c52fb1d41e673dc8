import { describe, expect, it } from 'vitest';
import { UsageLedger } from './usage-ledger.js';

describe('UsageLedger', () => {
  it('sums calls, tokens and cost per model', () => {
    const ledger = new UsageLedger();
    ledger.record('gpt-5-mini', { inputTokens: 1_000_000, outputTokens: 0 });
    ledger.record('gpt-5-mini', { inputTokens: 0, outputTokens: 1_000_000, cacheReadTokens: 0 });
    ledger.record('claude-haiku-4-5', { inputTokens: 100, outputTokens: 10, cacheReadTokens: 40, cacheWriteTokens: 50 });
    const snapshot = ledger.snapshot();
    expect(snapshot['gpt-5-mini']).toEqual({
      calls: 2,
      inputTokens: 1_000_000,
      outputTokens: 1_000_000,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      costUsd: 0.25 + 2,
    });
    expect(snapshot['claude-haiku-4-5']).toMatchObject({ calls: 1, cacheReadTokens: 40, cacheWriteTokens: 50 });
    expect(Object.keys(snapshot)).toEqual(['gpt-5-mini', 'claude-haiku-4-5']);
    expect(ledger.totalTokens()).toBe(2_000_110);
    expect(ledger.totalCostUsd()).toBeCloseTo(2.25 + (10 * 1 + 40 * 0.1 + 50 * 1.25 + 10 * 5) / 1e6, 12);
  });

  it('has a null total when any model with calls has no known price', () => {
    const ledger = new UsageLedger();
    ledger.record('gpt-5-mini', { inputTokens: 10, outputTokens: 10 });
    ledger.record('my-local-llama', { inputTokens: 10, outputTokens: 10 });
    expect(ledger.snapshot()['my-local-llama']?.costUsd).toBeNull();
    expect(ledger.totalCostUsd()).toBeNull();
    expect(ledger.totalTokens()).toBe(40);
  });

  it('stays null for a model once one of its calls had an unknown cost', () => {
    const ledger = new UsageLedger();
    ledger.record('unknown-model', { inputTokens: 1, outputTokens: 1, reportedCostUsd: 0.5 });
    ledger.record('unknown-model', { inputTokens: 1, outputTokens: 1 });
    expect(ledger.snapshot()['unknown-model']?.costUsd).toBeNull();
  });

  it('uses reported costs and price overrides', () => {
    const ledger = new UsageLedger({ priceOverrides: { 'my-local-llama': { input: 1, output: 1 } } });
    ledger.record('my-local-llama', { inputTokens: 500_000, outputTokens: 500_000 });
    ledger.record('openrouter/whatever', { inputTokens: 5, outputTokens: 5, reportedCostUsd: 0.25 });
    expect(ledger.totalCostUsd()).toBeCloseTo(1.25, 12);
  });

  it('merges another ledger or a snapshot, as a child run’s usage adds to its parent’s', () => {
    const parent = new UsageLedger();
    parent.record('gpt-5', { inputTokens: 100, outputTokens: 10 });
    const child = new UsageLedger();
    child.record('gpt-5', { inputTokens: 50, outputTokens: 5 });
    child.record('gpt-5-mini', { inputTokens: 20, outputTokens: 2 });
    parent.merge(child);
    parent.merge(child.snapshot());
    const snapshot = parent.snapshot();
    expect(snapshot['gpt-5']).toMatchObject({ calls: 3, inputTokens: 200, outputTokens: 20 });
    expect(snapshot['gpt-5-mini']).toMatchObject({ calls: 2, inputTokens: 40, outputTokens: 4 });
    expect(child.snapshot()['gpt-5']?.calls).toBe(1);
  });

  it('hands out snapshots the caller cannot use to change the ledger', () => {
    const ledger = new UsageLedger();
    ledger.record('gpt-5', { inputTokens: 1, outputTokens: 1 });
    const snapshot = ledger.snapshot();
    if (snapshot['gpt-5']) snapshot['gpt-5'].calls = 99;
    expect(ledger.snapshot()['gpt-5']?.calls).toBe(1);
  });

  it('keeps a model named like an Object property as an entry of its own', () => {
    const ledger = new UsageLedger();
    for (const model of ['__proto__', 'constructor']) ledger.record(model, { inputTokens: 1, outputTokens: 1 });
    const snapshot = ledger.snapshot();
    expect(Object.keys(snapshot)).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(snapshot)).toBe(Object.prototype);
    const merged = new UsageLedger();
    merged.merge(snapshot);
    expect(merged.totalTokens()).toBe(4);
  });

  it('counts cancelled calls apart from completed ones, without making a known total unknown', () => {
    const ledger = new UsageLedger();
    ledger.record('claude-sonnet-4-5', { inputTokens: 1000, outputTokens: 100 });
    ledger.recordCancelled('claude-sonnet-4-5');
    ledger.recordCancelled('some-unpriced-model');
    const usage = ledger.snapshot();
    expect(usage['claude-sonnet-4-5']).toMatchObject({ calls: 1, cancelledCalls: 1, inputTokens: 1000, outputTokens: 100 });
    expect(usage['some-unpriced-model']).toMatchObject({ calls: 0, cancelledCalls: 1, inputTokens: 0, costUsd: 0 });
    expect(ledger.totalCostUsd()).toBeGreaterThan(0);
    const merged = new UsageLedger();
    merged.merge(ledger);
    merged.merge(usage);
    expect(merged.snapshot()['claude-sonnet-4-5']?.cancelledCalls).toBe(2);
  });

  it('reports no cost and no tokens when empty', () => {
    const ledger = new UsageLedger();
    expect(ledger.totalCostUsd()).toBe(0);
    expect(ledger.totalTokens()).toBe(0);
    expect(ledger.snapshot()).toEqual({});
  });
});
