/**
 * What every backend does around a provider call, the same way: a cap on concurrent requests,
 * a timeout per attempt, and retries with exponential backoff and full jitter on the failures
 * worth retrying (429, 408, 409, 5xx, "overloaded", dropped connections), honouring `retry-after`.
 * A refused connection (likewise DNS being down, or a connect timeout) is retried at most twice,
 * with short waits: a server that is not running fails the call within about two seconds, not
 * after the whole backoff; an unknown host is not retried at all. The SDKs' own retries are
 * turned off so there is one policy, configured in one place.
 */
import { AbortedError, InvalidOptionError } from '../errors.js';
import { ModelCallError } from './model-backend.js';

/** What every backend does around a provider call: retries with exponential backoff and jitter on retryable failures (honouring `retry-after`), a timeout per attempt, and a cap on requests in flight. Times are in milliseconds. */
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
  /**
   * The most retries this failure allows, below the caller's `maxRetries` (a refused connection: 2):
   * after this failure no retry follows once this many were made.
   */
  maxRetries?: number;
  /** The longest wait before retrying this failure, in milliseconds, below the caller's `maxDelayMs`. */
  maxDelayMs?: number;
  /**
   * Builds the error to surface when this failure is the last one, for messages that say how many
   * attempts were made in their own words; by default `error`, with ` (after N attempts)` appended.
   */
  finalError?: (attempts: number) => ModelCallError;
}

/**
 * Retries a refused connection (or unavailable DNS, or a connect timeout) gets at most: a server
 * that is not listening seldom starts within seconds.
 */
