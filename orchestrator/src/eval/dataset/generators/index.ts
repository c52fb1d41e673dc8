/**
 * Synthetic datasets to start with: `niah` (RULER-style single needle in a haystack) and
 * `counting` (OOLONG-style aggregation). Rows are in the dataset format {@link readDataset} reads,
 * generated lazily (a million-character context per task need not all sit in memory), and the
 * same for the same options on every machine.
 */
import { suggestion } from '../../../did-you-mean.js';
import { InvalidOptionError } from '../../../errors.js';
import { countingRows } from './counting.js';
import { niahRows } from './niah.js';
import type { GeneratorOptions } from './options.js';

export { COUNTING_LABELS } from './counting.js';
export type { GeneratorOptions } from './options.js';

/** The datasets `rlm eval generate` makes. */
export const GENERATOR_KINDS = ['niah', 'counting'] as const;
export type GeneratorKind = (typeof GENERATOR_KINDS)[number];

/** The largest `n` accepted: a guard against a typo, far beyond any useful evaluation. */
const MAX_TASKS = 1_000_000;

/**
 * The rows of a generated dataset of `kind`, as an iterable that makes each row when it is asked
 * for. See `niahRows` and `countingRows` for what each row holds.
 *
 * @throws {InvalidOptionError} (`kind`, `--n`, `--context-chars`, `--seed`) an unknown kind (with
 *   the nearest one), a count or size that is not a positive integer, or a seed that is not an
 *   integer; thrown by this call, before any row is made.
 */
export function generateDataset(kind: GeneratorKind, options: GeneratorOptions): Iterable<Record<string, unknown>> {
  if (!(GENERATOR_KINDS as readonly string[]).includes(kind)) {
    throw new InvalidOptionError(
      'kind',
      `${JSON.stringify(kind)} is not a dataset rlm generates${suggestion(kind, GENERATOR_KINDS)}; use one of ${GENERATOR_KINDS.join(', ')}`,
    );
  }
  const { n, contextChars, seed } = options;
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_TASKS)
    throw new InvalidOptionError('--n', `must be a whole number of tasks from 1 to ${MAX_TASKS}; got ${n}`);
  if (!Number.isSafeInteger(contextChars) || contextChars < 1)
    throw new InvalidOptionError('--context-chars', `must be a whole number of characters, at least 1; got ${contextChars}`);
  if (!Number.isSafeInteger(seed)) throw new InvalidOptionError('--seed', `must be an integer; got ${seed}`);
  const checked: GeneratorOptions = { n, contextChars, seed };
  return { [Symbol.iterator]: () => (kind === 'niah' ? niahRows(checked) : countingRows(checked)) };
}
