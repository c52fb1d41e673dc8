/**
 * The bookkeeping of a sandbox pool, apart from what it pools: warm resources per key (language),
 * a bound on everything alive at once, the queue of those waiting for room, health at hand-out,
 * refilling, and closing. {@link SandboxPool} runs it over real sandboxes; the tests run it over
 * fakes. See `sandbox-pool.ts` for the rules as users meet them.
 *
 * What counts against `maxSize`: warm resources, refills being started, every admitted ticket (from
 * admission until the resource it held is closed), and warm resources being evicted. A slot is given
 * back only once the resource's `close()` resolved, so the bound holds for what really exists.
 *
 * Order of service: a resource that is already warm goes to the first waiter of its key at once.
 * Room goes to waiters by depth, deepest first, and in arrival order among equals — so plain
 * acquires (depth 0) are served first come, first served, and a child RLM of a run that already
 * holds a sandbox goes ahead of runs that hold none: finishing a started tree frees sandboxes
 * soonest. When waiters remain and nothing is on its way to them, warm resources of other keys are
 * evicted (and their refills cancelled) to make room: warm ones are the first to go.
 *
 * Deadlock: a ticket whose run waits for a child RLM is marked ({@link PoolTicket.childPending}).
 * When every slot is held by such tickets, nothing is warm, starting or closing, and a child
 * (depth ≥ 1) waits, no slot can ever free: the deepest, newest child waiter is refused with
 * {@link SandboxPoolExhaustedError} (`deadlock`), repeatedly until the deadlock is gone. Plain
 * acquires are never refused this way: a caller outside the engine releases what it holds.
 */
import { AbortedError, SandboxClosedError, SandboxPoolExhaustedError, errorMessage } from '../../errors.js';

/** What a pool holds: something that can be checked for life and destroyed. */
export interface PoolResource {
  /** Resolves when the resource answers; rejects when it does not (or when `signal` fires). */
  ping(signal: AbortSignal): Promise<void>;
  /** Destroys it. Never throws; safe to call twice. */
  close(): Promise<void>;
}

export interface PoolCoreOptions<K extends string, R extends PoolResource> {
  /** Most resources alive at once, warm, starting, in use and closing together; at least 1. */
  maxSize: number;
  /** How many warm resources to keep per key; their sum is at most `maxSize`. */
  warm: Readonly<Partial<Record<K, number>>>;
  /**
   * Starts a resource; rejects when `signal` fires, leaving nothing behind. `purpose` says whether
   * it is kept warm (so its start may include warming up its paths) or leased at once.
   */
  create: (key: K, signal: AbortSignal, purpose: 'warm' | 'lease') => Promise<R>;
  /** How long a warm resource may take to answer its ping at hand-out, in milliseconds. */
  healthCheckTimeoutMs: number;
  /** The error a lease throws when starting its resource failed (e.g. naming an engine that is gone); default: the start's own. */
  describeStartFailure?: (error: unknown) => Promise<unknown>;
  /** Told when a refill failed; the pool tries again after a back-off. */
  onRefillError?: (key: K, error: unknown) => void;
  /** First and longest wait before refilling again after a failed refill, in milliseconds; default 500 and 30 000. */
  refillBackoffMs?: { initial: number; max: number };
  /** Words for messages: what a resource is called (`sandbox`). */
  noun?: string;
}

/** A request for room in the pool. */
export interface ReserveOptions<K extends string> {
  key: K;
  /** 0 for a plain acquire or a root run; a child RLM's depth otherwise (deeper goes first). */
  depth?: number;
  signal?: AbortSignal;
  /** Longest wait for room, in milliseconds; unset: as long as `signal` allows. */
  timeoutMs?: number;
  /**
   * For a child: its parent's mark from {@link PoolTicket.childPending}. A refusal clears it at once,
   * so the deadlock check that refused this child sees its parent go on before refusing another.
   */
  parentMark?: () => void;
}

