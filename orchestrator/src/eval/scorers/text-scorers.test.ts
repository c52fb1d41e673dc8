import { describe, expect, it } from 'vitest';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { answerTokens, normalizeAnswer } from './normalize.js';
import { ScorerError } from './scorer-error.js';
import { containsScorer, emScorer, exactScorer, f1Scorer, regexScorer, tokenF1 } from './text-scorers.js';

async function scoreWith(scorer: Scorer, answer: string | null, expected: string | readonly string[], extra: Partial<EvalTask> = {}): Promise<Score> {
  const list = typeof expected === 'string' ? [expected] : expected;
  const task: EvalTask = { id: 't1', query: 'What is it?', expected: list, metadata: {}, row: 1, ...extra };
  return scorer.score({ answer, expected: list, task, signal: new AbortController().signal });
}

describe('normalizeAnswer', () => {
  it('lowers case, deletes punctuation, drops articles and collapses whitespace, as SQuAD does', () => {
    expect(normalizeAnswer('  The  Eiffel Tower!  ')).toBe('eiffel tower');
    expect(normalizeAnswer("Don't stop, an apple a day")).toBe('dont stop apple day');
    expect(normalizeAnswer('1,000')).toBe('1000');
    expect(normalizeAnswer('“Paris”—France')).toBe('parisfrance');
    expect(normalizeAnswer('ＰＡＲＩＳ')).toBe('paris');
    expect(normalizeAnswer('theatre')).toBe('theatre');
    expect(answerTokens('The, a an')).toEqual([]);
  });
});

describe('exact', () => {
  it('scores 1 only for the same text after trimming', async () => {
    expect((await scoreWith(exactScorer, ' Paris\n', 'Paris')).score).toBe(1);
    expect((await scoreWith(exactScorer, 'paris', 'Paris')).score).toBe(0);
    expect((await scoreWith(exactScorer, 'Paris.', 'Paris')).score).toBe(0);
  });

  it('keeps the best over several expected answers and scores a missing answer 0', async () => {
    expect((await scoreWith(exactScorer, 'Lutetia', ['Paris', 'Lutetia'])).score).toBe(1);
    expect(await scoreWith(exactScorer, null, 'Paris')).toEqual({ score: 0, note: 'no answer' });
  });

  it('throws a ScorerError for a task without an expected answer', async () => {
    await expect(scoreWith(exactScorer, 'x', [])).rejects.toThrow(ScorerError);
    await expect(scoreWith(exactScorer, 'x', [])).rejects.toThrow(/task t1 has no expected answer/);
  });
});

describe('em', () => {
  it('ignores case, punctuation, articles and spacing', async () => {
    expect((await scoreWith(emScorer, 'the  Eiffel tower.', 'Eiffel Tower')).score).toBe(1);
    expect((await scoreWith(emScorer, 'Eiffel', 'Eiffel Tower')).score).toBe(0);
  });
});

describe('f1', () => {
  it('is the harmonic mean of token precision and recall', async () => {
    // answer tokens: eiffel tower paris (3); expected: eiffel tower (2); shared 2 → p 2/3, r 1 → 0.8
    expect((await scoreWith(f1Scorer, 'The Eiffel Tower, Paris', 'Eiffel Tower')).score).toBeCloseTo(0.8, 12);
    expect((await scoreWith(f1Scorer, 'London', 'Eiffel Tower')).score).toBe(0);
  });

  it('counts repeated tokens at most as often as expected has them, as SQuAD does', () => {
    expect(tokenF1(['a1', 'a1', 'a1'], ['a1'])).toBeCloseTo(0.5, 12); // p 1/3, r 1
  });

  it('scores 1 when both sides have no token and 0 when only one has none', () => {
    expect(tokenF1([], [])).toBe(1);
    expect(tokenF1(['x'], [])).toBe(0);
  });
});

describe('contains', () => {
  it('finds the normalised expected answer in the answer as whole words', async () => {
    expect((await scoreWith(containsScorer, 'The secret code is 4821.', '4821')).score).toBe(1);
    expect((await scoreWith(containsScorer, 'I found: The Blue Door!', 'blue door')).score).toBe(1);
    expect((await scoreWith(containsScorer, 'The code is 48210', '4821')).score).toBe(0);
  });
});

describe('regex', () => {
  it('matches a bare pattern anywhere in the answer', async () => {
    expect((await scoreWith(regexScorer, 'It was 1969.', '19\\d\\d')).score).toBe(1);
    expect((await scoreWith(regexScorer, 'It was 2001.', '^19\\d\\d$')).score).toBe(0);
  });

  it('takes flags from a /pattern/flags literal and ignores g and y so scores do not depend on earlier calls', async () => {
    expect((await scoreWith(regexScorer, 'PARIS', '/^paris$/i')).score).toBe(1);
    for (let i = 0; i < 3; i++) expect((await scoreWith(regexScorer, 'paris', '/paris/g')).score).toBe(1);
  });

  it('throws a ScorerError naming a pattern that does not compile', async () => {
    await expect(scoreWith(regexScorer, 'x', '(unclosed')).rejects.toThrow(/regex: the expected answer "\(unclosed" is not a valid regular expression/);
  });
});
