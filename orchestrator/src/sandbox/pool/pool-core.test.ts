import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortedError, SandboxClosedError, SandboxPoolExhaustedError } from '../../errors.js';
import { PoolCore, type PoolCoreOptions, type PoolResource } from './pool-core.js';

type Key = 'a' | 'b';

class FakeResource implements PoolResource {
  closed = false;
  /** Its ping fails at once, as a killed container's does. */
  dead = false;
  /** Its ping never answers, as a hung container's does. */
  hung = false;
  constructor(
    readonly key: Key,
    readonly id: number,
    private readonly onClose: (resource: FakeResource) => Promise<void>,
  ) {}
  async ping(signal: AbortSignal): Promise<void> {
    if (this.closed || this.dead) throw new Error(`resource ${this.id} is dead`);
    if (this.hung) await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
  }
  async close(): Promise<void> {
    if (this.closed) return;
    await this.onClose(this);
    this.closed = true;
  }
}

/** A deferred promise. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Makes fake resources: at once by default; with `manualStarts`, each start waits for the test to
 * finish it; with `manualCloses`, each close too. `failWith` makes every start fail.
 */
function fakeFactory(options: { manualStarts?: boolean; manualCloses?: boolean } = {}) {
  const made: FakeResource[] = [];
  const starts: Array<{ key: Key; signal: AbortSignal; finish: () => void; fail: (error: unknown) => void }> = [];
  const closes: Array<{ resource: FakeResource; finish: () => void }> = [];
  let failWith: Error | undefined;
  let nextId = 1;
  const onClose = (resource: FakeResource) => {
    if (!options.manualCloses) return Promise.resolve();
    const done = deferred();
    closes.push({ resource, finish: () => done.resolve() });
    return done.promise;
  };
  const create = (key: Key, signal: AbortSignal): Promise<FakeResource> => {
    if (failWith) return Promise.reject(failWith);
    const make = () => {
      const resource = new FakeResource(key, nextId++, onClose);
      made.push(resource);
      return resource;
    };
    if (!options.manualStarts) return Promise.resolve(make());
    const done = deferred<FakeResource>();
    const start = { key, signal, finish: () => done.resolve(make()), fail: (error: unknown) => done.reject(error) };
    starts.push(start);
    signal.addEventListener('abort', () => done.reject(new AbortedError('start aborted', { cause: signal.reason })), { once: true });
    return done.promise;
  };
  return {
    create,
    made,
    starts,
    closes,
    /** Resources made and not closed: what would be containers. */
    alive: () => made.filter((r) => !r.closed).length,
    fail: (error: Error | undefined) => {
      failWith = error;
    },
  };
}

function pool(factory: ReturnType<typeof fakeFactory>, options: Partial<PoolCoreOptions<Key, FakeResource>> = {}) {
  return new PoolCore<Key, FakeResource>({
    maxSize: 2,
    warm: {},
    create: factory.create,
    healthCheckTimeoutMs: 1_000,
    refillBackoffMs: { initial: 1, max: 5 },
    ...options,
  });
}

