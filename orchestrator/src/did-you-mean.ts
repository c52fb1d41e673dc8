/**
 * "Did you mean …?" for a name a user mistyped: a backend, a config key, a flag, a command. Light
 * on purpose (no imports): the CLI suggests a flag before it loads anything else.
 */

/** ` (did you mean "x"?)` when one of `candidates` is close to `value`, else the empty string. */
export function suggestion(value: string, candidates: readonly string[]): string {
  const close = closest(value, candidates);
  return close ? ` (did you mean ${JSON.stringify(close)}?)` : '';
}

/**
 * The candidate nearest to `value` by edit distance (case ignored), when it is near enough to be a
 * typo: at most one edit in three characters, and one edit for a short word.
 */
export function closest(value: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(value.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(value.length, best.length) / 3)) ? best : undefined;
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment), so `modle` is one from `model`. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}
