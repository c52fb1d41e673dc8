/**
 * A run's events, delivered to callbacks and to async iterators. Emitting never fails and never
 * waits: a listener that throws is reported and skipped, and an iterator that falls behind loses
 * its oldest events rather than holding memory without bound.
 */
import { warn } from '../logging.js';

/** Events an iterator may hold before it starts dropping its oldest ones, unless set otherwise. */
export const DEFAULT_EVENT_BUFFER_LIMIT = 10_000;

export type EventListener<T> = (event: T) => void | Promise<void>;

/** An iterator over a stream's events; says how many it lost to a full buffer. */
export interface EventIterator<T> extends AsyncIterableIterator<T> {
  /** Events this iterator never yielded because its buffer was full when they came. */
  readonly droppedEvents: number;
}

interface Subscriber<T> {
  buffer: T[];
  /** Index of the next event to yield in `buffer` (a queue without shifting on every read). */
  head: number;
  dropped: number;
  waiting: ((result: IteratorResult<T>) => void) | undefined;
  done: boolean;
}

export class EventStream<T> {
  readonly #listeners = new Set<EventListener<T>>();
  readonly #subscribers = new Set<Subscriber<T>>();
  readonly #reportedListeners = new WeakSet<EventListener<T>>();
  readonly #bufferLimit: number;
  readonly #name: string;
  #droppedWarned = false;
  #closed = false;

  /**
   * @param options.bufferLimit events one iterator may hold unread (default
   *   {@link DEFAULT_EVENT_BUFFER_LIMIT}); past it, the oldest are dropped and counted.
   * @param options.name how warnings name this stream (default `run events`).
   */
  constructor(options: { bufferLimit?: number; name?: string } = {}) {
    this.#bufferLimit = Math.max(1, Math.floor(options.bufferLimit ?? DEFAULT_EVENT_BUFFER_LIMIT));
    this.#name = options.name ?? 'run events';
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Delivers `event` to every listener, synchronously in subscription order, and queues it for
   * every open iterator. After {@link close} it does nothing. Never throws: a listener that throws
   * (or returns a promise that rejects) is reported once through `warn` and keeps receiving events.
   */
  emit(event: T): void {
    if (this.#closed) return;
    for (const listener of [...this.#listeners]) {
      try {
        const returned = listener(event);
        if (returned instanceof Promise) returned.catch((error: unknown) => this.#reportListenerError(listener, error));
      } catch (error) {
        this.#reportListenerError(listener, error);
      }
    }
    for (const subscriber of this.#subscribers) this.#push(subscriber, event);
  }

  /** Calls `listener` with every event emitted from now on; returns a function that stops it. */
  on(listener: EventListener<T>): () => void {
    // Wrapped so that subscribing the same function twice gives two independent subscriptions.
    const subscription: EventListener<T> = (event) => listener(event);
    this.#listeners.add(subscription);
    return () => {
      this.#listeners.delete(subscription);
    };
  }

  /**
   * An iterator over every event emitted after this call, ending once {@link close} is called and
   * the buffered events are read. Breaking out of `for await` unsubscribes it. A stream closed
   * already gives an iterator that ends at once.
   */
  [Symbol.asyncIterator](): EventIterator<T> {
    const subscriber: Subscriber<T> = { buffer: [], head: 0, dropped: 0, waiting: undefined, done: this.#closed };
    if (!subscriber.done) this.#subscribers.add(subscriber);
    const finish = (): IteratorResult<T> => {
      this.#subscribers.delete(subscriber);
      subscriber.done = true;
      subscriber.buffer = [];
      subscriber.head = 0;
      return { done: true, value: undefined };
    };
    const iterator: EventIterator<T> = {
      get droppedEvents() {
        return subscriber.dropped;
      },
      next: () => {
        if (subscriber.head < subscriber.buffer.length) return Promise.resolve({ done: false, value: this.#take(subscriber) });
        if (subscriber.done || this.#closed) return Promise.resolve(finish());
        return new Promise<IteratorResult<T>>((resolve) => {
          subscriber.waiting = resolve;
        });
      },
      return: () => {
        const waiting = subscriber.waiting;
        subscriber.waiting = undefined;
        const result = finish();
        waiting?.(result);
        return Promise.resolve(result);
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Ends every iterator (after it has read what it holds) and ignores later emits. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    for (const subscriber of this.#subscribers) {
      subscriber.done = true;
      const waiting = subscriber.waiting;
      if (waiting) {
        subscriber.waiting = undefined;
        waiting({ done: true, value: undefined });
      }
    }
    this.#subscribers.clear();
  }

  #push(subscriber: Subscriber<T>, event: T): void {
    const waiting = subscriber.waiting;
    if (waiting) {
      subscriber.waiting = undefined;
      waiting({ done: false, value: event });
      return;
    }
    if (subscriber.buffer.length - subscriber.head >= this.#bufferLimit) {
      subscriber.head += 1;
      subscriber.dropped += 1;
      if (!this.#droppedWarned) {
        this.#droppedWarned = true;
        warn(`an iterator over ${this.#name} fell ${this.#bufferLimit} events behind; its oldest events are being dropped (read faster, or raise bufferLimit)`);
      }
    }
    subscriber.buffer.push(event);
    this.#compact(subscriber);
  }

  #take(subscriber: Subscriber<T>): T {
    const event = subscriber.buffer[subscriber.head] as T;
    subscriber.head += 1;
    this.#compact(subscriber);
    return event;
  }

  /** Drops consumed slots once they are at least half the array, so the array stays O(bufferLimit). */
  #compact(subscriber: Subscriber<T>): void {
    if (subscriber.head === subscriber.buffer.length) {
      subscriber.buffer = [];
      subscriber.head = 0;
    } else if (subscriber.head >= 1024 && subscriber.head * 2 >= subscriber.buffer.length) {
      subscriber.buffer = subscriber.buffer.slice(subscriber.head);
      subscriber.head = 0;
    }
  }

  #reportListenerError(listener: EventListener<T>, error: unknown): void {
    if (this.#reportedListeners.has(listener)) return;
    this.#reportedListeners.add(listener);
    const message = error instanceof Error ? error.message : String(error);
    warn(`a listener of ${this.#name} threw and was skipped (further errors from it are not reported): ${message}`);
  }
}
