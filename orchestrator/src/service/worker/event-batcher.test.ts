import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../engine/run-events.js';
import type { ServiceStore } from '../service-types.js';
import { openServiceStore } from '../store/service-store.js';
import { capStrings, EVENT_STRING_LIMIT_CHARS, EventBatcher, eventToStore } from './event-batcher.js';

describe('events as the store takes them', () => {
  it('keeps every field of the event but its type as data', () => {
    const event: RunEvent = { type: 'turn_start', turn: 3, runId: 'abc', depth: 1, parentRunId: 'root', time: 42 };
    expect(eventToStore(event)).toEqual({ type: 'turn_start', data: { turn: 3, runId: 'abc', depth: 1, parentRunId: 'root', time: 42 } });
  });

  it('clips a string longer than 64 KiB anywhere in the event, keeping both ends and saying how much was left out', () => {
    const huge = `BEGIN${'x'.repeat(1_000_000)}END`;
    const event: RunEvent = {
      type: 'cell_end',
      turn: 1,
      block: 1,
      runId: 'r',
      depth: 0,
      time: 1,
      result: {
        status: 'ok',
        stdout: { text: huge, truncated: false, totalChars: huge.length },
        stderr: { text: 'short', truncated: false, totalChars: 5 },
        error: null,
        durationMs: 3,
      } as unknown as Extract<RunEvent, { type: 'cell_end' }>['result'],
    };
    const stored = eventToStore(event);
    const stdout = (stored.data.result as { stdout: { text: string } }).stdout.text;
    expect(stdout.length).toBeLessThan(EVENT_STRING_LIMIT_CHARS + 200);
    expect(stdout.startsWith('BEGIN')).toBe(true);
    expect(stdout.endsWith('END')).toBe(true);
    expect(stdout).toMatch(/characters not recorded; 1,000,008 in all/);
    expect((stored.data.result as { stderr: { text: string } }).stderr.text).toBe('short');
    // The engine's event itself is left as it was.
    expect((event.result as unknown as { stdout: { text: string } }).stdout.text).toBe(huge);
  });

  it('returns a value without long strings as it is, and clips strings in arrays', () => {
    const plain = { a: [1, 'two', { three: null }], b: true };
    expect(capStrings(plain, 10)).toBe(plain);
    const capped = capStrings({ list: ['short', 'y'.repeat(100)] }, 40) as { list: string[] };
    expect(capped.list[0]).toBe('short');
    expect(capped.list[1]?.length).toBeLessThan(100);
    expect(capped.list[1]).toMatch(/not recorded; 100 in all/);
  });
});

/** A store in a temp directory with one queued run, and an `appendEvents` that counts its calls and fails the first `failures`. */
async function storeWithRun(failures = 0) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-batcher-test-'));
  const store = await openServiceStore({ dataDir: dir });
  const team = await store.createTeam({ name: 'alpha' });
  const run = await store.submitRun({ teamId: team.id, input: { query: 'q' }, model: null, language: 'javascript', limits: {}, source: 'runs' });
  const appends: number[] = [];
  let failing = failures;
  const counting: Pick<ServiceStore, 'appendEvents'> = {
    appendEvents: async (runId, events) => {
      appends.push(events.length);
      if (failing > 0) {
        failing -= 1;
        throw new Error('database is locked');
      }
      return store.appendEvents(runId, events);
    },
  };
  return {
    store,
    counting,
    runId: run.id,
    appends,
    [Symbol.asyncDispose]: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const turn = (n: number): RunEvent => ({ type: 'turn_start', turn: n, runId: 'r', depth: 0, time: n });

describe('the event batcher on the store', () => {
  it('stores a burst of events in order in a few appends of at most 100, announcing the last seq after each', async () => {
    await using fixture = await storeWithRun();
    const announced: number[] = [];
    const batcher = new EventBatcher({ store: fixture.counting, runId: fixture.runId, onStored: (seq) => announced.push(seq), onDropped: () => {} });
    for (let n = 1; n <= 250; n++) batcher.add(turn(n));
    await batcher.close();
    const events = await fixture.store.readEvents(fixture.runId, 1, 10_000);
    expect(events.map((event) => event.data.turn)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(Math.max(...fixture.appends)).toBeLessThanOrEqual(100);
    expect(fixture.appends.reduce((a, b) => a + b, 0)).toBe(250);
    expect(fixture.appends.length).toBeLessThanOrEqual(5);
    expect(announced.at(-1)).toBe(251); // after the `queued` event
    expect(announced).toEqual([...announced].sort((a, b) => a - b));
    // Closed: later events are not taken.
    batcher.add(turn(999));
    await batcher.flush();
    expect(await fixture.store.readEvents(fixture.runId, 251)).toEqual([]);
  });

  it('appends a few events after a short delay without being asked to flush', async () => {
    await using fixture = await storeWithRun();
    let last = 0;
    const batcher = new EventBatcher({ store: fixture.counting, runId: fixture.runId, onStored: (seq) => (last = seq), onDropped: () => {} });
    batcher.add(turn(1));
    batcher.add(turn(2));
    const deadline = Date.now() + 10_000;
    while (last < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(last).toBe(3);
    expect(fixture.appends).toEqual([2]);
    batcher.discard();
  });

  it('retries an append that failed, keeping the order; drops a batch only after every attempt failed', async () => {
    await using flaky = await storeWithRun(2);
    const dropped: number[] = [];
    const batcher = new EventBatcher({ store: flaky.counting, runId: flaky.runId, onStored: () => {}, onDropped: (_, count) => dropped.push(count) });
    for (let n = 1; n <= 3; n++) batcher.add(turn(n));
    await batcher.close();
    expect((await flaky.store.readEvents(flaky.runId, 1)).map((event) => event.data.turn)).toEqual([1, 2, 3]);
    expect(dropped).toEqual([]);

    await using broken = await storeWithRun(100);
    const lost: number[] = [];
    const failing = new EventBatcher({
      store: broken.counting,
      runId: broken.runId,
      onStored: () => {},
      onDropped: (_, count) => lost.push(count),
      attempts: 3,
    });
    failing.add(turn(1));
    await failing.close();
    expect(lost).toEqual([1]);
    expect(broken.appends).toEqual([1, 1, 1]);
  });

  it('stores nothing of what is pending once discarded', async () => {
    await using fixture = await storeWithRun();
    const batcher = new EventBatcher({ store: fixture.counting, runId: fixture.runId, onStored: () => {}, onDropped: () => {} });
    batcher.add(turn(1));
    batcher.discard();
    await batcher.flush();
    expect(fixture.appends).toEqual([]);
  });
});
