import { describe, expect, it } from 'vitest';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { choiceScorer, chosenLetter } from './choice-scorer.js';

async function scoreWith(scorer: Scorer, answer: string | null, expected: string | readonly string[], extra: Partial<EvalTask> = {}): Promise<Score> {
  const list = typeof expected === 'string' ? [expected] : expected;
  const task: EvalTask = { id: 't1', query: 'What is it?', expected: list, metadata: {}, row: 1, ...extra };
  return scorer.score({ answer, expected: list, task, signal: new AbortController().signal });
}

const choices = ['London', 'Paris', 'Rome', 'Berlin'];

describe('chosenLetter', () => {
  it.each([
    ['B', 'B'],
    ['b', 'B'],
    ['(B)', 'B'],
    ['B.', 'B'],
    ['**B**', 'B'],
    ['Answer: B', 'B'],
    ['The answer is (C).', 'C'],
    ['I first thought A, but the final answer is D', 'D'],
    ['B) Paris', 'B'],
    ['(b) Paris', 'B'],
    ['C. Rome, because of the Colosseum', 'C'],
    ['After weighing them I pick (D) here.', 'D'],
    ['Paris', 'B'],
    ['It is the French capital, Paris.', 'B'],
  ])('reads %j as %s', (answer, letter) => {
    expect(chosenLetter(answer, choices)).toBe(letter);
  });

  it('finds no letter where there is none, or the text names several choices', () => {
    expect(chosenLetter('The answer is a city in France.', choices)).toBeUndefined();
    expect(chosenLetter('Either Paris or Rome', choices)).toBeUndefined();
  });

  it('ignores letters beyond the task’s choices', () => {
    expect(chosenLetter('E', choices)).toBeUndefined();
    expect(chosenLetter('E', undefined)).toBe('E');
  });
});

describe('choice', () => {
  it('scores the chosen letter against an expected letter or choice text', async () => {
    expect(await scoreWith(choiceScorer, 'Answer: B', 'B', { choices })).toEqual({ score: 1, note: 'chose B' });
    expect(await scoreWith(choiceScorer, 'Answer: B', 'Paris', { choices })).toEqual({ score: 1, note: 'chose B' });
    expect(await scoreWith(choiceScorer, '(A) London', '(b)', { choices })).toEqual({ score: 0, note: 'chose A' });
    expect(await scoreWith(choiceScorer, 'no idea', 'B', { choices })).toEqual({ score: 0, note: 'no choice found in the answer' });
  });

  it('throws when the expected answer is neither a letter nor a choice', async () => {
    await expect(scoreWith(choiceScorer, 'B', 'Madrid', { choices })).rejects.toThrow(
      /choice: the expected answer "Madrid" of task t1 is neither a letter from A to D nor/,
    );
  });
});
