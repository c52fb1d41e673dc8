import { describe, expect, it } from 'vitest';
import { EvalSummarySchema, type ResultLine } from '../eval-types.js';
import { bootstrapMeanCi, quantile } from './bootstrap.js';
import { compareResults } from './compare.js';
import { summarize } from './summarize.js';

function line(task: string | number, score: number | null, extra: Partial<ResultLine> = {}): ResultLine {
  return {
    task_id: String(task),
    method: 'rlm',
    epoch: 1,
    answer: score === null ? null : 'x',
    expected: ['x'],
    score,
    scorer: 'em',
    error: null,
    error_kind: null,
    cost_usd: 0.01,
    input_tokens: 100,
    output_tokens: 10,
    duration_ms: 1000,
    iterations: 1,
    trajectory_file: null,
    attempts: 1,
    context_chars: 0,
    finished_at: '2026-01-01T00:00:00.000Z',
    ...extra,
  };
}

const options = { dataset: 'd.jsonl', planned: 10, methods: ['rlm'] as const };

describe('quantile', () => {
  it('interpolates between the closest ranks (type 7)', () => {
    const sorted = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];
    expect(quantile(sorted, 0.5)).toBe(550);
    expect(quantile(sorted, 0.95)).toBeCloseTo(955, 9);
    expect(quantile(sorted, 0)).toBe(100);
    expect(quantile(sorted, 1)).toBe(1000);
    expect(quantile([7], 0.95)).toBe(7);
  });
});

describe('summarize', () => {
  it('counts model failures as 0 and leaves infra and scorer errors out of accuracy', () => {
    const summary = summarize(
      [
        line(1, 1),
        line(2, 0.5),
        line(3, 0, { error_kind: 'model', error: 'no FINAL', answer: null }),
        line(4, null, { error_kind: 'infra', error: 'docker' }),
        line(5, null, { error_kind: 'scorer', error: 'bad pattern' }),
      ],
      options,
    );
    const rlm = summary.methods.rlm;
    expect(rlm).toMatchObject({ n: 5, scored: 3, errors: 2, input_tokens: 500, output_tokens: 50 });
    expect(rlm?.accuracy).toBeCloseTo(0.5, 12);
    expect(rlm?.cost_usd).toBeCloseTo(0.05, 12);
    expect(summary).toMatchObject({ dataset: 'd.jsonl', planned: 10, finished: 5, pairs: [] });
    expect(EvalSummarySchema.parse(summary)).toEqual(summary);
  });

  it('reports cost as unknown when any result’s cost is', () => {
    expect(summarize([line(1, 1), line(2, 1, { cost_usd: null })], options).methods.rlm?.cost_usd).toBeNull();
  });

  it('gives p50 and p95 of durations by linear interpolation', () => {
    const lines = Array.from({ length: 10 }, (_, i) => line(i, 1, { duration_ms: (10 - i) * 100 }));
    const rlm = summarize(lines, options).methods.rlm;
    expect(rlm?.p50_ms).toBe(550);
    expect(rlm?.p95_ms).toBeCloseTo(955, 9);
  });

  it('keeps the last line of a repeated (task, method, epoch)', () => {
    const summary = summarize([line(1, null, { error_kind: 'infra' }), line(2, 1), line(1, 1)], options);
    expect(summary.finished).toBe(2);
    expect(summary.methods.rlm).toMatchObject({ n: 2, scored: 2, errors: 0, accuracy: 1 });
  });

  it('summarises a method with no result yet as empty', () => {
    const summary = summarize([line(1, 1), line(2, 0)], { ...options, methods: ['rlm', 'direct'] });
    expect(summary.methods.direct).toEqual({
      n: 0,
      scored: 0,
      errors: 0,
      accuracy: null,
      ci95: null,
      cost_usd: 0,
      input_tokens: 0,
      output_tokens: 0,
      p50_ms: null,
      p95_ms: null,
    });
    expect(summary.pairs).toEqual([{ a: 'rlm', b: 'direct', tasks: 0, difference: null, ci95: null }]);
  });

  it('gives no interval for fewer than two tasks', () => {
    expect(summarize([line(1, 1), line(1, 0, { epoch: 2 })], options).methods.rlm?.ci95).toBeNull();
  });

  it('gives a zero-width interval when every score is the same', () => {
    const lines = Array.from({ length: 30 }, (_, i) => line(i, 0.1));
    expect(summarize(lines, options).methods.rlm?.ci95).toEqual([0.1, 0.1]);
  });

  it('gives the same interval for the same seed, another for another seed', () => {
    // Graded scores, so resampled means do not all fall on a few values that any seed would hit.
    const lines = Array.from({ length: 40 }, (_, i) => line(i, ((i * 37) % 101) / 100));
    const first = summarize(lines, { ...options, seed: 7 }).methods.rlm?.ci95;
    expect(summarize(lines, { ...options, seed: 7 }).methods.rlm?.ci95).toEqual(first);
    expect(summarize(lines, { ...options, seed: 8 }).methods.rlm?.ci95).not.toEqual(first);
  });

  it('on a large sample, gives an interval around the mean as wide as the normal approximation', () => {
    const n = 1000;
    const lines = Array.from({ length: n }, (_, i) => line(i, i % 4 === 0 ? 1 : 0));
    const rlm = summarize(lines, options).methods.rlm;
    const [low, high] = rlm?.ci95 ?? [Number.NaN, Number.NaN];
    const p = 0.25;
    expect(low).toBeLessThan(p);
    expect(high).toBeGreaterThan(p);
    const normalHalfWidth = 1.96 * Math.sqrt((p * (1 - p)) / n); // ≈ 0.0268
    expect((high - low) / 2).toBeGreaterThan(normalHalfWidth * 0.85);
    expect((high - low) / 2).toBeLessThan(normalHalfWidth * 1.15);
  });

  it('keeps a task’s epochs together: five identical epochs give the interval of one, wider than if they were independent', () => {
    const scores = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 1 : 0));
    const oneEpoch = scores.map((score, task) => line(task, score));
    const fiveEpochs = scores.flatMap((score, task) => [1, 2, 3, 4, 5].map((epoch) => line(task, score, { epoch })));
    const clustered = summarize(fiveEpochs, options).methods.rlm?.ci95;
    expect(clustered).toEqual(summarize(oneEpoch, options).methods.rlm?.ci95);
    const independent = bootstrapMeanCi(
      fiveEpochs.map((result) => ({ sum: result.score ?? 0, count: 1 })),
      { seed: 1 },
    );
    const width = (ci: [number, number] | null | undefined) => (ci ? ci[1] - ci[0] : Number.NaN);
    expect(width(clustered)).toBeGreaterThan(1.8 * width(independent));
  });

  it('weighs each result once in accuracy when tasks have different numbers of scored epochs', () => {
    const summary = summarize([line(1, 1), line(1, 1, { epoch: 2 }), line(2, 0), line(2, null, { epoch: 2, error_kind: 'infra' })], options);
    expect(summary.methods.rlm?.accuracy).toBeCloseTo(2 / 3, 12);
  });

  it('compares every pair of methods over the tasks both scored, by per-task means', () => {
    const lines = [
      line(1, 1),
      line(1, 0, { epoch: 2 }),
      line(1, 0, { method: 'direct' }),
      line(2, 1),
      line(2, 1, { method: 'direct' }),
      line(3, 1),
      line(3, null, { method: 'direct', error_kind: 'infra' }),
      line(4, 0, { method: 'direct' }),
    ];
    const summary = summarize(lines, { ...options, methods: ['rlm', 'direct'] });
    // common tasks 1 and 2: rlm 0.5 and 1, direct 0 and 1 → differences 0.5 and 0
    expect(summary.pairs).toHaveLength(1);
    const [pair] = summary.pairs;
    expect(pair).toMatchObject({ a: 'rlm', b: 'direct', tasks: 2, difference: 0.25 });
    expect(pair?.ci95?.[0]).toBeGreaterThanOrEqual(0);
    expect(pair?.ci95?.[1]).toBeLessThanOrEqual(0.5);
  });

  it('gives a zero-width paired interval when every task differs by the same amount', () => {
    const lines = Array.from({ length: 10 }, (_, i) => [line(i, 1), line(i, 0.75, { method: 'direct' })]).flat();
    const [pair] = summarize(lines, { ...options, methods: ['rlm', 'direct'] }).pairs;
    expect(pair).toEqual({ a: 'rlm', b: 'direct', tasks: 10, difference: 0.25, ci95: [0.25, 0.25] });
  });
});

