/** Median and p95 of a sample, for benchmark output. */
export interface Summary {
  n: number;
  median: number;
  p95: number;
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
  return { n: sorted.length, median: at(0.5), p95: at(0.95) };
}

/** One aligned line: name, median, p95, target and whether the median meets it. */
export function formatRow(name: string, summary: Summary, targetMs: number): string {
  const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;
  const verdict = summary.median <= targetMs ? 'ok' : 'OVER TARGET';
  return `${name.padEnd(44)} median ${ms(summary.median).padStart(9)}   p95 ${ms(summary.p95).padStart(9)}   target <= ${ms(targetMs).padStart(7)}   n=${String(summary.n).padEnd(4)} ${verdict}`;
}
