/**
 * A {@link ResilienceClock} for tests with real time taken out: a retry records the delay it chose
 * and goes on at once, and an attempt times out when the test calls `expireAttempt()`, not on a timer.
 */
import type { ResilienceClock } from '../models/resilience.js';

export interface ManualClock {
  clock: ResilienceClock;
  /** Every backoff delay asked for, in milliseconds, in order. */
  delays: number[];
  /** Fires the latest attempt's timeout, as `AbortSignal.timeout` would. */
  expireAttempt(): void;
}

/** `random` is what the jitter draws (1: the full backoff). */
export function manualClock(random = 1): ManualClock {
  const delays: number[] = [];
  const attempts: AbortController[] = [];
  const clock: ResilienceClock = {
    sleep: async (ms, signal) => {
      signal.throwIfAborted();
      delays.push(ms);
    },
    random: () => random,
    timeout: () => {
      const controller = new AbortController();
      attempts.push(controller);
      return controller.signal;
    },
  };
  const expireAttempt = () => attempts.at(-1)?.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
  return { clock, delays, expireAttempt };
}
