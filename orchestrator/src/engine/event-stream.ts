/**
 * A run's events, delivered to callbacks and to async iterators. Emitting never fails and never
 * waits: a listener that throws is reported and skipped, and an iterator that falls behind drops
 * events by a fixed policy (see {@link EventStream}) rather than holding memory without bound.
 */
import { errorMessage } from '../errors.js';
import { warn } from '../logging.js';
import type { RunEvent, RunEventType } from './run-events.js';

/** Events an iterator may hold before it starts dropping, unless set otherwise. */
export const DEFAULT_EVENT_BUFFER_LIMIT = 10_000;

export type EventListener<T> = (event: T) => void | Promise<void>;

/** An iterator over a stream's events; says how many it lost to a full buffer. */
export interface EventIterator<T> extends AsyncIterableIterator<T> {
  /** Events this iterator never yielded because its buffer was full (markers not counted). */
  readonly droppedEvents: number;
}

/** How an iterator that fell behind chooses what to drop, and how it tells its reader. */
export interface EventDropPolicy<T> {
  /** True for an event that goes before the others when the buffer is full (high-volume, low-value). */
  droppable(event: T): boolean;
  /**
   * The event an iterator yields, before its next one, after it dropped `count` events since the
   * last it yielded; `origin` is the first event the stream emitted. Undefined: the loss is only
   * counted (in `droppedEvents`).
   */
  marker?(count: number, origin: T): T | undefined;
}

/**
 * Run events that go first when an iterator falls behind: a flood of sub-calls (thousands per
 * cell) makes them, and a cell's `cell_end` still says how its calls went. Everything else — the
 * run's, turns', cells', warnings and the final answer — is kept while any of these is buffered.
 */
export const DROPPABLE_RUN_EVENT_TYPES: ReadonlySet<RunEventType> = new Set<RunEventType>(['subcall_start', 'subcall_end']);

/**
 * The policy for run events: {@link DROPPABLE_RUN_EVENT_TYPES} go first, and the reader gets an
 * `events_dropped` event with the count, carrying the root run's id and depth (from `origin`).
 */
export const RUN_EVENT_DROP_POLICY: EventDropPolicy<RunEvent> = {
  droppable: (event) => DROPPABLE_RUN_EVENT_TYPES.has(event.type),
  marker: (count, origin) => ({
    type: 'events_dropped',
    count,
    runId: origin.runId,
    ...(origin.parentRunId === undefined ? {} : { parentRunId: origin.parentRunId }),
    depth: origin.depth,
    time: Date.now(),
  }),
};

/**
 * The default: {@link RUN_EVENT_DROP_POLICY} for a stream of run events, recognised by shape
 * (a stream's type parameter is gone at run time); for any other stream, oldest first and counted.
 */
const SHAPE_POLICY: EventDropPolicy<unknown> = {
  droppable: (event) => isRunEvent(event) && RUN_EVENT_DROP_POLICY.droppable(event),
  marker: (count, origin) => (isRunEvent(origin) ? RUN_EVENT_DROP_POLICY.marker?.(count, origin) : undefined),
};

function isRunEvent(value: unknown): value is RunEvent {
  return (
    typeof value === 'object' &&
    value !== null &&
    'type' in value &&
    typeof value.type === 'string' &&
    'runId' in value &&
    typeof value.runId === 'string' &&
    'depth' in value &&
    typeof value.depth === 'number'
  );
}

/** A FIFO that does not shift the array on every read; its array stays O(its size). */
class Queue<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head += 1;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

interface Entry<T> {
  /** Emission order, to merge the two queues back into it. */
  seq: number;
  event: T;
}

interface Subscriber<T> {
  /** Buffered events the policy keeps while any droppable one is buffered. */
  kept: Queue<Entry<T>>;
  /** Buffered events the policy drops first. */
  droppable: Queue<Entry<T>>;
  nextSeq: number;
  dropped: number;
  /** Dropped since the last marker was yielded. */
  unreported: number;
  waiting: ((result: IteratorResult<T>) => void) | undefined;
  done: boolean;
}

/**
 * Events to callbacks and async iterators.
 *
 * **Bounded iterators.** An iterator holds at most `bufferLimit` unread events. When one more
 * arrives, it drops the oldest *droppable* event it holds (for run events, `subcall_start` and
 * `subcall_end`; the new event counts as held), or, when it holds nothing droppable, its oldest
 * event. Before its next event it then yields one `events_dropped` event whose `count` says how
 * many it dropped since the event before; `droppedEvents` keeps the total. Memory stays within
 * `bufferLimit` events plus that marker, however slowly the iterator is read; a reader waiting in
 * `next()` loses nothing. Listeners (`on`, `onEvent`) are called synchronously and never drop.
 */
