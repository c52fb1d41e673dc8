/**
 * The scorers that compare text: `exact`, `em`, `f1`, `contains` and `regex`. Each compares the answer
 * with every expected answer and keeps the best (see `bestOf`); a null answer scores 0.
 */
import { errorMessage } from '../../errors.js';
import type { Scorer } from '../eval-types.js';
import { bestOf } from './best-of.js';
import { answerTokens, normalizeAnswer } from './normalize.js';
import { ScorerError } from './scorer-error.js';

/** `exact`: 1 when the answer, trimmed, is one of the expected answers, trimmed; case and punctuation count. */
export const exactScorer: Scorer = {
  name: 'exact',
  score: (input) => bestOf('exact', input, (answer, expected) => ({ score: answer.trim() === expected.trim() ? 1 : 0 })),
};

/** `em`: SQuAD's exact match: 1 when the answer and an expected answer are equal after {@link normalizeAnswer}. */
export const emScorer: Scorer = {
  name: 'em',
  score: (input) => bestOf('em', input, (answer, expected) => ({ score: normalizeAnswer(answer) === normalizeAnswer(expected) ? 1 : 0 })),
};

/**
 * `f1`: SQuAD's token F1 after {@link normalizeAnswer}: tokens counted with multiplicity, precision =
 * shared / answer tokens, recall = shared / expected tokens, F1 their harmonic mean. As in SQuAD, when
 * either side has no token the score is 1 if both have none, else 0.
 */
export const f1Scorer: Scorer = {
  name: 'f1',
  score: (input) => bestOf('f1', input, (answer, expected) => ({ score: tokenF1(answerTokens(answer), answerTokens(expected)) })),
};

/** SQuAD's `compute_f1` over two token lists. */
export function tokenF1(answer: readonly string[], expected: readonly string[]): number {
  if (answer.length === 0 || expected.length === 0) return answer.length === expected.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const token of expected) counts.set(token, (counts.get(token) ?? 0) + 1);
  let shared = 0;
  for (const token of answer) {
    const left = counts.get(token) ?? 0;
    if (left > 0) {
      shared++;
      counts.set(token, left - 1);
    }
  }
  if (shared === 0) return 0;
  const precision = shared / answer.length;
  const recall = shared / expected.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * `contains`: 1 when an expected answer, normalised, occurs in the normalised answer as whole tokens
 * (`4821` is in `the code is 4821` but not in `48210`), as needle-in-a-haystack scoring (RULER's
 * `string_match_all`) wants without its false hits on longer numbers. An expected answer that
 * normalises to nothing is contained only in an answer that does too.
 */
export const containsScorer: Scorer = {
  name: 'contains',
  score: (input) =>
    bestOf('contains', input, (answer, expected) => {
      const needle = normalizeAnswer(expected);
      const haystack = normalizeAnswer(answer);
      if (needle === '') return { score: haystack === '' ? 1 : 0 };
      return { score: ` ${haystack} `.includes(` ${needle} `) ? 1 : 0 };
    }),
};

/**
 * `regex`: each expected answer is a JavaScript regular expression; 1 when it matches somewhere in
 * the answer (`RegExp.test`; anchor it with `^…$` to match the whole). Write `/pattern/flags` to give
 * flags (`/paris/i`); a bare pattern has none. Patterns come from the dataset, which is trusted: a
 * pattern with catastrophic backtracking can stall the evaluation on a long answer.
 *
 * @throws {ScorerError} a pattern does not compile (the error names it).
 */
export const regexScorer: Scorer = {
  name: 'regex',
  score: (input) => bestOf('regex', input, (answer, expected) => ({ score: compilePattern(expected).test(answer) ? 1 : 0 })),
};

const LITERAL = /^\/(.*)\/([dgimsuvy]*)$/s;

function compilePattern(pattern: string): RegExp {
  const literal = LITERAL.exec(pattern);
  try {
    // `g` and `y` make `test` stateful (lastIndex); a score must not depend on the previous call.
    return literal ? new RegExp(literal[1] ?? '', (literal[2] ?? '').replace(/[gy]/g, '')) : new RegExp(pattern);
  } catch (error) {
    throw new ScorerError('regex', `the expected answer ${JSON.stringify(pattern)} is not a valid regular expression: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
