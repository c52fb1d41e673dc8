import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setLogSink } from '../logging.js';
import { EventStream } from './event-stream.js';

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
