import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setLogSink } from '../logging.js';
import { executeResult } from '../testing/execute-result.js';
import { EventStream, RUN_EVENT_DROP_POLICY } from './event-stream.js';
import type { RunEvent, RunEventInput } from './run-events.js';

let logged: string[] = [];
let restore: ReturnType<typeof setLogSink>;
beforeEach(() => {
  logged = [];
  restore = setLogSink((line) => logged.push(line));
});
afterEach(() => {
  setLogSink(restore);
});

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const events: T[] = [];
  for await (const event of iterable) events.push(event);
  return events;
}

describe('EventStream listeners', () => {
  it('receive every event synchronously, in subscription order, until unsubscribed', () => {
    const stream = new EventStream<number>();
    const seen: string[] = [];
    const offA = stream.on((n) => {
      seen.push(`a${n}`);
    });
    stream.on((n) => {
      seen.push(`b${n}`);
    });
    stream.emit(1);
    offA();
    stream.emit(2);
    expect(seen).toEqual(['a1', 'b1', 'b2']);
  });

  it('that throw do not break the emitter or other listeners, and are reported once', async () => {
    const stream = new EventStream<number>();
    const seen: number[] = [];
    stream.on(() => {
      throw new Error('listener bug');
    });
    stream.on(async () => {
      throw new Error('async listener bug');
    });
    stream.on((n) => {
      seen.push(n);
    });
    expect(() => {
      stream.emit(1);
      stream.emit(2);
    }).not.toThrow();
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([1, 2]);
    expect(logged).toHaveLength(2);
    expect(logged[0]).toMatch(/^rlm: warning: a listener of run events threw .*: listener bug$/);
    expect(logged[1]).toContain('async listener bug');
  });
});

describe('EventStream iterators', () => {
  it('yield every event emitted after iteration starts and finish on close', async () => {
    const stream = new EventStream<number>();
    stream.emit(0);
    const iterated = collect(stream);
    stream.emit(1);
    stream.emit(2);
    await Promise.resolve();
    stream.emit(3);
    stream.close();
    stream.emit(4);
    expect(await iterated).toEqual([1, 2, 3]);
  });

  it('each get every event, independently of each other and of listeners', async () => {
    const stream = new EventStream<string>();
    const first = collect(stream);
    const second = collect(stream);
    const heard: string[] = [];
    stream.on((e) => {
      heard.push(e);
    });
    for (const e of ['a', 'b', 'c']) stream.emit(e);
    stream.close();
    expect(await first).toEqual(['a', 'b', 'c']);
    expect(await second).toEqual(['a', 'b', 'c']);
    expect(heard).toEqual(['a', 'b', 'c']);
  });

  it('unsubscribe when the loop breaks early, and a waiting next() ends on close', async () => {
    const stream = new EventStream<number>();
    const got: number[] = [];
    const loop = (async () => {
      for await (const n of stream) {
        got.push(n);
        if (n === 2) break;
      }
    })();
    stream.emit(1);
    stream.emit(2);
    stream.emit(3);
    await loop;
    expect(got).toEqual([1, 2]);

    const iterator = stream[Symbol.asyncIterator]();
    const pending = iterator.next();
    stream.close();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await stream[Symbol.asyncIterator]().next()).toEqual({ done: true, value: undefined });
  });

  it('hold at most bufferLimit events for a slow reader, dropping the oldest and counting them', async () => {
    const stream = new EventStream<number>({ bufferLimit: 3 });
    const iterator = stream[Symbol.asyncIterator]();
    for (let n = 1; n <= 10; n += 1) stream.emit(n);
    stream.close();
    const got: number[] = [];
    for (let r = await iterator.next(); !r.done; r = await iterator.next()) got.push(r.value);
    expect(got).toEqual([8, 9, 10]);
    expect(iterator.droppedEvents).toBe(7);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('fell 3 events behind');
  });

  it('deliver a long stream in order without loss when the reader keeps up', async () => {
    const stream = new EventStream<number>({ bufferLimit: 5_000 });
    const iterated = collect(stream);
    for (let n = 0; n < 4_000; n += 1) stream.emit(n);
    stream.close();
    const events = await iterated;
    expect(events).toHaveLength(4_000);
    expect(events.every((n, i) => n === i)).toBe(true);
  });
});

const ROOT = { runId: 'root', depth: 0, time: 1 } as const;
const CHILD = { runId: 'child', parentRunId: 'root', depth: 1, time: 1 } as const;
const at = (base: typeof ROOT | typeof CHILD, event: RunEventInput): RunEvent => ({ ...base, ...event }) as RunEvent;
const subcalls = (base: typeof ROOT | typeof CHILD, n: number, from = 0): RunEvent[] =>
  Array.from({ length: n }, (_, i) => [
    at(base, { type: 'subcall_start', callId: `c${from + i}`, kind: 'llm_query', model: 'm', promptChars: 10 }),
    at(base, { type: 'subcall_end', callId: `c${from + i}`, kind: 'llm_query', model: 'm', ok: true, durationMs: 1 }),
  ]).flat();
