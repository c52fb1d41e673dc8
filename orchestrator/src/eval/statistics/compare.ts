import type { Method, ResultLine } from '../eval-types.js';
import { DEFAULT_BOOTSTRAP_SEED } from './bootstrap.js';
import { pairedComparison } from './summarize.js';
import { latestLines, methodsPresent, pairedDifferences, taskClusters } from './task-scores.js';

/** One method's comparison between two evaluations (see {@link compareResults}). */
export interface MethodComparison {
  method: Method;
  /** Tasks both evaluations scored with this method. */
  tasks: number;
  /** Mean over those tasks of each task's mean score over its counted epochs, in A and in B; null without common tasks. */
  accuracyA: number | null;
  accuracyB: number | null;
  /** `accuracyA − accuracyB` (the mean per-task difference); null without common tasks. */
  difference: number | null;
  /** Paired bootstrap interval of `difference`, resampling the common tasks; null with fewer than 2. */
  ci95: [number, number] | null;
}

/**
 * The paired comparison of two evaluations (`rlm eval compare DIR_A DIR_B`): for every method present
 * in both, over the tasks (by id) both scored, each side's accuracy and their paired difference, with
 * a 95% percentile-bootstrap interval resampling the common tasks (seeded `<seed>:compare:<method>`;
 * default seed {@link DEFAULT_BOOTSTRAP_SEED}). Scores count as in `summarize` (model failures as 0,
 * `infra` and `scorer` errors left out); a task's epochs are averaged first. Accuracies here are over
 * the common tasks only, so they can differ from each evaluation's own summary. Methods in
 * `METHODS` order.
 */
export function compareResults(a: readonly ResultLine[], b: readonly ResultLine[], options: { seed?: number | undefined } = {}): MethodComparison[] {
  const seed = options.seed ?? DEFAULT_BOOTSTRAP_SEED;
  const linesA = latestLines(a);
  const linesB = latestLines(b);
  const inB = new Set(methodsPresent(linesB));
  const comparisons: MethodComparison[] = [];
  for (const method of methodsPresent(linesA).filter((m) => inB.has(m))) {
    const clustersA = taskClusters(linesA, method);
    const clustersB = taskClusters(linesB, method);
    const pairs = pairedDifferences(clustersA, clustersB);
    const { tasks, difference, ci95 } = pairedComparison(clustersA, clustersB, `${seed}:compare:${method}`);
    const mean = (values: number[]) => (values.length === 0 ? null : values.reduce((sum, value) => sum + value, 0) / values.length);
    comparisons.push({ method, tasks, accuracyA: mean(pairs.map((pair) => pair.a)), accuracyB: mean(pairs.map((pair) => pair.b)), difference, ci95 });
  }
  return comparisons;
}