/** Figures of a pool at one moment, and totals since it was made. Times in milliseconds. */
export interface PoolCoreStats<K extends string> {
  /** Alive now: warm, starting, in use and closing, together; never above `maxSize`. */
  live: number;
  /** Warm and idle now, per key. */
  warm: Record<K, number>;
  /** Warm resources being started now. */
  refilling: number;
  /** Admitted and not yet given back. */
  inUse: number;
  /** Waiting for room now. */
  waiting: number;
  /** Admissions since the pool was made. */
  acquired: number;
  /** How many of them leased a warm resource (one that was ready and answered its ping). */
  acquiredWarm: number;
  /** Time admissions spent waiting for room, summed; its average is `waitedMsTotal / acquired`. */
  waitedMsTotal: number;
  /** The longest wait for room of one admission. */
  waitedMsMax: number;
  /** Warm resources destroyed to make room for another key. */
  evicted: number;
  /** Warm resources found dead or unresponsive at hand-out and replaced. */
  replacedUnhealthy: number;
  /** Acquires refused: their time ran out, or (a child) waiting could never end. */
  refused: { timeout: number; deadlock: number };
  /** Refills that failed (each retried after a back-off). */
  refillFailures: number;
}

interface Waiter<K extends string> {
  key: K;
  depth: number;
  sequence: number;
  requestedAt: number;
  parentMark: (() => void) | undefined;
  resolve: (ticket: PoolTicket<K, PoolResource>) => void;
  reject: (error: Error) => void;
  cleanup: () => void;
}

interface Refill<K extends string> {
  key: K;
  abort: AbortController;
  /** Cancelled to make room: the slot frees once the start has settled. */
  aborted: boolean;
}

/** What a ticket needs of its pool. */
interface TicketHost<K extends string, R extends PoolResource> {
  check(resource: R, signal: AbortSignal): Promise<void>;
  create(key: K, signal: AbortSignal): Promise<R>;
  describeStartFailure(error: unknown): Promise<unknown>;
  unhealthy(): void;
  /** A lease succeeded, with the warm resource handed or a fresh one. */
  leased(warm: boolean): void;
  /** The ticket's release began. */
  releasing(ticket: PoolTicket<K, R>): void;
  /** An unused warm resource comes back (its ticket was released before it was leased). */
  returnWarm(key: K, resource: R): void;
  /** The ticket's slot is free: its resource, if any, is closed. */
  freed(ticket: PoolTicket<K, R>): void;
  deadlockCheck(): void;
  noun: string;
}

/**
 * One admission to the pool: a slot it holds from admission until {@link release} has closed its
 * resource. {@link lease} yields the resource — the warm one it was handed, if it answers its ping,
 * else a fresh one.
 */
export class PoolTicket<K extends string, R extends PoolResource> {
  readonly key: K;
  readonly depth: number;
  /** Milliseconds spent waiting for room before admission (0 when there was room). */
  readonly waitedMs: number;
  /** `performance.now()` when the reservation was asked for. */
  readonly requestedAt: number;
  /** True once leased, when the resource leased was a warm one that answered its ping. */
  warm = false;
  readonly #host: TicketHost<K, R>;
  #handed: R | undefined;
  #resource: R | undefined;
  #leasing: Promise<R> | undefined;
  #released: Promise<void> | undefined;
  readonly #abort = new AbortController();
  /** Children of this ticket's run that are waiting for a sandbox or running. */
  #childrenPending = 0;

  /** @internal made by the pool only. */
  constructor(host: TicketHost<K, R>, init: { key: K; depth: number; waitedMs: number; requestedAt: number; handed: R | undefined }) {
    this.#host = host;
    this.key = init.key;
    this.depth = init.depth;
    this.waitedMs = init.waitedMs;
    this.requestedAt = init.requestedAt;
    this.#handed = init.handed;
  }

  /** True from {@link release} on. */
  get released(): boolean {
    return this.#released !== undefined;
  }

