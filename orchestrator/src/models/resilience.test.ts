import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../errors.js';
import { ModelCallError } from './model-backend.js';
import { ResilientCaller, isConnectionError, isRetryableStatus, parseRetryAfter, type AttemptFailure, type ResilienceClock } from './resilience.js';

/** A clock that records the delays asked for and never really waits. */
function fakeClock(random = 1): ResilienceClock & { delays: number[] } {
  const delays: number[] = [];
  return {
    delays,
    sleep: async (ms, signal) => {
      if (signal.aborted) throw signal.reason;
      delays.push(ms);
    },
    random: () => random,
  };
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs?: number,
  ) {
    super(`HTTP ${status}`);
  }
}

const classify = (error: unknown): AttemptFailure => {
  const status = error instanceof HttpFailure ? error.status : 0;
  return {
    error: new ModelCallError(`test m: ${(error as Error).message}`, 'test', 'm', { statusCode: status }),
    retryable: isRetryableStatus(status),
    ...(error instanceof HttpFailure && error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
  };
};

/** An attempt function failing with `failures` in order, then answering `ok`. */
function failing(...failures: Error[]) {
  let calls = 0;
  const attempt = async () => {
    const failure = failures[calls++];
    if (failure) throw failure;
    return 'ok';
  };
  return { attempt, calls: () => calls };
}

describe('ResilientCaller', () => {
  it('retries a 500 and a 429 with exponential backoff, then succeeds', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', { initialDelayMs: 100 }, clock);
    const { attempt, calls } = failing(new HttpFailure(500), new HttpFailure(429), new HttpFailure(503));
    await expect(caller.call('m', attempt, classify)).resolves.toBe('ok');
    expect(calls()).toBe(4);
    expect(clock.delays).toEqual([100, 200, 400]);
  });

  it('draws each backoff between half and all of the step (full jitter)', async () => {
    const clock = fakeClock(0);
    const caller = new ResilientCaller('test', { initialDelayMs: 1000 }, clock);
    await caller.call('m', failing(new HttpFailure(500), new HttpFailure(500)).attempt, classify);
    expect(clock.delays).toEqual([500, 1000]);
  });

  it('waits what retry-after asks instead of its own backoff', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', {}, clock);
    await caller.call('m', failing(new HttpFailure(429, 7_000)).attempt, classify);
    expect(clock.delays).toEqual([7_000]);
  });

  it('fails at once when retry-after is longer than maxRetryAfterMs', async () => {
    const caller = new ResilientCaller('test', { maxRetryAfterMs: 10_000 }, fakeClock());
    await expect(caller.call('m', failing(new HttpFailure(429, 3_600_000)).attempt, classify)).rejects.toThrow(/asked to wait 3600 s/);
  });

  it('surfaces a 401 at once with the provider message, without retrying', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', {}, clock);
    const { attempt, calls } = failing(new HttpFailure(401));
    await expect(caller.call('m', attempt, classify)).rejects.toThrow('test m: HTTP 401');
    expect(calls()).toBe(1);
    expect(clock.delays).toEqual([]);
  });

  it('gives up after maxRetries and says how many attempts were made', async () => {
    const caller = new ResilientCaller('test', { maxRetries: 2 }, fakeClock());
    const error = await caller.call('m', failing(new HttpFailure(500), new HttpFailure(500), new HttpFailure(500)).attempt, classify).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelCallError);
    expect((error as ModelCallError).message).toMatch(/HTTP 500 \(after 3 attempts\)$/);
    expect((error as ModelCallError).details.attempts).toBe(3);
  });

  it('times out a slow attempt, naming timeoutMs, and retries it', async () => {
    const caller = new ResilientCaller('test', { timeoutMs: 30, maxRetries: 1 }, fakeClock());
    let calls = 0;
    const slow = (signal: AbortSignal) =>
      new Promise<string>((_resolve, reject) => {
        calls += 1;
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    await expect(caller.call('m', slow, classify)).rejects.toThrow(/no answer within timeoutMs \(30 ms\)/);
    expect(calls).toBe(2);
  });

  it('stops retrying and rejects with AbortedError when the caller aborts', async () => {
    const controller = new AbortController();
    const clock: ResilienceClock = {
      sleep: async () => {
        controller.abort();
        throw new Error('aborted during backoff');
      },
      random: () => 1,
    };
    const caller = new ResilientCaller('test', {}, clock);
    await expect(caller.call('m', failing(new HttpFailure(500)).attempt, classify, controller.signal)).rejects.toBeInstanceOf(AbortedError);
  });

  it("takes its own keys from a backend's whole options and ignores the rest", () => {
    const caller = new ResilientCaller('test', { maxRetries: 1, apiKey: 'sk-x', baseURL: 'http://127.0.0.1' } as never, fakeClock());
    expect(caller.options.maxRetries).toBe(1);
    expect(caller.options).not.toHaveProperty('apiKey');
  });

  it('keeps at most maxConcurrency calls in flight and starts a waiting one each time one finishes', async () => {
    const caller = new ResilientCaller('test', { maxConcurrency: 2 }, fakeClock());
    let peak = 0;
    // Each attempt runs until the test finishes it.
    const finish: Array<() => void> = [];
    const attempt = () => {
      peak = Math.max(peak, caller.active);
      return new Promise<string>((resolve) => finish.push(() => resolve('ok')));
    };
    const all = Promise.all(Array.from({ length: 7 }, () => caller.call('m', attempt, classify)));
    for (let finished = 0; finished < 7; finished++) {
      await vi.waitFor(() => expect(finish).toHaveLength(Math.min(7, finished + 2)), { timeout: 10_000, interval: 1 });
      expect(caller.active).toBe(Math.min(2, 7 - finished));
      finish[finished]!();
    }
    await expect(all).resolves.toHaveLength(7);
    expect(peak).toBe(2);
    expect(caller.active).toBe(0);
  });

  it("ends an attempt with the clock's timeout signal when the clock has one", async () => {
    const timeouts: Array<{ ms: number; controller: AbortController }> = [];
    const clock: ResilienceClock = {
      ...fakeClock(),
      timeout: (ms) => {
        const controller = new AbortController();
        timeouts.push({ ms, controller });
        return controller.signal;
      },
    };
    const caller = new ResilientCaller('test', { timeoutMs: 123_000, maxRetries: 0 }, clock);
    const pending = caller.call(
      'm',
      (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
      classify,
    );
    await vi.waitFor(() => expect(timeouts).toHaveLength(1), { timeout: 10_000, interval: 1 });
    expect(timeouts[0]?.ms).toBe(123_000);
    timeouts[0]?.controller.abort(new DOMException('timed out', 'TimeoutError'));
    await expect(pending).rejects.toThrow(/no answer within timeoutMs \(123000 ms\)/);
  });
});

describe('ResilientCaller on the real clock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits out each backoff on timers before the next attempt, and stops waiting when the caller aborts', async () => {
    vi.useFakeTimers();
    // Full jitter: the first backoff is between 500 and 1000 ms, the second between 1000 and 2000.
    const caller = new ResilientCaller('test', { initialDelayMs: 1_000 });
    const { attempt, calls } = failing(new HttpFailure(500), new HttpFailure(500));
    const controller = new AbortController();
    const pending = caller.call('m', attempt, classify, controller.signal);
    const settled = pending.then(
      () => 'resolved',
      (error: unknown) => error,
    );

    await vi.advanceTimersByTimeAsync(499);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(501);
    expect(calls()).toBe(2);

    // In the second backoff now: an abort ends the wait without any timer firing.
    controller.abort();
    expect(await settled).toBeInstanceOf(AbortedError);
    expect(calls()).toBe(2);
  });
});

describe('failure classification helpers', () => {
  it('retries 408, 409, 429 and 5xx (529 overloaded included), not 400, 401, 403 or 404', () => {
    expect([408, 409, 429, 500, 502, 503, 529].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 422].some(isRetryableStatus)).toBe(false);
  });

  it('reads retry-after-ms, retry-after in seconds and as an HTTP date', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '1500' })).toBe(1500);
    expect(parseRetryAfter({ 'retry-after': '3' })).toBe(3000);
    const now = Date.parse('2026-11-21T12:00:00Z');
    expect(parseRetryAfter({ 'retry-after': 'Sat, 21 Nov 2026 12:00:10 GMT' }, now)).toBe(10_000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfter({ 'retry-after': 'soon' })).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('recognises a reset connection anywhere in the cause chain', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(isConnectionError(new Error('request failed', { cause: reset }))).toBe(true);
    expect(isConnectionError(new Error('HTTP 400'))).toBe(false);
  });
});
