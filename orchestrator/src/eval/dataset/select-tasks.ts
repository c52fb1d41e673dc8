import { InvalidOptionError } from '../../errors.js';
import type { EvalTask } from '../eval-types.js';
import { seededRandom } from './seeded-random.js';

/** The seed `--sample` uses when no `--seed` is given. */
export const DEFAULT_SAMPLE_SEED = 0;

export interface SelectTasksOptions {
  /** Keep the first N tasks (after `sample`, when both are given). */
  limit?: number | undefined;
  /** Keep a seeded random sample of N tasks, drawn without replacement, in file order. */
  sample?: number | undefined;
  /** The sample's seed (an integer; default {@link DEFAULT_SAMPLE_SEED}): the same seed and dataset give the same sample everywhere. */
  seed?: number | undefined;
}

/**
 * The tasks an evaluation runs: all of them, a seeded sample (`--sample N --seed S`), the first N
 * (`--limit N`), or the first N of a sample. A sample keeps the dataset's order, so its tasks run
 * (and are listed) as the file has them; asking for more tasks than there are gives them all.
 *
 * @throws {InvalidOptionError} (`--limit`, `--sample`, `--seed`) a count that is not a positive
 *   integer, or a seed that is not an integer.
 */
export function selectTasks(tasks: readonly EvalTask[], options: SelectTasksOptions): EvalTask[] {
  const { limit, sample } = options;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1))
    throw new InvalidOptionError('--limit', `must be a whole number of tasks, at least 1; got ${limit}`);
  if (sample !== undefined && (!Number.isSafeInteger(sample) || sample < 1)) {
    throw new InvalidOptionError('--sample', `must be a whole number of tasks, at least 1; got ${sample}`);
  }
  const seed = options.seed ?? DEFAULT_SAMPLE_SEED;
  if (!Number.isSafeInteger(seed)) throw new InvalidOptionError('--seed', `must be an integer; got ${seed}`);
  let selected = [...tasks];
  if (sample !== undefined && sample < selected.length) {
    // A partial Fisher–Yates shuffle of the indices draws `sample` of them without replacement;
    // sorting them back keeps the file's order.
    const random = seededRandom(`sample:${seed}`);
    const indices = selected.map((_, index) => index);
    for (let i = 0; i < sample; i++) {
      const j = i + random.int(indices.length - i);
      [indices[i], indices[j]] = [indices[j] as number, indices[i] as number];
    }
    const kept = indices.slice(0, sample).sort((a, b) => a - b);
    selected = kept.map((index) => selected[index] as EvalTask);
  }
  if (limit !== undefined) selected = selected.slice(0, limit);
  return selected;
}