const cellResult = executeResult();

/** What a reader sees: each event's type, and the count of an events_dropped marker. */
function shown(events: RunEvent[]): string[] {
  return events.map((e) => (e.type === 'events_dropped' ? `dropped ${e.count}` : e.type));
}

async function take<T>(iterator: AsyncIterator<T>): Promise<T> {
  const result = await iterator.next();
  if (result.done) throw new Error('the iterator ended');
  return result.value;
}

async function drain<T>(iterator: AsyncIterator<T>): Promise<T[]> {
  const got: T[] = [];
  for (let r = await iterator.next(); !r.done; r = await iterator.next()) got.push(r.value);
  return got;
}

describe('EventStream iterators that fall behind on run events', () => {
  it('drop sub-call events first, keep every lifecycle event, and say how many they dropped before the next event', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 8 });
    const iterator = stream[Symbol.asyncIterator]();
    const lifecycle: RunEvent[] = [
      at(ROOT, { type: 'run_start', query: 'q', rootModel: 'm', contextDescription: 'd' }),
      at(ROOT, { type: 'turn_start', turn: 1 }),
      at(ROOT, { type: 'model_response', turn: 1, model: 'm', text: 't', inputTokens: 1, outputTokens: 1, costUsd: null, durationMs: 1 }),
      at(ROOT, { type: 'cell_start', turn: 1, block: 0, code: 'llm_query_batched(...)' }),
    ];
    for (const event of lifecycle) stream.emit(event);
    for (const event of subcalls(ROOT, 1_000)) stream.emit(event);
    stream.emit(at(ROOT, { type: 'warning', code: 'sandbox_cap', message: 'w' }));
    stream.emit(at(ROOT, { type: 'cell_end', turn: 1, block: 0, result: cellResult }));
    stream.emit(at(ROOT, { type: 'final', answer: 'a', via: 'FINAL' }));
    stream.emit(at(ROOT, { type: 'run_end', success: true, error: null, iterations: 1, usage: {}, costUsd: null, durationMs: 1 }));
    stream.close();

    const got = await drain(iterator);
    // 2,000 sub-call events and 8 lifecycle ones into 8 slots: every sub-call event goes.
    expect(shown(got)).toEqual(['dropped 2000', 'run_start', 'turn_start', 'model_response', 'cell_start', 'warning', 'cell_end', 'final', 'run_end']);
    expect(iterator.droppedEvents).toBe(2000);
    expect(got[0]).toMatchObject({ type: 'events_dropped', count: 2000, runId: 'root', depth: 0 });
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('fell 8 events behind');
  });

  it('keep the newest sub-call events that fit, in order, when no lifecycle event needs the room', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 5 });
    const iterator = stream[Symbol.asyncIterator]();
    stream.emit(at(ROOT, { type: 'cell_start', turn: 1, block: 0, code: 'x' }));
    for (const event of subcalls(ROOT, 10)) stream.emit(event);
    stream.close();
    const got = await drain(iterator);
    expect(shown(got)).toEqual(['dropped 16', 'cell_start', 'subcall_start', 'subcall_end', 'subcall_start', 'subcall_end']);
    expect(got.slice(2).map((e) => (e.type === 'subcall_start' || e.type === 'subcall_end' ? `${e.type}:${e.callId}` : e.type))).toEqual([
      'subcall_start:c8',
      'subcall_end:c8',
      'subcall_start:c9',
      'subcall_end:c9',
    ]);
  });

  it('drop the oldest lifecycle events only when nothing droppable is buffered', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 2 });
    const iterator = stream[Symbol.asyncIterator]();
    for (let turn = 1; turn <= 5; turn += 1) stream.emit(at(ROOT, { type: 'turn_start', turn }));
    stream.close();
    const got = await drain(iterator);
    expect(shown(got)).toEqual(['dropped 3', 'turn_start', 'turn_start']);
    expect(got.slice(1)).toMatchObject([{ turn: 4 }, { turn: 5 }]);
  });

  it('drop an arriving sub-call event rather than a buffered lifecycle event', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 1 });
    const iterator = stream[Symbol.asyncIterator]();
    stream.emit(at(ROOT, { type: 'turn_start', turn: 1 }));
    for (const event of subcalls(ROOT, 3)) stream.emit(event);
    stream.close();
    expect(shown(await drain(iterator))).toEqual(['dropped 6', 'turn_start']);
  });

  it('report each run of drops once, right before the next event, and keep the total in droppedEvents', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 3 });
    const iterator = stream[Symbol.asyncIterator]();
    stream.emit(at(ROOT, { type: 'turn_start', turn: 1 }));
    for (const event of subcalls(ROOT, 2)) stream.emit(event);
    stream.emit(at(ROOT, { type: 'cell_start', turn: 1, block: 0, code: 'x' }));
    // Buffered: turn_start, subcall_end c1, cell_start; the other three sub-call events dropped.
    const first = [await take(iterator), await take(iterator)];
    expect(shown(first)).toEqual(['dropped 3', 'turn_start']);
    expect(iterator.droppedEvents).toBe(3);
    // Reading made room: nothing is dropped while the buffer has space, so no marker comes.
    stream.emit(at(ROOT, { type: 'cell_end', turn: 1, block: 0, result: cellResult }));
    expect(shown([await take(iterator)])).toEqual(['subcall_end']);
    for (const event of subcalls(CHILD, 4)) stream.emit(event);
    stream.emit(at(ROOT, { type: 'final', answer: 'a', via: 'FINAL' }));
    stream.close();
    const rest = await drain(iterator);
    expect(shown(rest)).toEqual(['dropped 8', 'cell_start', 'cell_end', 'final']);
    // The marker is the root run's, though what it dropped was a child's.
    expect(rest[0]).toMatchObject({ runId: 'root', depth: 0 });
    expect(rest[0]).not.toHaveProperty('parentRunId');
    expect(iterator.droppedEvents).toBe(11);
  });

  it('hold at most bufferLimit events whatever the flood, so a late reader gets at most bufferLimit + 1', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 100 });
    const iterator = stream[Symbol.asyncIterator]();
    stream.emit(at(ROOT, { type: 'run_start', query: 'q', rootModel: 'm', contextDescription: 'd' }));
    for (let batch = 0; batch < 50; batch += 1) {
      stream.emit(at(ROOT, { type: 'cell_start', turn: batch, block: 0, code: 'x' }));
      for (const event of subcalls(batch % 2 ? CHILD : ROOT, 1_000, batch * 1_000)) stream.emit(event);
      stream.emit(at(ROOT, { type: 'cell_end', turn: batch, block: 0, result: cellResult }));
    }
    stream.close();
    const got = await drain(iterator);
    expect(got.length).toBe(101);
    expect(shown(got.slice(0, 2))).toEqual([`dropped ${1 + 50 * 2 + 50 * 2_000 - 100}`, 'cell_start']);
    expect(got.slice(1).every((e) => e.type === 'cell_start' || e.type === 'cell_end')).toBe(true);
    expect(iterator.droppedEvents + 100).toBe(1 + 50 * 2 + 50 * 2_000);
  });

  it('lose nothing and yield no marker while the reader keeps up', async () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 2 });
    const iterator = stream[Symbol.asyncIterator]();
    const got: RunEvent[] = [];
    for (const event of subcalls(ROOT, 50)) {
      // The reader is waiting in next() when each event comes.
      const next = iterator.next();
      stream.emit(event);
      const result = await next;
      if (!result.done) got.push(result.value);
    }
    stream.close();
    expect(await iterator.next()).toEqual({ done: true, value: undefined });
    expect(got).toHaveLength(100);
    expect(iterator.droppedEvents).toBe(0);
    expect(got.some((e) => e.type === 'events_dropped')).toBe(false);
  });

  it('never pass the marker to listeners', () => {
    const stream = new EventStream<RunEvent>({ bufferLimit: 1 });
    const heard: string[] = [];
    stream.on((event) => {
      heard.push(event.type);
    });
    stream[Symbol.asyncIterator]();
    for (const event of subcalls(ROOT, 3)) stream.emit(event);
    expect(heard).toHaveLength(6);
    expect(heard).not.toContain('events_dropped');
  });
});