  /** True while the ticket's run waits for a child (see {@link childPending}). */
  get blocked(): boolean {
    return this.#childrenPending > 0;
  }

  /**
   * The resource: the warm one handed at admission when it answers its ping within the health
   * timeout (else it is destroyed and counted in `replacedUnhealthy`), otherwise a fresh one. Later
   * calls return the first call's promise.
   *
   * @throws {AbortedError} `signal` fired, or the ticket was released meanwhile.
   * @throws what starting a fresh one threw (see `describeStartFailure`).
   * Whatever it throws, the ticket is released.
   */
  lease(signal: AbortSignal = new AbortController().signal): Promise<R> {
    this.#leasing ??= this.#lease(signal).catch((error: unknown) => {
      // A lease that failed holds nothing: its slot frees once whatever it started is gone.
      if (!this.#released) void this.release();
      throw error;
    });
    return this.#leasing;
  }

  async #lease(callerSignal: AbortSignal): Promise<R> {
    if (this.#released) throw new SandboxClosedError(`this ${this.#host.noun} was already given back to the pool`, undefined);
    const signal = AbortSignal.any([callerSignal, this.#abort.signal]);
    const handed = this.#handed;
    this.#handed = undefined;
    if (handed) {
      try {
        await this.#host.check(handed, signal);
        this.#resource = handed;
        this.warm = true;
        this.#host.leased(true);
        return handed;
      } catch (error) {
        await handed.close();
        if (signal.aborted) throw this.#aborted(callerSignal, error);
        this.#host.unhealthy();
      }
    }
    let resource: R;
    try {
      resource = await this.#host.create(this.key, signal);
    } catch (error) {
      if (signal.aborted) throw this.#aborted(callerSignal, error);
      throw await this.#host.describeStartFailure(error);
    }
    if (this.#released) {
      await resource.close();
      throw new AbortedError(`the ${this.#host.noun} was given back to the pool while it started`);
    }
    this.#host.leased(false);
    this.#resource = resource;
    return resource;
  }

  #aborted(callerSignal: AbortSignal, cause: unknown): AbortedError {
    return callerSignal.aborted
      ? new AbortedError(`getting a ${this.#host.noun} from the pool was aborted`, { cause: callerSignal.reason ?? cause })
      : new AbortedError(`the ${this.#host.noun} was given back to the pool (or the pool closed) while it was being made ready`, { cause });
  }

  /**
   * Marks this ticket's run as waiting for a child RLM until the returned function is called (safe
   * to call twice): while every slot is held by such runs, the pool refuses child waiters rather
   * than wait forever.
   */
  childPending(): () => void {
    this.#childrenPending += 1;
    this.#host.deadlockCheck();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#childrenPending -= 1;
    };
  }

  /**
   * Gives the slot back: a resource that was leased (or is starting) is destroyed — never handed to
   * another ticket — and the slot frees once it is gone; a warm one handed but never leased goes
   * back to the pool unused. Never throws; safe to call twice (later calls return the first's promise).
   */
  release(): Promise<void> {
    this.#released ??= (async () => {
      this.#host.releasing(this);
      this.#abort.abort(new AbortedError(`the ${this.#host.noun} was given back to the pool`));
      const handed = this.#handed;
      this.#handed = undefined;
      if (handed && !this.#leasing) {
        this.#host.returnWarm(this.key, handed);
        this.#host.freed(this);
        return;
      }
      try {
        await this.#leasing?.catch(() => undefined);
        await this.#resource?.close();
      } finally {
        this.#resource = undefined;
        this.#host.freed(this);
      }
    })();
    return this.#released;
  }
}

const DEFAULT_BACKOFF = { initial: 500, max: 30_000 };