/** Lets pending callbacks run. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether `promise` has settled once pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await flush();
  await flush();
  return done;
}

/** Polls `condition` (after pending callbacks) until it holds; fails after many rounds. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

describe('PoolCore', () => {
  it('keeps its warm resources ready, hands one out at once with a health ping, and refills in the background', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 4, warm: { a: 2 } });
    await core.whenWarm();
    expect(core.stats().warm).toEqual({ a: 2 });
    const ticket = await core.reserve({ key: 'a' });
    const resource = await ticket.lease();
    expect(ticket.warm).toBe(true);
    expect(ticket.waitedMs).toBeLessThan(1_000);
    expect(factory.made.slice(0, 2)).toContain(resource);
    await core.whenWarm();
    expect(core.stats()).toMatchObject({ warm: { a: 2 }, inUse: 1, live: 3, acquired: 1, acquiredWarm: 1 });
    await core.close();
  });

  it('never lets more than maxSize live: the acquire beyond waits, and gets the room only once a released resource is closed', async () => {
    const factory = fakeFactory({ manualCloses: true });
    const core = pool(factory, { maxSize: 2 });
    const first = await core.reserve({ key: 'a' });
    await first.lease();
    const second = await core.reserve({ key: 'b' });
    await second.lease();
    const third = core.reserve({ key: 'a' });
    expect(await settled(third)).toBe(false);
    expect(core.stats()).toMatchObject({ live: 2, waiting: 1 });
    const released = first.release();
    // The container is still being removed: its slot is not free yet.
    expect(await settled(third)).toBe(false);
    factory.closes[0]?.finish();
    await released;
    const ticket = await third;
    expect(ticket.waitedMs).toBeGreaterThan(0);
    await ticket.lease();
    expect(factory.alive()).toBe(2);
    expect(core.stats().waitedMsMax).toBeGreaterThan(0);
    for (const close of factory.closes) close.finish();
    const closing = core.close();
    await until(() => factory.closes.length === 3, 'every resource closing');
    for (const close of factory.closes) close.finish();
    await closing;
    expect(factory.alive()).toBe(0);
  });

  it('serves waiters first come, first served — and a child (deeper) before them', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 1 });
    const served: Array<{ label: string; release: () => Promise<void> }> = [];
    const queue = (label: string, key: Key, depth = 0) =>
      core.reserve({ key, depth }).then((ticket) => served.push({ label, release: () => ticket.release() }));
    const held = await core.reserve({ key: 'a' });
    void queue('first', 'a');
    void queue('second', 'b');
    void queue('child', 'a', 1);
    void queue('third', 'a');
    await flush();
    expect(core.stats().waiting).toBe(4);
    await held.release();
    for (let i = 1; i <= 4; i++) {
      await until(() => served.length === i, `waiter ${i} served`);
      await served[i - 1]?.release();
    }
    expect(served.map((s) => s.label)).toEqual(['child', 'first', 'second', 'third']);
    await core.close();
  });

  it('an aborted waiter leaves the queue at once, and the room goes to the next one', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 1 });
    const held = await core.reserve({ key: 'a' });
    const controller = new AbortController();
    const aborted = core.reserve({ key: 'a', signal: controller.signal });
    const next = core.reserve({ key: 'a' });
    await flush();
    expect(core.stats().waiting).toBe(2);
    controller.abort(new Error('the run was cancelled'));
    await expect(aborted).rejects.toBeInstanceOf(AbortedError);
    expect(core.stats().waiting).toBe(1);
    await held.release();
    const ticket = await next;
    expect(ticket.released).toBe(false);
    expect(core.stats()).toMatchObject({ waiting: 0, inUse: 1 });
    // An acquire whose signal already fired never queues.
    await expect(core.reserve({ key: 'a', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await core.close();
  });

  it('a lease aborted during its health check or its start gives the slot back', async () => {
    const factory = fakeFactory({ manualStarts: true });
    const core = pool(factory, { maxSize: 1, warm: { a: 1 } });
    await until(() => factory.starts.length === 1, 'the refill started');
    factory.starts[0]?.finish();
    await core.whenWarm();
    const hung = factory.made[0] as FakeResource;
    hung.hung = true;
    const controller = new AbortController();
    const leasing = (await core.reserve({ key: 'a' })).lease(controller.signal);
    await flush();
    controller.abort(new Error('the run was cancelled'));
    await expect(leasing).rejects.toBeInstanceOf(AbortedError);
    await until(() => core.stats().inUse === 0, 'the slot given back');
    expect(hung.closed).toBe(true);
    // And one aborted while its resource starts.
    await until(() => factory.starts.length === 2, 'the refill after the aborted lease');
    factory.starts[1]?.finish();
    await core.whenWarm();
    (factory.made[1] as FakeResource).dead = true;
    const second = new AbortController();
    const starting = (await core.reserve({ key: 'a' })).lease(second.signal);
    await until(() => factory.starts.length === 3, 'a fresh start for the lease');
    second.abort();
    await expect(starting).rejects.toBeInstanceOf(AbortedError);
    await until(() => core.stats().inUse === 0, 'the slot given back again');
    expect(factory.alive()).toBe(0);
    await core.close();
  });

  it('refuses a waiter whose timeoutMs passes with SandboxPoolExhaustedError (timeout), naming maxSandboxes', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 1 });
    await core.reserve({ key: 'a' });
    const error = await core.reserve({ key: 'a', timeoutMs: 5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxPoolExhaustedError);
    expect(error).toMatchObject({ reason: 'timeout', kind: 'pool_exhausted' });
    expect((error as Error).message).toMatch(/maxSandboxes/);
    expect(core.stats()).toMatchObject({ waiting: 0, refused: { timeout: 1, deadlock: 0 } });
    await core.close();
  });

  it('evicts a warm resource of another key for a waiter instead of waiting: warm ones go first', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 2, warm: { a: 1, b: 1 } });
    await core.whenWarm();
    const warmB = factory.made.find((r) => r.key === 'b');
    const first = await core.reserve({ key: 'a' });
    await first.lease();
    const second = await core.reserve({ key: 'a' });
    const resource = await second.lease();
    expect(second.warm).toBe(false);
    expect(resource.key).toBe('a');
    expect(warmB?.closed).toBe(true);
    expect(core.stats()).toMatchObject({ evicted: 1, live: 2 });
    expect(factory.alive()).toBe(2);
    await core.close();
  });

  it('cancels a refill nobody waits for when a waiter needs its room', async () => {
    const factory = fakeFactory({ manualStarts: true });
    const core = pool(factory, { maxSize: 1, warm: { b: 1 } });
    await until(() => factory.starts.length === 1, 'the refill started');
    const ticket = core.reserve({ key: 'a' });
    expect(factory.starts[0]?.signal.aborted).toBe(true);
    const admitted = await ticket;
    const leasing = admitted.lease();
    await until(() => factory.starts.length === 2, 'the start for the waiter');
    expect(factory.starts[1]?.key).toBe('a');
    factory.starts[1]?.finish();
    expect((await leasing).key).toBe('a');
    await core.close();
  });

  it('never hands out a warm resource that died while idle: it is closed and a fresh one is started for the same lease', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 2, warm: { a: 1 } });
    await core.whenWarm();
    const dead = factory.made[0] as FakeResource;
    dead.dead = true;
    const ticket = await core.reserve({ key: 'a' });
    const resource = await ticket.lease();
    expect(resource).not.toBe(dead);
    expect(dead.closed).toBe(true);
    expect(ticket.warm).toBe(false);
    expect(core.stats()).toMatchObject({ replacedUnhealthy: 1, acquiredWarm: 0 });
    await core.close();
  });

  it('replaces a warm resource that does not answer its ping within healthCheckTimeoutMs', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 2, warm: { a: 1 }, healthCheckTimeoutMs: 5 });
    await core.whenWarm();
    const hung = factory.made[0] as FakeResource;
    hung.hung = true;
    const resource = await (await core.reserve({ key: 'a' })).lease();
    expect(resource).not.toBe(hung);
    expect(hung.closed).toBe(true);
    expect(core.stats().replacedUnhealthy).toBe(1);
    await core.close();
  });

  it('refuses a waiting child when every slot is held by runs waiting for children, once per deadlock, and never a plain acquire', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 2 });
    const rootA = await core.reserve({ key: 'a' });
    const rootB = await core.reserve({ key: 'a' });
    const markA = rootA.childPending();
    const childOfA = core.reserve({ key: 'a', depth: 1, parentMark: markA });
    const plain = core.reserve({ key: 'a' });
    // rootB still works on its own and will release: the child waits.
    expect(await settled(childOfA)).toBe(false);
    // rootB starts waiting for a child of its own (as the engine marks it, before its child asks):
    // both holders wait for children, so the waiting child is refused. Its refusal lets rootA go on
    // (it answers that call another way), so the deadlock is gone and rootB's child may wait.
    const markB = rootB.childPending();
    const error = await childOfA.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxPoolExhaustedError);
    expect(error).toMatchObject({ reason: 'deadlock', kind: 'pool_exhausted' });
    expect((error as Error).message).toMatch(/waiting for a child RLM/);
    const childOfB = core.reserve({ key: 'a', depth: 1, parentMark: markB });
    expect(await settled(childOfB)).toBe(false);
    expect(core.stats().refused.deadlock).toBe(1);
    // rootA finishes and frees its slot: the child goes before the plain acquire that came earlier.
    await rootA.release();
    expect(await settled(childOfB)).toBe(true);
    expect(await settled(plain)).toBe(false);
    await core.close();
  });

  it('refuses a child even when the other waiters are plain acquires', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 1 });
    const root = await core.reserve({ key: 'a' });
    const plain = core.reserve({ key: 'a' });
    const mark = root.childPending();
    const child = core.reserve({ key: 'a', depth: 1, parentMark: mark });
    await expect(child).rejects.toMatchObject({ reason: 'deadlock' });
    expect(await settled(plain)).toBe(false);
    await root.release();
    expect(await settled(plain)).toBe(true);
    await core.close();
  });

  it('a ticket released before its lease gives its warm resource back unused', async () => {
    const factory = fakeFactory();
    const core = pool(factory, { maxSize: 1, warm: { a: 1 } });
    await core.whenWarm();
    const ticket = await core.reserve({ key: 'a' });
    expect(core.stats().warm).toEqual({ a: 0 });
    await ticket.release();
    expect(core.stats()).toMatchObject({ warm: { a: 1 }, live: 1 });
    expect(factory.made[0]?.closed).toBe(false);
    await expect(ticket.lease()).rejects.toBeInstanceOf(SandboxClosedError);
    await core.close();
  });

  it('a failed start frees its slot and throws what describeStartFailure makes of it; refills back off and the pool recovers once starts work again', async () => {
    const factory = fakeFactory();
    const refillErrors: unknown[] = [];
    const core = pool(factory, {
      maxSize: 2,
      warm: { a: 1 },
      describeStartFailure: async (error) => new SandboxClosedError(`engine gone: ${(error as Error).message}`, undefined),
      onRefillError: (_key, error) => refillErrors.push(error),
    });
    factory.fail(new Error('connect ENOENT /var/run/docker.sock'));
    await expect(core.whenWarm()).rejects.toThrow(/ENOENT/);
    const ticket = await core.reserve({ key: 'a' });
    await expect(ticket.lease()).rejects.toThrow(/engine gone: connect ENOENT/);
    await until(() => core.stats().inUse === 0, 'the failed ticket freed its slot');
    expect(ticket.released).toBe(true);
    await until(() => refillErrors.length >= 2, 'refills retried after a back-off');
    factory.fail(undefined);
    const again = await (await core.reserve({ key: 'a' })).lease();
    expect(again.key).toBe('a');
    await core.whenWarm();
    expect(core.stats().warm).toEqual({ a: 1 });
    await core.close();
  });

  it('close() refuses waiters and watchers, closes every resource — warm, starting and leased — and is idempotent', async () => {
    const factory = fakeFactory({ manualStarts: true });
    const core = pool(factory, { maxSize: 3, warm: { a: 1 } });
    await until(() => factory.starts.length === 1, 'the refill started');
    factory.starts[0]?.finish();
    await core.whenWarm();
    const leased = await core.reserve({ key: 'a' });
    const leasing = leased.lease();
    const starting = await core.reserve({ key: 'b' });
    const startingLease = starting.lease();
    await until(() => factory.starts.length >= 3, 'a start for the second ticket and a refill');
    const filler = await core.reserve({ key: 'b' });
    const waiting = core.reserve({ key: 'a' });
    await flush();
    const first = core.close();
    const second = core.close();
    expect(second).toBe(first);
    await first;
    await expect(waiting).rejects.toBeInstanceOf(SandboxClosedError);
    await expect(startingLease).rejects.toBeInstanceOf(AbortedError);
    expect((await leasing).closed).toBe(true);
    expect(filler.released).toBe(true);
    expect(factory.alive()).toBe(0);
    expect(core.stats().live).toBe(0);
    await expect(core.reserve({ key: 'a' })).rejects.toBeInstanceOf(SandboxClosedError);
    await expect(core.whenWarm()).rejects.toBeInstanceOf(SandboxClosedError);
  });

  it('holds the bound under any interleaving of acquires, aborts, releases and deaths', async () => {
    type Op = { kind: 'reserve'; key: Key; depth: number } | { kind: 'abort' } | { kind: 'release' } | { kind: 'kill' };
    const op = fc.oneof(
      fc.record({ kind: fc.constant('reserve' as const), key: fc.constantFrom<Key>('a', 'b'), depth: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('abort' as const) }),
      fc.record({ kind: fc.constant('release' as const) }),
      fc.record({ kind: fc.constant('kill' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 3 }), async (ops: Op[], maxSize) => {
        const factory = fakeFactory();
        const core = pool(factory, { maxSize, warm: { a: Math.min(1, maxSize), b: maxSize > 1 ? 1 : 0 } });
        const waiting: Array<{ controller: AbortController; promise: Promise<unknown> }> = [];
        const held: Array<{ release: () => Promise<void> }> = [];
        let peak = 0;
        const check = () => {
          peak = Math.max(peak, factory.alive());
          expect(core.live).toBeLessThanOrEqual(maxSize);
        };
        for (const next of ops) {
          if (next.kind === 'reserve') {
            const controller = new AbortController();
            const promise = core.reserve({ key: next.key, depth: next.depth, signal: controller.signal }).then(
              async (ticket) => {
                held.push(ticket);
                await ticket.lease().catch(() => undefined);
                check();
              },
              () => undefined,
            );
            waiting.push({ controller, promise });
          } else if (next.kind === 'abort') {
            waiting.shift()?.controller.abort();
          } else if (next.kind === 'release') {
            await held.shift()?.release();
          } else {
            const idle = factory.made.find((r) => !r.closed);
            if (idle) idle.dead = true;
          }
          await flush();
          check();
        }
        await core.close();
        expect(peak).toBeLessThanOrEqual(maxSize);
        expect(factory.alive()).toBe(0);
      }),
      { numRuns: 60 },
    );
  });
});
