import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, errorMessage } from '../errors.js';
import { ModelCallError } from './model-backend.js';
import { connectionAttemptFailure, type ProviderEndpoint } from './provider-failures.js';
import {
  ResilientCaller,
  connectionFailureOf,
  isConnectionError,
  isRetryableStatus,
  parseRetryAfter,
  type AttemptFailure,
  type ResilienceClock,
} from './resilience.js';

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
    error: new ModelCallError(`test m: ${errorMessage(error)}`, 'test', 'm', { statusCode: status }),
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
    const error = await caller.call('m', slow, classify).catch((e: unknown) => e);
    expect(errorMessage(error)).toMatch(/no answer within timeoutMs \(30 ms\)/);
    expect(error).toMatchObject({ kind: 'timeout', fatal: false, details: { attempts: 2 } });
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

describe('ResilientCaller: connections that cannot succeed', () => {
  const endpoint: ProviderEndpoint = {
    backend: 'test',
    baseUrl: 'http://127.0.0.1:9/v1',
    baseUrlSource: { from: 'option' },
    apiKeySource: { from: 'option' },
  };
  const classifyConnection = (error: unknown): AttemptFailure =>
    connectionAttemptFailure(error, endpoint, 'm', () => `test m: dropped: ${errorMessage(error)}`) ?? classify(error);
  /** What undici's fetch rejects with: `fetch failed`, the system error as its cause. */
  const fetchFailed = (code: string) => new TypeError('fetch failed', { cause: Object.assign(new Error(`connect ${code} 127.0.0.1:9`), { code }) });

  it('retries a refused connection at most twice, even when maxRetries allows more, with waits of at most a second', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', { maxRetries: 10, initialDelayMs: 5_000 }, clock, { baseUrl: endpoint.baseUrl });
    const { attempt, calls } = failing(...Array.from({ length: 11 }, () => fetchFailed('ECONNREFUSED')));
    const error = await caller.call('m', attempt, classifyConnection).catch((e: unknown) => e);

    expect(calls()).toBe(3);
    expect(clock.delays).toEqual([1_000, 1_000]);
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: 'http://127.0.0.1:9/v1', details: { attempts: 3, isRetryable: false } });
    expect(errorMessage(error)).toMatch(
      /^test m: cannot connect to http:\/\/127\.0\.0\.1:9\/v1 \(connection refused\) after 3 attempts: is the server running\? check --base-url/,
    );
  });

  it('keeps its own shorter backoff for a refused connection when it is under a second', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', { initialDelayMs: 100 }, clock);
    const { attempt } = failing(fetchFailed('ECONNREFUSED'), fetchFailed('ECONNREFUSED'), fetchFailed('ECONNREFUSED'));
    await caller.call('m', attempt, classifyConnection).catch(() => undefined);
    expect(clock.delays).toEqual([100, 200]);
  });

  it('retries a refused connection no more than maxRetries when that is lower', async () => {
    const caller = new ResilientCaller('test', { maxRetries: 0 }, fakeClock());
    const { attempt, calls } = failing(fetchFailed('ECONNREFUSED'), fetchFailed('ECONNREFUSED'));
    const error = await caller.call('m', attempt, classifyConnection).catch((e: unknown) => e);
    expect(calls()).toBe(1);
    expect(error).toMatchObject({ kind: 'unreachable', details: { attempts: 1 } });
    expect(errorMessage(error)).toMatch(/\(connection refused\) after 1 attempt: /);
  });

  it('does not retry an unknown host', async () => {
    const clock = fakeClock();
    const caller = new ResilientCaller('test', {}, clock);
    const { attempt, calls } = failing(new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } }), new Error('not reached'));
    const error = await caller.call('m', attempt, classifyConnection).catch((e: unknown) => e);
    expect(calls()).toBe(1);
    expect(clock.delays).toEqual([]);
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, details: { attempts: 1 } });
    expect(errorMessage(error)).toBe(
      "test m: cannot resolve the host of http://127.0.0.1:9/v1 (unknown host, ENOTFOUND); check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)",
    );
  });

  it('retries a dropped connection as often as maxRetries says, and it is not fatal', async () => {
    const caller = new ResilientCaller('test', { maxRetries: 4 }, fakeClock());
    const { attempt, calls } = failing(...Array.from({ length: 5 }, () => fetchFailed('ECONNRESET')));
    const error = await caller.call('m', attempt, classifyConnection).catch((e: unknown) => e);
    expect(calls()).toBe(5);
    expect(error).toMatchObject({ kind: 'provider_error', fatal: false, details: { attempts: 5, isRetryable: true } });
    expect(errorMessage(error)).toBe('test m: dropped: fetch failed (after 5 attempts)');
  });

  it('puts its base URL on every error it throws and keeps the kind through the retries', async () => {
    const caller = new ResilientCaller('test', { maxRetries: 1 }, fakeClock(), { baseUrl: 'http://127.0.0.1:1' });
    const rateLimited = (): AttemptFailure => ({ error: new ModelCallError('test m: HTTP 429', 'test', 'm', {}, { kind: 'rate_limited' }), retryable: true });
    const error = await caller.call('m', failing(new Error('a'), new Error('b')).attempt, rateLimited).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'rate_limited', baseUrl: 'http://127.0.0.1:1', details: { attempts: 2 } });
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

  it('tells an unknown host, a refused connection, a connect timeout and a dropped one apart, through causes and AggregateErrors', () => {
    const system = (code: string, extra: object = {}) => Object.assign(new Error(code), { code, ...extra });
    const sdkWrapped = (cause: unknown) => Object.assign(new Error('Connection error.', { cause }), { name: 'APIConnectionError' });
    expect(connectionFailureOf(sdkWrapped(new TypeError('fetch failed', { cause: system('ENOTFOUND') })))).toEqual({ kind: 'unknown_host', code: 'ENOTFOUND' });
    expect(connectionFailureOf(new TypeError('fetch failed', { cause: system('ECONNREFUSED') }))).toEqual({ kind: 'refused', code: 'ECONNREFUSED' });
    // Several addresses tried (IPv6 and IPv4): refused on each.
    const aggregate = Object.assign(new AggregateError([system('ECONNREFUSED'), system('ECONNREFUSED')]), { code: 'ECONNREFUSED' });
    expect(connectionFailureOf(new TypeError('fetch failed', { cause: aggregate }))?.kind).toBe('refused');
    expect(connectionFailureOf(new TypeError('fetch failed', { cause: system('EAI_AGAIN') }))?.kind).toBe('dns_unavailable');
    expect(connectionFailureOf(new TypeError('fetch failed', { cause: system('UND_ERR_CONNECT_TIMEOUT') }))?.kind).toBe('connect_timeout');
    expect(connectionFailureOf(system('ETIMEDOUT', { syscall: 'connect' }))?.kind).toBe('connect_timeout');
    expect(connectionFailureOf(system('ETIMEDOUT', { syscall: 'read' }))?.kind).toBe('dropped');
    expect(connectionFailureOf(Object.assign(new Error('Request timed out.'), { name: 'APIConnectionTimeoutError' }))?.kind).toBe('connect_timeout');
    expect(connectionFailureOf(new TypeError('terminated', { cause: system('UND_ERR_SOCKET') }))?.kind).toBe('dropped');
    expect(connectionFailureOf(new Error('socket hang up'))).toEqual({ kind: 'dropped', code: undefined });
    expect(connectionFailureOf(new Error('HTTP 400'))).toBeUndefined();
  });
});