/** The longest timer Node keeps; longer waits would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class PoolCore<K extends string, R extends PoolResource> {
  readonly maxSize: number;
  readonly #options: PoolCoreOptions<K, R>;
  readonly #targets: ReadonlyArray<[K, number]>;
  readonly #noun: string;
  readonly #idle = new Map<K, R[]>();
  readonly #refills = new Set<Refill<K>>();
  /** Admitted and not yet freed (their resource not yet closed). */
  readonly #tickets = new Set<PoolTicket<K, R>>();
  /** Released tickets whose resource is being closed. */
  readonly #releasing = new Set<PoolTicket<K, R>>();
  /** Warm resources being destroyed (evicted, or surplus after close). */
  #closingCount = 0;
  readonly #waiters: Waiter<K>[] = [];
  /** Everything in flight that close() must see settle: starts and closes. */
  readonly #pending = new Set<Promise<unknown>>();
  readonly #warmWatchers = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  readonly #host: TicketHost<K, R>;
  #sequence = 0;
  #closed = false;
  #closing: Promise<void> | undefined;
  #backoffMs = 0;
  #refillBlockedUntil = 0;
  #refillTimer: NodeJS.Timeout | undefined;
  readonly #stats = {
    acquired: 0,
    acquiredWarm: 0,
    waitedMsTotal: 0,
    waitedMsMax: 0,
    evicted: 0,
    replacedUnhealthy: 0,
    refused: { timeout: 0, deadlock: 0 },
    refillFailures: 0,
  };

  constructor(options: PoolCoreOptions<K, R>) {
    this.#options = options;
    this.maxSize = options.maxSize;
    this.#noun = options.noun ?? 'sandbox';
    this.#targets = (Object.entries(options.warm) as Array<[K, number | undefined]>).flatMap(([key, n]) => (n && n > 0 ? [[key, n] as [K, number]] : []));
    const noun = this.#noun;
    this.#host = {
      noun,
      check: (resource, signal) => this.#check(resource, signal),
      create: (key, signal) => this.#track(options.create(key, signal, 'lease')),
      describeStartFailure: (error) => (options.describeStartFailure ? options.describeStartFailure(error) : Promise.resolve(error)),
      unhealthy: () => {
        this.#stats.replacedUnhealthy += 1;
      },
      leased: (warm) => {
        if (warm) {
          this.#stats.acquiredWarm += 1;
          return;
        }
        // A start that worked: the engine is there, so refills need not wait out a back-off.
        this.#backoffMs = 0;
        this.#refillBlockedUntil = 0;
      },
      releasing: (ticket) => {
        if (this.#tickets.has(ticket)) this.#releasing.add(ticket);
      },
      returnWarm: (key, resource) => {
        if (this.#closed) {
          this.#closeExtra(resource);
          return;
        }
        this.#idleOf(key).push(resource);
      },
      freed: (ticket) => {
        this.#tickets.delete(ticket);
        this.#releasing.delete(ticket);
        this.#dispatch();
      },
      deadlockCheck: () => this.#breakDeadlock(),
    };
    queueMicrotask(() => this.#dispatch());
  }

  /** Alive now: warm, starting, admitted and closing. */
  get live(): number {
    let idle = 0;
    for (const list of this.#idle.values()) idle += list.length;
    return idle + this.#refills.size + this.#tickets.size + this.#closingCount;
  }

  get closed(): boolean {
    return this.#closed;
  }

  stats(): PoolCoreStats<K> {
    const warm = {} as Record<K, number>;
    for (const [key] of this.#targets) warm[key] = 0;
    for (const [key, list] of this.#idle) warm[key] = list.length;
    return {
      live: this.live,
      warm,
      refilling: this.#refills.size,
      inUse: this.#tickets.size - this.#releasing.size,
      waiting: this.#waiters.length,
      ...this.#stats,
      refused: { ...this.#stats.refused },
    };
  }

  /**
   * Room for one resource of `key`: resolves with a ticket once admitted (see the module's doc for
   * the order). Nothing starts until the ticket is leased.
   *
   * @throws {AbortedError} `signal` fired first; the waiter left the queue.
   * @throws {SandboxPoolExhaustedError} `timeoutMs` passed (`timeout`), or — a child — waiting could never end (`deadlock`).
   * @throws {SandboxClosedError} the pool is closed, or closed while this waited.
   */
  reserve(options: ReserveOptions<K>): Promise<PoolTicket<K, R>> {
    const { key, signal } = options;
    if (this.#closed) return Promise.reject(this.#closedError());
    if (signal?.aborted) return Promise.reject(new AbortedError(`waiting for a ${this.#noun} of the pool was aborted`, { cause: signal.reason }));
    return new Promise<PoolTicket<K, R>>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const requestedAt = performance.now();
      const waiter: Waiter<K> = {
        key,
        depth: options.depth ?? 0,
        sequence: this.#sequence++,
        requestedAt,
        parentMark: options.parentMark,
        resolve: resolve as (ticket: PoolTicket<K, PoolResource>) => void,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
        },
      };
      const onAbort = () => {
        if (!this.#removeWaiter(waiter)) return;
        waiter.cleanup();
        reject(new AbortedError(`waiting for a ${this.#noun} of the pool was aborted`, { cause: signal?.reason }));
        this.#dispatch();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs)) {
        const timeoutMs = Math.max(0, options.timeoutMs);
        timer = setTimeout(() => this.#refuse(waiter, 'timeout', timeoutMs), Math.min(timeoutMs, MAX_TIMER_MS));
        timer.unref();
      }
      this.#waiters.push(waiter);
      this.#dispatch();
    });
  }

  /**
   * Resolves once every key has its warm count ready and idle.
   *
   * @throws the error of a refill that failed meanwhile, {@link SandboxClosedError} when the pool
   *   closes, {@link AbortedError} when `signal` fires.
   */
  whenWarm(signal?: AbortSignal): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#isWarm()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new AbortedError('waiting for the pool to warm up was aborted', { cause: signal.reason }));
    return new Promise<void>((resolve, reject) => {
      const watcher = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (error: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.#warmWatchers.delete(watcher);
        reject(new AbortedError('waiting for the pool to warm up was aborted', { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#warmWatchers.add(watcher);
    });
  }

  /**
   * Refuses every waiter, cancels refills and destroys every resource — warm, starting and in use
   * (an in-use ticket's lease fails or its resource is closed under it). Resolves once all are gone.
   * Never throws; safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearTimeout(this.#refillTimer);
      for (const waiter of this.#waiters.splice(0)) {
        waiter.cleanup();
        waiter.reject(this.#closedError());
      }
      for (const watcher of this.#warmWatchers) watcher.reject(this.#closedError());
      this.#warmWatchers.clear();
      for (const refill of this.#refills) {
        refill.aborted = true;
        refill.abort.abort(new AbortedError('the pool was closed'));
      }
      for (const list of this.#idle.values()) for (const resource of list.splice(0)) this.#closeExtra(resource);
      const releases = [...this.#tickets].map((ticket) => ticket.release());
      await Promise.all(releases);
      // Starts and closes still in flight (a refill settling after its abort closes what it made).
      while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
    })();
    return this.#closing;
  }

  #closedError(): SandboxClosedError {
    return new SandboxClosedError(`the ${this.#noun} pool is closed`, undefined);
  }

  #idleOf(key: K): R[] {
    let list = this.#idle.get(key);
    if (!list) {
      list = [];
      this.#idle.set(key, list);
    }
    return list;
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#pending.add(promise);
    const done = () => this.#pending.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** A ping bounded by the health timeout, whatever the resource does with its signal. */
  async #check(resource: R, signal: AbortSignal): Promise<void> {
    const timeoutMs = this.#options.healthCheckTimeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.aborted ? signal.reason : new Error(`no answer to its health check within ${timeoutMs} ms`));
      both.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([resource.ping(both), aborted]);
    } finally {
      if (onAbort) both.removeEventListener('abort', onAbort);
      aborted.catch(() => {});
    }
  }

  /** Destroys a resource nobody holds; its slot frees when it is gone. */
  #closeExtra(resource: R): void {
    this.#closingCount += 1;
    const closed = this.#track(resource.close()).finally(() => {
      this.#closingCount -= 1;
      this.#dispatch();
    });
    closed.catch(() => {});
  }

  /** Waiters, best first: deepest, then oldest. */
  #ordered(): Waiter<K>[] {
    return [...this.#waiters].sort((a, b) => b.depth - a.depth || a.sequence - b.sequence);
  }

  #removeWaiter(waiter: Waiter<K>): boolean {
    const index = this.#waiters.indexOf(waiter);
    if (index < 0) return false;
    this.#waiters.splice(index, 1);
    return true;
  }

  #dispatch(): void {
    if (this.#closed) return;
    // A warm resource goes to the best waiter of its key, at once.
    for (const waiter of this.#ordered()) {
      const idle = this.#idle.get(waiter.key);
      const resource = idle?.shift();
      if (resource) this.#admit(waiter, resource);
    }
    // Room goes to the best waiters.
    for (const waiter of this.#ordered()) {
      if (this.live >= this.maxSize) break;
      this.#admit(waiter, undefined);
    }
    if (this.#waiters.length > 0) this.#makeRoom();
    this.#breakDeadlock();
    if (this.#waiters.length === 0) this.#refill();
    this.#notifyWarm();
  }

  #admit(waiter: Waiter<K>, handed: R | undefined): void {
    this.#removeWaiter(waiter);
    waiter.cleanup();
    const waitedMs = performance.now() - waiter.requestedAt;
    const ticket = new PoolTicket<K, R>(this.#host, { key: waiter.key, depth: waiter.depth, waitedMs, requestedAt: waiter.requestedAt, handed });
    this.#tickets.add(ticket);
    this.#stats.acquired += 1;
    this.#stats.waitedMsTotal += waitedMs;
    this.#stats.waitedMsMax = Math.max(this.#stats.waitedMsMax, waitedMs);
    waiter.resolve(ticket as unknown as PoolTicket<K, PoolResource>);
  }

  /**
   * Waiters remain and the pool is full: counts what is already on its way to them (slots being
   * freed, refills of their key), and evicts warm resources of other keys — or cancels refills
   * nobody waits for — for the rest.
   */
  #makeRoom(): void {
    const waitingFor = new Map<K, number>();
    for (const waiter of this.#waiters) waitingFor.set(waiter.key, (waitingFor.get(waiter.key) ?? 0) + 1);
    let coming = this.#closingCount + this.#releasing.size;
    const spare: Refill<K>[] = [];
    for (const refill of this.#refills) {
      if (refill.aborted) {
        coming += 1;
        continue;
      }
      const want = waitingFor.get(refill.key) ?? 0;
      if (want > 0) {
        waitingFor.set(refill.key, want - 1);
        coming += 1;
      } else {
        spare.push(refill);
      }
    }
    let need = this.#waiters.length - coming;
    while (need > 0) {
      const victim = this.#evictionVictim();
      if (victim) {
        this.#stats.evicted += 1;
        this.#closeExtra(victim);
      } else {
        const refill = spare.shift();
        if (!refill) break;
        refill.aborted = true;
        refill.abort.abort(new AbortedError('the pool needed the room for a waiting acquire'));
      }
      need -= 1;
    }
  }

  /** A warm resource to evict: from the key with the most idle (its oldest). */
  #evictionVictim(): R | undefined {
    let best: R[] | undefined;
    for (const list of this.#idle.values()) if (list.length > 0 && (!best || list.length > best.length)) best = list;
    return best?.shift();
  }

  #breakDeadlock(): void {
    for (;;) {
      if (this.#closed || !this.#waiters.some((w) => w.depth > 0)) return;
      if (this.live < this.maxSize || this.#refills.size > 0 || this.#closingCount > 0 || this.#releasing.size > 0) return;
      for (const list of this.#idle.values()) if (list.length > 0) return;
      for (const ticket of this.#tickets) if (!ticket.blocked) return;
      // Deepest child first, the newest among equals: its run's subtree is the one that cannot finish.
      const victim = this.#waiters.filter((w) => w.depth > 0).sort((a, b) => b.depth - a.depth || b.sequence - a.sequence)[0];
      if (!victim) return;
      this.#refuse(victim, 'deadlock');
    }
  }

  #refuse(waiter: Waiter<K>, reason: 'timeout' | 'deadlock', timeoutMs?: number): void {
    if (!this.#removeWaiter(waiter)) return;
    waiter.cleanup();
    waiter.parentMark?.();
    const waitedMs = performance.now() - waiter.requestedAt;
    this.#stats.refused[reason] += 1;
    const message =
      reason === 'timeout'
        ? `no ${this.#noun} of the pool freed within ${timeoutMs} ms: all ${this.maxSize} (the pool's maxSandboxes) stayed in use; ` +
          `raise maxSandboxes, run fewer runs at once, or allow a longer wait`
        : `every ${this.#noun} of the pool (maxSandboxes ${this.maxSize}) was held by a run waiting for a child RLM of its own, ` +
          "so none could ever free; raise the pool's maxSandboxes to give more child RLMs a sandbox";
    waiter.reject(new SandboxPoolExhaustedError(message, reason, Math.round(waitedMs)));
    this.#dispatch();
  }

  /** Starts warm resources up to each key's count, while there is room and no one waits. */
  #refill(): void {
    if (this.#closed || this.#targets.length === 0) return;
    const now = performance.now();
    if (now < this.#refillBlockedUntil) {
      if (!this.#refillTimer) {
        this.#refillTimer = setTimeout(
          () => {
            this.#refillTimer = undefined;
            this.#dispatch();
          },
          Math.ceil(this.#refillBlockedUntil - now),
        );
        this.#refillTimer.unref();
      }
      return;
    }
    for (const [key, target] of this.#targets) {
      let have = this.#idle.get(key)?.length ?? 0;
      for (const refill of this.#refills) if (refill.key === key && !refill.aborted) have += 1;
      while (have < target && this.live < this.maxSize) {
        this.#startRefill(key);
        have += 1;
      }
    }
  }

  #startRefill(key: K): void {
    const refill: Refill<K> = { key, abort: new AbortController(), aborted: false };
    this.#refills.add(refill);
    const started = this.#options.create(key, refill.abort.signal, 'warm').then(
      (resource) => {
        this.#refills.delete(refill);
        if (this.#closed || refill.aborted) {
          this.#closeExtra(resource);
          return;
        }
        this.#backoffMs = 0;
        const waiter = this.#ordered().find((w) => w.key === key);
        if (waiter) this.#admit(waiter, resource);
        else this.#idleOf(key).push(resource);
        this.#dispatch();
      },
      (error: unknown) => {
        this.#refills.delete(refill);
        if (!this.#closed && !refill.aborted) {
          this.#stats.refillFailures += 1;
          const backoff = this.#options.refillBackoffMs ?? DEFAULT_BACKOFF;
          this.#backoffMs = this.#backoffMs === 0 ? backoff.initial : Math.min(backoff.max, this.#backoffMs * 2);
          this.#refillBlockedUntil = performance.now() + this.#backoffMs;
          this.#options.onRefillError?.(key, error);
          const failure = error instanceof Error ? error : new Error(errorMessage(error));
          for (const watcher of this.#warmWatchers) watcher.reject(failure);
          this.#warmWatchers.clear();
        }
        this.#dispatch();
      },
    );
    this.#track(started);
  }

  #isWarm(): boolean {
    return this.#targets.every(([key, target]) => (this.#idle.get(key)?.length ?? 0) >= target);
  }

  #notifyWarm(): void {
    if (this.#warmWatchers.size === 0 || !this.#isWarm()) return;
    for (const watcher of this.#warmWatchers) watcher.resolve();
    this.#warmWatchers.clear();
  }
}
