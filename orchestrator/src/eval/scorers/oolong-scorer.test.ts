import { describe, expect, it } from 'vitest';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { oolongCandidate, oolongScorer } from './oolong-scorer.js';

async function scoreWith(scorer: Scorer, answer: string | null, expected: string | readonly string[], extra: Partial<EvalTask> = {}): Promise<Score> {
  const list = typeof expected === 'string' ? [expected] : expected;
  const task: EvalTask = { id: 't1', query: 'What is it?', expected: list, metadata: {}, row: 1, ...extra };
  return scorer.score({ answer, expected: list, task, signal: new AbortController().signal });
}

describe('oolongCandidate (OOLONG harness parsing)', () => {
  it.each([
    ['Answer: **12**', '12'],
    ['Label: [human being]', 'human being'],
    ['User: 44106', '44106'],
    ['12', '12'],
    ['After counting every line, the total is 12', '12'],
    ['Answer: numeric value is more common than location in the data', 'more common'],
  ])('reads %j as %j', (output, candidate) => {
    expect(oolongCandidate(output)).toBe(candidate);
  });
});

describe('oolong', () => {
  it("gives OOLONG's partial credit 0.75^|difference| to numeric answers", async () => {
    expect((await scoreWith(oolongScorer, '12', '10')).score).toBe(0.5625);
    expect((await scoreWith(oolongScorer, 'Answer: 10', '10')).score).toBe(1);
    expect((await scoreWith(oolongScorer, 'Answer: 9', '10')).score).toBe(0.75);
    expect((await scoreWith(oolongScorer, 'Answer: 12 users', '10')).score).toBe(0.5625);
    expect((await scoreWith(oolongScorer, 'There are 12 such users.', '10')).score).toBe(0.5625);
    expect(await scoreWith(oolongScorer, 'Answer: none', '10')).toEqual({ score: 0, note: 'no number in the answer' });
  });

  it('reads expected answers as OOLONG files store them', async () => {
    expect((await scoreWith(oolongScorer, '12', "['10']")).score).toBe(0.5625);
    expect((await scoreWith(oolongScorer, 'Label: human being', "['human being']")).score).toBe(1);
    expect((await scoreWith(oolongScorer, 'Date: Mar 12, 2023', '[datetime.date(2023, 3, 12)]')).score).toBe(1);
    expect((await scoreWith(oolongScorer, 'Date: 2023-03-13', '[datetime.date(2023, 3, 12)]')).score).toBe(0);
  });

  it('matches labels exactly after normalisation and comparison answers by phrase', async () => {
    expect((await scoreWith(oolongScorer, 'Answer: Human Being', 'human being')).score).toBe(1);
    expect((await scoreWith(oolongScorer, 'Answer: location', 'human being')).score).toBe(0);
    expect((await scoreWith(oolongScorer, 'Answer: numeric value is more common than location', 'more common than')).score).toBe(1);
    expect((await scoreWith(oolongScorer, 'Answer: numeric value is less common than location', 'more common than')).score).toBe(0);
  });
});
