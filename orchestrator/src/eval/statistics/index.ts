/** Statistics of `rlm eval`: `summary.json` (accuracy, bootstrap intervals, cost, latency, paired differences) and comparisons of two evaluations. */
export { BOOTSTRAP_RESAMPLES, type BootstrapOptions, bootstrapMeanCi, type Cluster, DEFAULT_BOOTSTRAP_SEED, quantile } from './bootstrap.js';
export { compareResults, type MethodComparison } from './compare.js';
export { type SummarizeOptions, summarize } from './summarize.js';
export { countedScore } from './task-scores.js';
