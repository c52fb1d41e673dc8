import type { Score, ScoreInput } from '../eval-types.js';
import { ScorerError } from './scorer-error.js';

/**
 * The best score of `scoreOne` over the task's expected answers (any of them is right), with the
 * note of the expected answer that gave it. A null answer scores 0 without calling `scoreOne`.
 *
 * @throws {ScorerError} the task has no expected answer.
 */
export function bestOf(scorer: string, input: ScoreInput, scoreOne: (answer: string, expected: string) => Score): Score {
  if (input.expected.length === 0) {
    throw new ScorerError(
      scorer,
      `task ${input.task.id} has no expected answer; give "answer" or "answers" in the dataset, or score it with judge or a module`,
    );
  }
  if (input.answer === null) return { score: 0, note: 'no answer' };
  let best: Score | undefined;
  for (const expected of input.expected) {
    const score = scoreOne(input.answer, expected);
    if (best === undefined || score.score > best.score) best = score;
    if (best.score >= 1) break;
  }
  return best as Score;
}
