/**
 * What every backend does around a provider call, the same way: a cap on concurrent requests,
 * a timeout per attempt, and retries with exponential backoff and full jitter on the failures
 * worth retrying (429, 408, 409, 5xx, "overloaded", dropped connections), honouring `retry-after`.
 * The SDKs' own retries are turned off so there is one policy, configured in one place.
 */
import { AbortedError } from '../errors.js';
import { ModelCallError } from './model-backend.js';

export interface ResilienceOptions {
  /** Retries after the first attempt; default 4. */
  maxRetries?: number;
  /** First backoff in milliseconds, doubled each retry; default 500. */
  initialDelayMs?: number;
  /** Longest backoff in milliseconds; default 30 000. */
  maxDelayMs?: number;
  /** Longest `retry-after` honoured, in milliseconds; a longer wait fails at once. Default 120 000. */
  maxRetryAfterMs?: number;
  /** Limit of one attempt in milliseconds (streaming keeps long answers alive); default 600 000. */
  timeoutMs?: number;
  /** Requests in flight at once on this backend; default 16. */
  maxConcurrency?: number;
}

export const DEFAULT_RESILIENCE: Readonly<Required<ResilienceOptions>> = Object.freeze({
  maxRetries: 4,
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
  timeoutMs: 600_000,
  maxConcurrency: 16,
});

/** How a backend sees one failed attempt. */
export interface AttemptFailure {
  /** The error to surface if no retry follows; its message names the backend, model and provider's reason. */
  error: ModelCallError;
  retryable: boolean;
  /** The provider's `retry-after`, in milliseconds. */
  retryAfterMs?: number;
}

/** Test seams: time and randomness. */
export interface ResilienceClock {
  /** Waits `ms` between attempts; rejects with the signal's reason when it fires. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
  /** A number in [0, 1), for the jitter. */
  random(): number;
  /** The signal that ends one attempt after `ms`; default `AbortSignal.timeout(ms)`. */
  timeout?(ms: number): AbortSignal;
}

/** The options of a backend that replace real time, for tests; a backend passes them to its {@link ResilientCaller}. */
export interface ResilienceSeams {
  /** How retries wait, draw their jitter and time out an attempt; default real timers and `Math.random`. */
  clock?: ResilienceClock;
}

const realClock: ResilienceClock = {
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    }),
  random: Math.random,
};

