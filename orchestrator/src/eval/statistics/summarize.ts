import type { EvalSummary, Method, MethodSummary, PairSummary, ResultLine } from '../eval-types.js';
import { bootstrapMeanCi, type Cluster, DEFAULT_BOOTSTRAP_SEED, quantile } from './bootstrap.js';
import { countedScore, latestLines, methodsPresent, pairedDifferences, taskClusters } from './task-scores.js';

/** Options of {@link summarize}. */
export interface SummarizeOptions {
  /** The dataset's path, as `summary.json` names it. */
  dataset: string;
  /** (task, method, epoch) combinations the evaluation plans. */
  planned: number;
  /** The evaluation's methods, in order: each gets a summary (even with no result yet) and each pair a comparison. Methods found only in `lines` follow. */
  methods: readonly Method[];
  /** The bootstrap's seed (default {@link DEFAULT_BOOTSTRAP_SEED}): the same lines and seed give the same summary. */
  seed?: number | undefined;
}

/**
 * `summary.json` for an evaluation's result lines (one per (task, method, epoch); if a key repeats,
 * the last line wins).
 *
 * Per method:
 * - `n`: its results; `scored`: those counted in accuracy (model failures count, as 0); `errors`:
 *   `infra` and `scorer` errors, excluded from accuracy;
 * - `accuracy`: the mean counted score over results (null when none is counted);
 * - `ci95`: 95% percentile-bootstrap interval of that mean, resampling tasks with replacement and
 *   keeping each task's epochs together (cluster bootstrap), 2,000 resamples,
 *   seeded per method (`<seed>:method:<name>`), so adding a method does not move another's interval;
 *   null with fewer than 2 tasks;
 * - `cost_usd`: the sum over all its results, errors included; null when any result's cost is unknown;
 * - tokens: sums over all its results;
 * - `p50_ms`, `p95_ms`: percentiles of `duration_ms` over all its results, by linear interpolation
 *   between closest ranks (type 7, as NumPy's default); null with no result.
 *
 * Per pair of methods (a before b in method order): over tasks both scored, the mean of per-task
 * differences (each task's mean over its counted epochs, a − b) and its paired bootstrap interval
 * (resampling those tasks; seeded `<seed>:pair:<a>:<b>`); null values without common tasks, a null
 * interval with fewer than 2.
 */
export function summarize(lines: readonly ResultLine[], options: SummarizeOptions): EvalSummary {
  const seed = options.seed ?? DEFAULT_BOOTSTRAP_SEED;
  const latest = latestLines(lines);
  const methods = methodsPresent(latest, options.methods);
  const summaries: Record<string, MethodSummary> = {};
  const clusters = new Map(methods.map((method) => [method, taskClusters(latest, method)]));
  for (const method of methods) {
    summaries[method] = summarizeMethod(
      latest.filter((line) => line.method === method),
      [...(clusters.get(method)?.values() ?? [])],
      `${seed}:method:${method}`,
    );
  }
  const pairs: PairSummary[] = [];
  for (let i = 0; i < methods.length; i++) {
    for (let j = i + 1; j < methods.length; j++) {
      const a = methods[i] as Method;
      const b = methods[j] as Method;
      pairs.push({ a, b, ...pairedComparison(clusters.get(a) ?? new Map(), clusters.get(b) ?? new Map(), `${seed}:pair:${a}:${b}`) });
    }
  }
  return { dataset: options.dataset, planned: options.planned, finished: latest.length, methods: summaries, pairs };
}

function summarizeMethod(lines: readonly ResultLine[], clusters: readonly Cluster[], seed: string): MethodSummary {
  let scored = 0;
  let total = 0;
  let cost: number | null = 0;
  let inputTokens = 0;
  let outputTokens = 0;
  for (const line of lines) {
    const score = countedScore(line);
    if (score !== null) {
      scored++;
      total += score;
    }
    cost = cost === null || line.cost_usd === null ? null : cost + line.cost_usd;
    inputTokens += line.input_tokens;
    outputTokens += line.output_tokens;
  }
  const durations = Float64Array.from(lines, (line) => line.duration_ms).sort();
  return {
    n: lines.length,
    scored,
    errors: lines.length - scored,
    accuracy: scored === 0 ? null : total / scored,
    ci95: bootstrapMeanCi(clusters, { seed }),
    cost_usd: cost,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    p50_ms: durations.length === 0 ? null : quantile(durations, 0.5),
    p95_ms: durations.length === 0 ? null : quantile(durations, 0.95),
  };
}

/** The paired difference of two methods' per-task means over their common tasks, with its bootstrap interval. */
export function pairedComparison(
  a: ReadonlyMap<string, Cluster>,
  b: ReadonlyMap<string, Cluster>,
  seed: string,
): { tasks: number; difference: number | null; ci95: [number, number] | null } {
  const pairs = pairedDifferences(a, b);
  if (pairs.length === 0) return { tasks: 0, difference: null, ci95: null };
  const differences = pairs.map((pair) => ({ sum: pair.a - pair.b, count: 1 }));
  const difference = differences.reduce((sum, item) => sum + item.sum, 0) / differences.length;
  return { tasks: pairs.length, difference, ci95: bootstrapMeanCi(differences, { seed }) };
}