describe('compareResults', () => {
  it('compares each method present in both evaluations over their common tasks', () => {
    const a = [line(1, 1), line(2, 1), line(3, 0), line(9, 1), line(1, 1, { method: 'direct' })];
    const b = [line(1, 0), line(2, 1), line(3, 0), line(4, 1), line(1, 1, { method: 'rlm-no-subcalls' })];
    const rows = compareResults(a, b);
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row).toMatchObject({ method: 'rlm', tasks: 3 });
    expect(row?.accuracyA).toBeCloseTo(2 / 3, 12);
    expect(row?.accuracyB).toBeCloseTo(1 / 3, 12);
    expect(row?.difference).toBeCloseTo(1 / 3, 12);
    expect(row?.ci95?.[0]).toBeGreaterThanOrEqual(0);
    expect(row?.ci95?.[1]).toBeLessThanOrEqual(1);
  });

  it('gives nulls for a method with no common task, and is deterministic', () => {
    const rows = compareResults([line(1, 1)], [line(2, 1)]);
    expect(rows).toEqual([{ method: 'rlm', tasks: 0, accuracyA: null, accuracyB: null, difference: null, ci95: null }]);
    const a = Array.from({ length: 30 }, (_, i) => line(i, i % 2));
    const b = Array.from({ length: 30 }, (_, i) => line(i, i % 3 === 0 ? 1 : 0));
    expect(compareResults(a, b, { seed: 3 })).toEqual(compareResults(a, b, { seed: 3 }));
  });
});
