import { describe, expect, it } from 'vitest';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { listF1Scorer, listItems } from './list-f1-scorer.js';

async function scoreWith(scorer: Scorer, answer: string | null, expected: string | readonly string[], extra: Partial<EvalTask> = {}): Promise<Score> {
  const list = typeof expected === 'string' ? [expected] : expected;
  const task: EvalTask = { id: 't1', query: 'What is it?', expected: list, metadata: {}, row: 1, ...extra };
  return scorer.score({ answer, expected: list, task, signal: new AbortController().signal });
}

describe('listItems', () => {
  it('splits at newlines, commas and semicolons, drops list markers and normalises each item', () => {
    expect([...listItems('- Paris\n- The Rome; berlin, paris')]).toEqual(['paris', 'rome', 'berlin']);
    expect([...listItems('1. alpha\n2) beta')]).toEqual(['alpha', 'beta']);
  });

  it('reads a JSON array and a Python-style list', () => {
    expect([...listItems('["a1", "b2", 3]')]).toEqual(['a1', 'b2', '3']);
    expect([...listItems("['a1', 'b2']")]).toEqual(['a1', 'b2']);
  });

  it('keeps bracketed pairs whole and unordered', () => {
    expect([...listItems('(1, 2), (4, 3)\n[5, 6]')]).toEqual(['1 2', '3 4', '5 6']);
    expect([...listItems('[[2, 1], [3, 4]]')]).toEqual(['1 2', '3 4']);
    expect([...listItems('Answer: [(7, 3), (3, 7)]')]).toEqual(['3 7']);
  });
});

describe('list-f1', () => {
  it('is 1 for the same set of items in any order and format', async () => {
    expect((await scoreWith(listF1Scorer, '(3, 1)\n(2, 5)', '[[1, 3], [2, 5]]')).score).toBe(1);
  });

  it('is the F1 of set precision and recall', async () => {
    // answer {a, b, c}, expected {a, b, d, e}: shared 2 → p 2/3, r 2/4 → F1 4/7
    const score = await scoreWith(listF1Scorer, 'a, b, c', 'a; b; d; e');
    expect(score.score).toBeCloseTo(4 / 7, 12);
    expect(score.note).toBe('2 of 3 answer items right, 2 of 4 expected found');
    expect((await scoreWith(listF1Scorer, 'x, y', 'a, b')).score).toBe(0);
  });

  it('scores an empty answer to an empty list 1, and a non-empty one 0', async () => {
    expect((await scoreWith(listF1Scorer, '[]', '[]')).score).toBe(1);
    expect((await scoreWith(listF1Scorer, 'a', '[]')).score).toBe(0);
  });
});