export class EventStream<T> {
  readonly #listeners = new Set<EventListener<T>>();
  readonly #subscribers = new Set<Subscriber<T>>();
  readonly #reportedListeners = new WeakSet<EventListener<T>>();
  readonly #bufferLimit: number;
  readonly #name: string;
  readonly #policy: EventDropPolicy<T>;
  /** The first event emitted, for the policy's marker. */
  #origin: { event: T } | undefined;
  #droppedWarned = false;
  #closed = false;

  /**
   * @param options.bufferLimit events one iterator may hold unread (default
   *   {@link DEFAULT_EVENT_BUFFER_LIMIT}); past it, events are dropped and counted (see the class).
   * @param options.name how warnings name this stream (default `run events`).
   * @param options.dropPolicy what goes first and how the reader is told; by default
   *   {@link RUN_EVENT_DROP_POLICY} for run events, oldest first (counted only) for anything else.
   */
  constructor(options: { bufferLimit?: number; name?: string; dropPolicy?: EventDropPolicy<T> } = {}) {
    this.#bufferLimit = Math.max(1, Math.floor(options.bufferLimit ?? DEFAULT_EVENT_BUFFER_LIMIT));
    this.#name = options.name ?? 'run events';
    // SHAPE_POLICY takes any value, so it is a policy for every T; its marker is a run event, made
    // only when the stream's first event is one, that is when T is RunEvent.
    this.#policy = options.dropPolicy ?? (SHAPE_POLICY as EventDropPolicy<T>);
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
    this.#origin ??= { event };
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
   * already gives an iterator that ends at once. One that falls `bufferLimit` events behind drops
   * events as the class describes.
   */
  [Symbol.asyncIterator](): EventIterator<T> {
    const subscriber: Subscriber<T> = {
      kept: new Queue(),
      droppable: new Queue(),
      nextSeq: 0,
      dropped: 0,
      unreported: 0,
      waiting: undefined,
      done: this.#closed,
    };
    if (!subscriber.done) this.#subscribers.add(subscriber);
    const finish = (): IteratorResult<T> => {
      this.#subscribers.delete(subscriber);
      subscriber.done = true;
      subscriber.kept = new Queue();
      subscriber.droppable = new Queue();
      return { done: true, value: undefined };
    };
    const iterator: EventIterator<T> = {
      get droppedEvents() {
        return subscriber.dropped;
      },
      next: () => {
        const event = this.#take(subscriber);
        if (event) return Promise.resolve({ done: false, value: event.value });
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
      // A waiting reader has nothing buffered, so nothing dropped is left to report either.
      subscriber.waiting = undefined;
      waiting({ done: false, value: event });
      return;
    }
    const entry: Entry<T> = { seq: subscriber.nextSeq, event };
    subscriber.nextSeq += 1;
    (this.#policy.droppable(event) ? subscriber.droppable : subscriber.kept).push(entry);
    if (subscriber.kept.size + subscriber.droppable.size <= this.#bufferLimit) return;
    (subscriber.droppable.size > 0 ? subscriber.droppable : subscriber.kept).shift();
    subscriber.dropped += 1;
    subscriber.unreported += 1;
    if (!this.#droppedWarned) {
      this.#droppedWarned = true;
      warn(
        `an iterator over ${this.#name} fell ${this.#bufferLimit} events behind; it is dropping events, sub-call events first, and counting them (read faster, or raise bufferLimit)`,
      );
    }
  }

  /** The next event to yield: the marker after drops, else the earlier of the two queues' heads. */
  #take(subscriber: Subscriber<T>): { value: T } | undefined {
    const { kept, droppable } = subscriber;
    if (kept.size + droppable.size === 0) return undefined;
    if (subscriber.unreported > 0) {
      const count = subscriber.unreported;
      subscriber.unreported = 0;
      const marker = this.#origin ? this.#policy.marker?.(count, this.#origin.event) : undefined;
      if (marker !== undefined) return { value: marker };
    }
    const fromKept = kept.peek();
    const fromDroppable = droppable.peek();
    const queue = fromKept && (!fromDroppable || fromKept.seq < fromDroppable.seq) ? kept : droppable;
    const entry = queue.shift();
    return entry && { value: entry.event };
  }

  #reportListenerError(listener: EventListener<T>, error: unknown): void {
    if (this.#reportedListeners.has(listener)) return;
    this.#reportedListeners.add(listener);
    warn(`a listener of ${this.#name} threw and was skipped (further errors from it are not reported): ${errorMessage(error)}`);
  }
}