describe('EventStream drop policies', () => {
  it('follow the policy given: what goes first and the marker it makes', async () => {
    const stream = new EventStream<number>({ bufferLimit: 3, dropPolicy: { droppable: (n) => n % 2 === 1, marker: (count) => -count } });
    const iterator = stream[Symbol.asyncIterator]();
    for (let n = 1; n <= 8; n += 1) stream.emit(n);
    stream.close();
    // Odd numbers go first: 1, 3 and 5 make room for 4, 5 and 6; 7 arrives as the only odd one
    // and goes itself; for 8 nothing odd is left, so the oldest, 2, goes.
    expect(await drain(iterator)).toEqual([-5, 4, 6, 8]);
  });

  it('for run events is the one RUN_EVENT_DROP_POLICY describes', () => {
    expect(RUN_EVENT_DROP_POLICY.droppable(at(ROOT, { type: 'subcall_end', callId: 'c', kind: 'rlm_query', model: 'm', ok: false, durationMs: 1 }))).toBe(true);
    for (const event of [
      at(ROOT, { type: 'run_start', query: 'q', rootModel: 'm', contextDescription: 'd' }),
      at(ROOT, { type: 'cell_end', turn: 1, block: 0, result: cellResult }),
      at(ROOT, { type: 'warning', code: 'trajectory_write', message: 'w' }),
      at(ROOT, { type: 'final', answer: 'a', via: 'text' }),
    ]) {
      expect(RUN_EVENT_DROP_POLICY.droppable(event)).toBe(false);
    }
    expect(RUN_EVENT_DROP_POLICY.marker?.(3, at(CHILD, { type: 'turn_start', turn: 1 }))).toMatchObject({
      type: 'events_dropped',
      count: 3,
      runId: 'child',
      parentRunId: 'root',
      depth: 1,
    });
  });
});
