/**
 * A run's engine events on their way to the store: collected, appended in small batches (at most
 * every `flushDelayMs` or `maxBatch` events, whichever comes first, one append at a time so the
 * stored order is the engine's), and announced after each append. A string in an event longer than
 * {@link EVENT_STRING_LIMIT_CHARS} is clipped around a marker, so one huge cell output or model
 * response cannot bloat the database; the run's trajectory keeps what the engine records.
 */
import type { RunEvent } from '../../engine/run-events.js';
import { clipForRecord } from '../../engine/recorded-text.js';
import type { ServiceStore } from '../service-types.js';

/** Longest string kept whole in a stored event, in characters (64 Ki); longer ones keep their two ends around a marker. */
export const EVENT_STRING_LIMIT_CHARS = 64 * 1024;

/** An event as the store takes it: the engine's `type`, and every other field as `data`. */
export interface EventToStore {
  type: string;
  data: Record<string, unknown>;
}

/** `event` as the store takes it, with every string longer than `limitChars` clipped (see {@link clipForRecord}). */
export function eventToStore(event: RunEvent, limitChars = EVENT_STRING_LIMIT_CHARS): EventToStore {
  const { type, ...data } = event;
  return { type, data: capStrings(data, limitChars) as Record<string, unknown> };
}

/** A copy of a JSON-like value in which no string is longer than `limitChars`; values without a long string are returned as they are. */
export function capStrings(value: unknown, limitChars: number): unknown {
  if (typeof value === 'string') return value.length > limitChars ? clipForRecord(value, limitChars, Math.floor(limitChars / 4)) : value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, index) => {
      const capped = capStrings(item, limitChars);
      if (capped !== item) {
        copy ??= [...value];
        copy[index] = capped;
      }
    });
    return copy ?? value;
  }
  if (value !== null && typeof value === 'object') {
    let copy: Record<string, unknown> | undefined;
    for (const [key, item] of Object.entries(value)) {
      const capped = capStrings(item, limitChars);
      if (capped !== item) {
        copy ??= { ...value };
        // Defined, not assigned: a key named `__proto__` must stay a key.
        Object.defineProperty(copy, key, { value: capped, enumerable: true, writable: true, configurable: true });
      }
    }
    return copy ?? value;
  }
  return value;
}

export interface EventBatcherOptions {
  store: Pick<ServiceStore, 'appendEvents'>;
  runId: string;
  /** The worker holding the run: the store takes its events only while it does. */
  workerId?: string;
  /** After each append: the `seq` of the last event stored. */
  onStored: (lastSeq: number) => void;
  /** An append failed for good (after retries): its events were dropped. */
  onDropped: (error: unknown, count: number) => void;
  /** Longest wait before a batch is appended, milliseconds; default 50. */
  flushDelayMs?: number;
  /** Events that trigger an append at once; default 100. */
  maxBatch?: number;
  /** Attempts of one append before its events are dropped; default 5 (waits 50, 100, 200, 400 ms between). */
  attempts?: number;
}

/** Appends one run's events to the store in order, in batches. Never throws: a failing store is reported through `onDropped`. */
export class EventBatcher {
  readonly #options: Required<Omit<EventBatcherOptions, 'store' | 'runId' | 'workerId' | 'onStored' | 'onDropped'>> & EventBatcherOptions;
  #pending: EventToStore[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The appends, one after another. */
  #chain: Promise<void> = Promise.resolve();
  /** An append is queued on the chain that has not started taking events yet. */
  #queued = false;
  #closed = false;
  /** The `seq` of the last event this batcher stored; 0 before the first. */
  lastSeq = 0;

  constructor(options: EventBatcherOptions) {
    this.#options = { flushDelayMs: 50, maxBatch: 100, attempts: 5, ...options };
  }

  add(event: RunEvent): void {
    if (this.#closed) return;
    this.#pending.push(eventToStore(event));
    if (this.#queued) return;
    if (this.#pending.length >= this.#options.maxBatch) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), this.#options.flushDelayMs).unref();
  }

  /** Appends everything added so far; resolves when it is stored (or dropped). */
  flush(): Promise<void> {
    if (!this.#queued) {
      this.#queued = true;
      this.#chain = this.#chain.then(() => this.#appendPending());
    }
    return this.#chain;
  }

  /** Stores what is pending and takes no more events. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    this.#stopTimer();
  }

  /** Takes no more events and drops what is pending (the run is no longer this worker's to write). */
  discard(): void {
    this.#closed = true;
    this.#pending = [];
    this.#stopTimer();
  }

  async #appendPending(): Promise<void> {
    this.#queued = false;
    this.#stopTimer();
    const { store, runId, maxBatch, attempts } = this.#options;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, maxBatch);
      for (let attempt = 1; ; attempt += 1) {
        try {
          const stored = await store.appendEvents(runId, batch, this.#options.workerId === undefined ? {} : { workerId: this.#options.workerId });
          const last = stored.at(-1);
          if (last) {
            this.lastSeq = Math.max(this.lastSeq, last.seq);
            this.#options.onStored(this.lastSeq);
          }
          break;
        } catch (error) {
          // Discarded meanwhile: the run is no longer this worker's to write.
          if (this.#closed) break;
          if (attempt >= attempts) {
            this.#options.onDropped(error, batch.length);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** (attempt - 1)).unref());
        }
      }
    }
  }

  #stopTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