export const REFUSED_CONNECTION_MAX_RETRIES = 2;
/** The longest wait before retrying a refused connection, in milliseconds. */
export const REFUSED_CONNECTION_MAX_DELAY_MS = 1_000;

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
  readonly #baseUrl: string | undefined;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  /**
   * @param backend the backend's name, for messages.
   * @param target `baseUrl`: where the backend sends its calls; every error this caller throws carries it.
   */
  constructor(backend: string, options: ResilienceOptions = {}, clock: ResilienceClock = realClock, target: { baseUrl?: string | undefined } = {}) {
    this.#backend = backend;
    this.#baseUrl = target.baseUrl;
    // Only the resilience keys: callers pass their whole backend options (keys, URLs…) through.
    const known = Object.fromEntries(Object.keys(DEFAULT_RESILIENCE).map((key) => [key, options[key as keyof ResilienceOptions]]));
    this.options = { ...DEFAULT_RESILIENCE, ...stripUndefined(known) } as Required<ResilienceOptions>;
    this.#clock = clock;
    for (const [key, value] of Object.entries(this.options)) {
      if (!(Number.isFinite(value) && value >= 0))
        throw new InvalidOptionError(key, `must be a non-negative number (for the ${backend} backend), got ${value}`);
    }
    if (this.options.maxConcurrency < 1) throw new InvalidOptionError('maxConcurrency', `must be at least 1 (for the ${backend} backend)`);
  }

  /** Requests in flight now. */
  get active(): number {
    return this.#active;
  }

  /**
   * Runs `attempt` until it succeeds, a failure is not worth retrying, or the retries run out
   * (`maxRetries`, or fewer where the failure caps them: see {@link AttemptFailure.maxRetries}).
   * Each attempt gets a signal that fires on the caller's abort or the attempt's timeout.
   *
   * @throws {ModelCallError} the last failure, its message saying how many attempts were made and
   *   `details.attempts` counting them; `kind: 'timeout'` when the last attempt ran past `timeoutMs`.
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
                  { cause: error, kind: 'timeout' },
                ),
                retryable: true,
              }
            : classify(error);
        }
        const retriesLeft = Math.min(this.options.maxRetries, failure.maxRetries ?? Number.POSITIVE_INFINITY) - attemptIndex;
        if (!failure.retryable || retriesLeft <= 0) throw this.#surface(failure, attemptIndex + 1);
        if (failure.retryAfterMs !== undefined && failure.retryAfterMs > this.options.maxRetryAfterMs) {
          const { error } = failure;
          throw this.#surface(
            {
              ...failure,
              error: new ModelCallError(
                `${error.message} (the provider asked to wait ${Math.ceil(failure.retryAfterMs / 1000)} s, longer than maxRetryAfterMs)`,
                error.backend,
                error.model,
                { ...error.details, retryAfterMs: failure.retryAfterMs },
                { cause: error.cause ?? error, kind: error.kind, baseUrl: error.baseUrl },
              ),
            },
            attemptIndex + 1,
          );
        }
        const delay = failure.retryAfterMs ?? Math.min(this.#backoff(attemptIndex), failure.maxDelayMs ?? Number.POSITIVE_INFINITY);
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

  /** The error the call fails with: the last failure's, saying how many attempts were made, with this backend's base URL. */
  #surface(failure: AttemptFailure, attempts: number): ModelCallError {
    const error = failure.finalError?.(attempts) ?? failure.error;
    const message = failure.finalError || attempts <= 1 ? error.message : `${error.message} (after ${attempts} attempts)`;
    return new ModelCallError(
      message,
      error.backend,
      error.model,
      { ...error.details, attempts },
      { cause: error.cause ?? error, kind: error.kind, baseUrl: error.baseUrl ?? this.#baseUrl },
    );
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

/**
 * How a connection failed, as far as retrying goes:
 * - `unknown_host`: the host name does not resolve (`ENOTFOUND`); no retry can help;
 * - `dns_unavailable`: name resolution failed for now (`EAI_AGAIN`, e.g. no DNS server answering);
 * - `refused`: nothing listens at the address (`ECONNREFUSED`);
 * - `connect_timeout`: the connection was not accepted in time (`UND_ERR_CONNECT_TIMEOUT`, a connect `ETIMEDOUT`);
 * - `dropped`: an established connection broke (`ECONNRESET`, `EPIPE`, "socket hang up", "terminated"…).
 */
export type ConnectionFailureKind = 'unknown_host' | 'dns_unavailable' | 'refused' | 'connect_timeout' | 'dropped';

/** What {@link connectionFailureOf} found: the kind, and the Node or undici code that said so. */
export interface ConnectionFailure {
  kind: ConnectionFailureKind;
  code: string | undefined;
}

const CONNECTION_CODES: Readonly<Record<string, ConnectionFailureKind>> = {
  ENOTFOUND: 'unknown_host',
  EAI_AGAIN: 'dns_unavailable',
  ECONNREFUSED: 'refused',
  UND_ERR_CONNECT_TIMEOUT: 'connect_timeout',
  ECONNRESET: 'dropped',
  EPIPE: 'dropped',
  ETIMEDOUT: 'dropped',
  UND_ERR_SOCKET: 'dropped',
};

/**
 * How a connection failed, read from `error` and its causes (`fetch failed` → its `cause`, and an
 * `AggregateError`'s `errors` when several addresses were tried), or undefined when `error` is not
 * a connection failure. The most telling failure wins: an unknown host over a refused connection
 * over a connect timeout over a dropped one.
 */
export function connectionFailureOf(error: unknown): ConnectionFailure | undefined {
  const found: ConnectionFailure[] = [];
  let sdkConnectionError: ConnectionFailureKind | undefined;
  const visit = (current: unknown, depth: number): void => {
    if (typeof current !== 'object' || current === null || depth > 6) return;
    const { code, name, message, syscall, errors, cause } = current as {
      code?: unknown;
      name?: unknown;
      message?: unknown;
      syscall?: unknown;
      errors?: unknown;
      cause?: unknown;
    };
    if (typeof code === 'string' && Object.hasOwn(CONNECTION_CODES, code)) {
      const kind = code === 'ETIMEDOUT' && syscall === 'connect' ? 'connect_timeout' : CONNECTION_CODES[code];
      if (kind) found.push({ kind, code });
    }
    // The SDKs' wrappers: a connect timeout surfaces as APIConnectionTimeoutError, without its cause.
    if (name === 'APIConnectionTimeoutError') sdkConnectionError = 'connect_timeout';
    else if (name === 'APIConnectionError') sdkConnectionError ??= 'dropped';
    if (typeof message === 'string' && /socket hang up|other side closed|terminated|fetch failed/i.test(message)) sdkConnectionError ??= 'dropped';
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
    visit(cause, depth + 1);
  };
  visit(error, 0);
  for (const kind of ['unknown_host', 'refused', 'dns_unavailable', 'connect_timeout', 'dropped'] as const) {
    const match = found.find((failure) => failure.kind === kind);
    if (match) return match;
  }
  return sdkConnectionError === undefined ? undefined : { kind: sdkConnectionError, code: undefined };
}

/** True when `error` (or its cause chain) is a failed or dropped connection. */
export function isConnectionError(error: unknown): boolean {
  return connectionFailureOf(error) !== undefined;
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

function aborted(backend: string, model: string, signal: AbortSignal, cause?: unknown): AbortedError {
  return new AbortedError(`${backend} ${model}: the call was aborted`, { cause: cause ?? signal.reason });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
