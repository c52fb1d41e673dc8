/**
 * The bootstrap behind every interval of `summary.json`: percentile intervals of a mean, resampling
 * clusters (tasks) with replacement, deterministic for a seed.
 */
import { seededRandom } from '../dataset/seeded-random.js';

/** Resamples per interval: enough that the 2.5% and 97.5% percentiles move by well under a point between seeds. */
export const BOOTSTRAP_RESAMPLES = 2000;

/** The seed intervals use when none is given, so the same results always give the same summary. */
export const DEFAULT_BOOTSTRAP_SEED = 1;

/** One cluster of observations (a task's epochs): their sum and how many there are (at least 1). */
export interface Cluster {
  sum: number;
  count: number;
}

/** Options of {@link bootstrapMeanCi}. */
export interface BootstrapOptions {
  /** The random stream's seed; the same seed and clusters give the same interval on every machine. */
  seed: number | string;
  /** How many resamples (default {@link BOOTSTRAP_RESAMPLES}). */
  resamples?: number;
}

/**
 * A 95% percentile-bootstrap interval of the mean of all observations, resampling whole clusters
 * with replacement (a cluster bootstrap: a task's epochs stay together, so repeating a task does not
 * narrow the interval as if its epochs were independent tasks). Each resample's statistic is
 * Σ sums / Σ counts over the drawn clusters, which is the mean of the cluster means when clusters
 * have equal sizes. The interval is the 2.5th and 97.5th percentiles of the resampled statistics
 * ({@link quantile}'s definition), clamped to the range of the cluster means (floating-point
 * rounding must not put it outside). Null with fewer than 2 clusters.
 */
export function bootstrapMeanCi(clusters: readonly Cluster[], options: BootstrapOptions): [number, number] | null {
  const n = clusters.length;
  if (n < 2) return null;
  const resamples = options.resamples ?? BOOTSTRAP_RESAMPLES;
  const sums = Float64Array.from(clusters, (cluster) => cluster.sum);
  const counts = Float64Array.from(clusters, (cluster) => cluster.count);
  const draw = indexStream(options.seed, n);
  const statistics = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      const j = draw();
      sum += sums[j] as number;
      count += counts[j] as number;
    }
    statistics[r] = sum / count;
  }
  statistics.sort();
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const cluster of clusters) {
    const mean = cluster.sum / cluster.count;
    low = Math.min(low, mean);
    high = Math.max(high, mean);
  }
  const clamp = (value: number) => Math.min(high, Math.max(low, value));
  return [clamp(quantile(statistics, 0.025)), clamp(quantile(statistics, 0.975))];
}

/**
 * The `p`-quantile (0 ≤ p ≤ 1) of ascending `sorted` values by linear interpolation between the two
 * nearest ranks (Hyndman and Fan's type 7, the default of R, NumPy and Excel's PERCENTILE.INC): the
 * value at rank h = (n − 1)·p, interpolated. NaN for no values.
 */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const h = (n - 1) * p;
  const lower = Math.floor(h);
  const upper = Math.min(n - 1, lower + 1);
  const a = sorted[lower] as number;
  const b = sorted[upper] as number;
  return a + (h - lower) * (b - a);
}

/**
 * Indices in [0, n) from an sfc32 stream whose state comes from `seededRandom(seed)`: the same
 * generator as the rest of `rlm eval`, inlined because the bootstrap draws resamples × tasks indices
 * (20 million for 10,000 tasks) and a call through `SeededRandom.int` costs several times more.
 * `⌊u·n⌋` of a 32-bit uniform u is biased by at most n / 2³², far below the bootstrap's own noise.
 */
function indexStream(seed: number | string, n: number): () => number {
  const seeded = seededRandom(seed);
  let a = Math.floor(seeded.next() * 4294967296);
  let b = Math.floor(seeded.next() * 4294967296);
  let c = Math.floor(seeded.next() * 4294967296);
  let d = Math.floor(seeded.next() * 4294967296);
  return () => {
    // sfc32 (Chris Doty-Humphrey), as PractRand defines it: the sum uses the counter before its increment.
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return Math.floor(((t >>> 0) / 4294967296) * n);
  };
}
