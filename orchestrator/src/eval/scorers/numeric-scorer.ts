import type { Scorer } from '../eval-types.js';
import { bestOf } from './best-of.js';
import { type FoundNumber, firstNumber } from './numbers.js';
import { ScorerError } from './scorer-error.js';

/** Options of the `numeric` scorer. */
export interface NumericScorerOptions {
  /** Largest absolute difference still scored 1 (`--tolerance`); default 0 (equal, up to floating-point rounding). */
  tolerance?: number | undefined;
  /** Largest difference still scored 1, as a fraction of the expected value (0.01 = 1%); default 0. Either tolerance is enough. */
  relativeTolerance?: number | undefined;
}

/**
 * `numeric`: 1 when the first number in the answer equals the first number in an expected answer,
 * within the tolerance (absolute `tolerance`, or `relativeTolerance` of the expected value); else 0.
 * Numbers are read as `findNumbers` documents: thousands separators (`1,234`), signs, decimals,
 * exponents, percentages. A percentage equals the same number written as a percentage, or its
 * value / 100 when only one side is one: `45%` matches `45%`, `0.45` and (with no `%` on either
 * side) nothing else; `45%` does not match `45`. The note gives the number read from the answer.
 *
 * @throws {ScorerError} an expected answer holds no number.
 */
export function numericScorer(options: NumericScorerOptions = {}): Scorer {
  const tolerance = options.tolerance ?? 0;
  const relative = options.relativeTolerance ?? 0;
  const close = (a: number, e: number): boolean => {
    const difference = Math.abs(a - e);
    // Rounding slack so 0.1 + 0.2 written as 0.30000000000000004 still equals 0.3.
    const slack = 8 * Number.EPSILON * Math.max(1, Math.abs(a), Math.abs(e));
    return difference <= tolerance + slack || difference <= relative * Math.abs(e) + slack;
  };
  return {
    name: 'numeric',
    score: (input) =>
      bestOf('numeric', input, (answer, expectedText) => {
        const expected = firstNumber(expectedText);
        if (expected === undefined)
          throw new ScorerError('numeric', `the expected answer ${JSON.stringify(expectedText)} of task ${input.task.id} holds no number`);
        const given = firstNumber(answer);
        if (given === undefined) return { score: 0, note: 'no number in the answer' };
        return { score: candidates(given, expected).some(([a, e]) => close(a, e)) ? 1 : 0, note: `read ${given.text}` };
      }),
  };
}

/** The (answer, expected) value pairs to compare: as written, and scaled when only one side is a percentage. */
function candidates(given: FoundNumber, expected: FoundNumber): Array<[number, number]> {
  if (given.percent === expected.percent) return [[given.value, expected.value]];
  return given.percent ? [[given.value / 100, expected.value]] : [[given.value, expected.value / 100]];
}
