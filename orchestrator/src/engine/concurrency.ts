/**
 * Runs `fn` over `items` with at most `limit` calls in flight; results come back in input order.
 * `fn` must not throw for a single item's failure (return it as a value): one bad slot must not
 * cancel the batch. Once `signal` fires no further item is started: each one left gets
 * `notStarted(item, index)` instead, and what is running finishes (it has the signal too).
 */
export async function mapWithConcurrency<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
  stop?: { signal: AbortSignal; notStarted: (item: T, index: number) => R },
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index] as T;
      results[index] = stop?.signal.aborted ? stop.notStarted(item, index) : await fn(item, index);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
