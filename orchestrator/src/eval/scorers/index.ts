/**
 * How `rlm eval` scores answers: the built-in scorers by name, and scorer modules by path.
 * Every scorer gives a score in [0, 1]; with several expected answers, the best.
 */
import { suggestion } from '../../did-you-mean.js';
import { InvalidOptionError } from '../../errors.js';
import type { Scorer } from '../eval-types.js';
import { choiceScorer } from './choice-scorer.js';
import { type JudgeOptions, judgeScorer } from './judge-scorer.js';
import { listF1Scorer } from './list-f1-scorer.js';
import { loadScorerModule } from './module-scorer.js';
import { numericScorer } from './numeric-scorer.js';
import { oolongScorer } from './oolong-scorer.js';
import { containsScorer, emScorer, exactScorer, f1Scorer, regexScorer } from './text-scorers.js';

export { chosenLetter } from './choice-scorer.js';
export { DEFAULT_JUDGE_PROMPT, DEFAULT_JUDGE_SYSTEM, type JudgeOptions, parseVerdict } from './judge-scorer.js';
export { listItems } from './list-f1-scorer.js';
export type { ScorerModuleInput, ScorerModuleResult } from './module-scorer.js';
export { answerTokens, normalizeAnswer } from './normalize.js';
export { type FoundNumber, findNumbers, firstNumber } from './numbers.js';
export { OOLONG_NUMERIC_BASE, oolongCandidate } from './oolong-scorer.js';
export { ScorerError } from './scorer-error.js';
export { tokenF1 } from './text-scorers.js';

/** The built-in scorers' names, as `--scorer` and a task's `scorer` take them. */
export const SCORER_NAMES = ['exact', 'em', 'f1', 'contains', 'numeric', 'regex', 'choice', 'oolong', 'list-f1', 'judge'] as const;
export type ScorerName = (typeof SCORER_NAMES)[number];

/** Options of {@link resolveScorer}. */
export interface ResolveScorerOptions {
  /** `numeric`: the largest absolute difference still scored 1 (default 0). */
  tolerance?: number | undefined;
  /** `numeric`: the largest difference still scored 1 as a fraction of the expected value (default 0); either tolerance is enough. */
  relativeTolerance?: number | undefined;
  /** `judge`: the judging model and prompt; required for `judge`. */
  judge?: JudgeOptions | undefined;
  /** The directory a relative module path is resolved against. */
  cwd: string;
}

/** True when `name` is one of {@link SCORER_NAMES}. */
export function isScorerName(name: string): name is ScorerName {
  return (SCORER_NAMES as readonly string[]).includes(name);
}

/**
 * The scorer `name` names: a built-in (see {@link SCORER_NAMES}), or a path to a module exporting
 * `score` (anything with a `/` or `\`, starting with `.`, or ending in `.js`, `.mjs`, `.cjs`, `.ts`,
 * `.mts`; relative to `cwd`). A module is imported once per call (Node caches it).
 *
 * @throws {InvalidOptionError} (`--scorer`) an unknown name (with a did-you-mean), a module that does
 *   not exist, fails to load or exports no `score` function, or `judge` without `options.judge`;
 *   (`--tolerance`) a tolerance that is negative or not a number.
 */
export async function resolveScorer(name: string, options: ResolveScorerOptions): Promise<Scorer> {
  for (const [option, value] of [
    ['--tolerance', options.tolerance],
    ['--relative-tolerance', options.relativeTolerance],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0)) throw new InvalidOptionError(option, `must be a number of at least 0; got ${value}`);
  }
  if (isScorerName(name)) return builtIn(name, options);
  if (looksLikePath(name)) return loadScorerModule(name, options.cwd);
  throw new InvalidOptionError(
    '--scorer',
    `unknown scorer ${JSON.stringify(name)}${suggestion(name, SCORER_NAMES)}; use one of ${SCORER_NAMES.join(', ')}, or a path to a module exporting score() (e.g. ./my-scorer.mjs)`,
  );
}

function builtIn(name: ScorerName, options: ResolveScorerOptions): Scorer {
  switch (name) {
    case 'exact':
      return exactScorer;
    case 'em':
      return emScorer;
    case 'f1':
      return f1Scorer;
    case 'contains':
      return containsScorer;
    case 'numeric':
      return numericScorer({ tolerance: options.tolerance, relativeTolerance: options.relativeTolerance });
    case 'regex':
      return regexScorer;
    case 'choice':
      return choiceScorer;
    case 'oolong':
      return oolongScorer;
    case 'list-f1':
      return listF1Scorer;
    case 'judge':
      if (options.judge === undefined) throw new InvalidOptionError('--scorer', 'judge needs a model to judge with (--judge-model, or JudgeOptions.role)');
      if (options.judge.prompt !== undefined && !options.judge.prompt.includes('{answer}')) {
        throw new InvalidOptionError(
          '--judge-prompt',
          'the judge prompt has no {answer} placeholder, so the judge would never see the answer; add {answer} (and {question}, {expected})',
        );
      }
      return judgeScorer(options.judge);
  }
}

function looksLikePath(name: string): boolean {
  return /[/\\]/.test(name) || name.startsWith('.') || /\.[cm]?[jt]s$/.test(name);
}