export class ResilientCaller {
  readonly options: Readonly<Required<ResilienceOptions>>;
  readonly #backend: string;
  readonly #clock: ResilienceClock;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(backend: string, options: ResilienceOptions = {}, clock: ResilienceClock = realClock) {
    this.#backend = backend;
    // Only the resilience keys: callers pass their whole backend options (keys, URLs…) through.
    const known = Object.fromEntries(Object.keys(DEFAULT_RESILIENCE).map((key) => [key, options[key as keyof ResilienceOptions]]));
    this.options = { ...DEFAULT_RESILIENCE, ...stripUndefined(known) } as Required<ResilienceOptions>;
    this.#clock = clock;
    for (const [key, value] of Object.entries(this.options)) {
      if (!(Number.isFinite(value) && value >= 0)) throw new RangeError(`${backend}: ${key} must be a non-negative number, got ${value}`);
    }
    if (this.options.maxConcurrency < 1) throw new RangeError(`${backend}: maxConcurrency must be at least 1`);
  }

  /** Requests in flight now. */
  get active(): number {
    return this.#active;
  }

  /**
   * Runs `attempt` until it succeeds, a failure is not worth retrying, or the retries run out.
   * Each attempt gets a signal that fires on the caller's abort or the attempt's timeout.
   *
   * @throws {ModelCallError} the last failure, its message saying how many attempts were made.
   * @throws {AbortedError} the caller's signal fired.
   */
  async call<T>(model: string, attempt: (signal: AbortSignal) => Promise<T>, classify: (error: unknown) => AttemptFailure, signal?: AbortSignal): Promise<T> {
    const callerSignal = signal ?? new AbortController().signal;
    await this.#acquire(callerSignal);
    try {
      for (let attemptIndex = 0; ; attemptIndex++) {
        if (callerSignal.aborted) throw aborted(this.#backend, model, callerSignal);
        const timeout = this.#clock.timeout?.(this.options.timeoutMs) ?? AbortSignal.timeout(this.options.timeoutMs);
        let failure: AttemptFailure;
        try {
          return await attempt(AbortSignal.any([callerSignal, timeout]));
        } catch (error) {
          if (callerSignal.aborted) throw aborted(this.#backend, model, callerSignal, error);
          failure = timeout.aborted
            ? {
                error: new ModelCallError(
                  `${this.#backend} ${model}: no answer within timeoutMs (${this.options.timeoutMs} ms); raise the backend's timeoutMs for slow models`,
                  this.#backend,
                  model,
                  { isRetryable: true },
                  { cause: error },
                ),
                retryable: true,
              }
            : classify(error);
        }
        const retriesLeft = this.options.maxRetries - attemptIndex;
        if (!failure.retryable || retriesLeft <= 0) throw withAttempts(failure.error, attemptIndex + 1);
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > this.options.maxRetryAfterMs) {
          throw withAttempts(
            new ModelCallError(
              `${failure.error.message} (the provider asked to wait ${Math.ceil(failure.retryAfterMs / 1000)} s, longer than maxRetryAfterMs)`,
              this.#backend,
              model,
              { ...failure.error.details, retryAfterMs: failure.retryAfterMs },
              { cause: failure.error },
            ),
            attemptIndex + 1,
          );
        }
        const delay = failure.retryAfterMs ?? this.#backoff(attemptIndex);
        try {
          await this.#clock.sleep(delay, callerSignal);
        } catch (error) {
          throw aborted(this.#backend, model, callerSignal, error);
        }
      }
    } finally {
      this.#release();
    }
  }

  /** Full jitter: a random delay between half and all of the exponential step. */
  #backoff(attemptIndex: number): number {
    const step = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** attemptIndex);
    return Math.round(step / 2 + (this.#clock.random() * step) / 2);
  }

  async #acquire(signal: AbortSignal): Promise<void> {
    if (this.#active < this.options.maxConcurrency) {
      this.#active += 1;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        this.#active += 1;
        resolve();
      };
      const onAbort = () => {
        const index = this.#waiting.indexOf(grant);
        if (index >= 0) this.#waiting.splice(index, 1);
        reject(signal.reason instanceof Error ? signal.reason : new AbortedError('the model call was aborted while waiting for a free slot'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(grant);
    });
  }

  #release(): void {
    this.#active -= 1;
    this.#waiting.shift()?.();
  }
}

/** Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx (529 is Anthropic's "overloaded"). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Node error codes of a dropped or refused connection, worth retrying. */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** True when `error` (or its cause chain) is a dropped connection. */
export function isConnectionError(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return true;
    const name = (current as { name?: unknown }).name;
    if (name === 'APIConnectionError' || name === 'APIConnectionTimeoutError') return true;
    if (current instanceof Error && /socket hang up|other side closed|terminated|fetch failed/i.test(current.message)) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Milliseconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date), or
 * undefined when neither is usable.
 */
export function parseRetryAfter(
  headers: { get(name: string): string | null } | Record<string, string | string[] | undefined> | undefined,
  now = Date.now(),
): number | undefined {
  if (!headers) return undefined;
  const read = (name: string): string | undefined => {
    if (typeof (headers as { get?: unknown }).get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
    const value = (headers as Record<string, string | string[] | undefined>)[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const ms = Number(read('retry-after-ms'));
  if (read('retry-after-ms') !== undefined && Number.isFinite(ms) && ms >= 0) return ms;
  const raw = read('retry-after');
  if (raw === undefined || raw.trim() === '') return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function withAttempts(error: ModelCallError, attempts: number): ModelCallError {
  if (attempts <= 1) return error;
  return new ModelCallError(
    `${error.message} (after ${attempts} attempts)`,
    error.backend,
    error.model,
    { ...error.details, attempts },
    { cause: error.cause ?? error },
  );
}

function aborted(backend: string, model: string, signal: AbortSignal, cause?: unknown): AbortedError {
  return new AbortedError(`${backend} ${model}: the call was aborted`, { cause: cause ?? signal.reason });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
