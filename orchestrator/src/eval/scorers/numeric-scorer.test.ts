import { describe, expect, it } from 'vitest';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { findNumbers, firstNumber } from './numbers.js';
import { numericScorer } from './numeric-scorer.js';

async function scoreWith(scorer: Scorer, answer: string | null, expected: string | readonly string[], extra: Partial<EvalTask> = {}): Promise<Score> {
  const list = typeof expected === 'string' ? [expected] : expected;
  const task: EvalTask = { id: 't1', query: 'What is it?', expected: list, metadata: {}, row: 1, ...extra };
  return scorer.score({ answer, expected: list, task, signal: new AbortController().signal });
}

describe('findNumbers', () => {
  it('reads thousands separators, signs, decimals, exponents and percentages', () => {
    expect(findNumbers('1,234,567 and -3.5, +2, −4, .5, 1e3, 45% or 12 percent').map((n) => [n.value, n.percent])).toEqual([
      [1234567, false],
      [-3.5, false],
      [2, false],
      [-4, false],
      [0.5, false],
      [1000, false],
      [45, true],
      [12, true],
    ]);
  });

  it('treats a comma not followed by three digits as a list separator, never a decimal point', () => {
    expect(findNumbers('12,34').map((n) => n.value)).toEqual([12, 34]);
    expect(findNumbers('1,2345').map((n) => n.value)).toEqual([1, 2345]);
  });

  it('does not read a hyphen after a letter or digit as a sign', () => {
    expect(findNumbers('COVID-19 in 2020-2021').map((n) => n.value)).toEqual([19, 2020, 2021]);
  });

  it('ends a number at a full stop that ends the sentence', () => {
    expect(firstNumber('The answer is 12.')?.value).toBe(12);
    expect(firstNumber('no digits here')).toBeUndefined();
  });
});

describe('numeric', () => {
  const exact = numericScorer();

  it('compares the first number of the answer with the expected number', async () => {
    expect(await scoreWith(exact, 'There are 1,204 records (and 3 duplicates).', '1204')).toEqual({ score: 1, note: 'read 1,204' });
    expect((await scoreWith(exact, 'About 1203.', '1204')).score).toBe(0);
    expect(await scoreWith(exact, 'none', '3')).toEqual({ score: 0, note: 'no number in the answer' });
  });

  it('accepts a difference within an absolute tolerance', async () => {
    const loose = numericScorer({ tolerance: 0.5 });
    expect((await scoreWith(loose, '3.4', '3')).score).toBe(1);
    expect((await scoreWith(loose, '3.6', '3')).score).toBe(0);
  });

  it('accepts a difference within a relative tolerance', async () => {
    const relative = numericScorer({ relativeTolerance: 0.01 });
    expect((await scoreWith(relative, '1009', '1000')).score).toBe(1);
    expect((await scoreWith(relative, '1011', '1000')).score).toBe(0);
  });

  it('forgives floating-point rounding without a tolerance', async () => {
    expect((await scoreWith(exact, '0.30000000000000004', '0.3')).score).toBe(1);
  });

  it('equates a percentage with its fraction when only one side is a percentage', async () => {
    expect((await scoreWith(exact, '45%', '0.45')).score).toBe(1);
    expect((await scoreWith(exact, '0.45', '45%')).score).toBe(1);
    expect((await scoreWith(exact, '45 %', '45%')).score).toBe(1);
    expect((await scoreWith(exact, '45%', '45')).score).toBe(0);
  });

  it('throws when an expected answer holds no number', async () => {
    await expect(scoreWith(exact, '3', 'three')).rejects.toThrow(/numeric: the expected answer "three" of task t1 holds no number/);
  });
});
