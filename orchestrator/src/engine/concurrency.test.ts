import { describe, expect, it } from 'vitest';
import { mapWithConcurrency } from './concurrency.js';

describe('mapWithConcurrency', () => {
  it('keeps input order with at most `limit` calls in flight', async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapWithConcurrency([5, 4, 3, 2, 1], 2, async (item) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      await Promise.resolve();
      inFlight -= 1;
      return item * 10;
    });
    expect(results).toEqual([50, 40, 30, 20, 10]);
    expect(most).toBe(2);
  });

  it('starts no item once the signal fired: the rest get notStarted, the running one finishes', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const results = await mapWithConcurrency(
      [0, 1, 2, 3, 4],
      1,
      async (item) => {
        started.push(item);
        if (item === 1) controller.abort();
        return `ran ${item}`;
      },
      { signal: controller.signal, notStarted: (item) => `skipped ${item}` },
    );
    expect(started).toEqual([0, 1]);
    expect(results).toEqual(['ran 0', 'ran 1', 'skipped 2', 'skipped 3', 'skipped 4']);
  });
});
