/**
 * A warm sandbox pool with admission control for one process: {@link createSandboxPool}.
 *
 * Rules, and why:
 * - **One run, one sandbox, then it is gone.** A sandbox handed out by {@link SandboxPool.acquire}
 *   is destroyed when it is released — container removed, state directory deleted — and is never
 *   handed to anyone else, so nothing of one run (variables, module state, files in its scratch
 *   space, a process it left behind) can be seen by the next. Reuse would need a reset we could
 *   not prove complete against hostile code; a fresh container is the proof. The pool refills in the
 *   background instead.
 * - **Warm** means started and ready, and never used: the REPL server said hello, which it does only
 *   once its cell process is up (for Python, once Pyodide is loaded), and no cell has run. The context
 *   is loaded after acquire, by whoever acquired it.
 * - **One bound for the process.** `maxSandboxes` counts every live sandbox of the pool: warm ones,
 *   ones starting, ones in use by runs and by their child RLMs, and ones being removed (a slot frees
 *   only once its container is gone). An acquire beyond it waits. Warm sandboxes are the first to
 *   go when runs need room: a waiter for JavaScript evicts a warm Python sandbox rather than wait.
 * - **Order.** Waiters are served first come, first served, with one exception for the engine: a
 *   child RLM (depth ≥ 1) of a run that already holds a sandbox goes ahead of new runs, deepest
 *   first, since finishing a started tree is what frees sandboxes soonest.
 * - **A tree never deadlocks against itself (nor against other trees).** Runs on a pool take a
 *   sandbox from the tree's own cap (`RlmLimits.maxSandboxes`) first, then from the pool. A run
 *   that waits for a child is marked as such; when every sandbox of the pool is held by such runs
 *   and nothing is warm, starting or being removed, no sandbox can ever free, so the deepest, newest
 *   waiting child is refused and its `rlm_query` is answered as a plain `llm_query` with a note in
 *   the trajectory and a `sandbox_cap` warning — the tree's own rule (`sandbox-slots.ts`), applied
 *   process-wide. A child also waits at most half the time its run has left (with a wall-clock
 *   limit), then degrades the same way; a root run waits as long as its signal and deadline allow.
 * - **Waiting is measured.** Each lease says how long it waited for room (`waitedMs`); {@link
 *   SandboxPool.stats} keeps the totals for metrics; a run on a pool emits a `sandbox_acquired`
 *   event with its wait.
 * - **Health at acquire.** A warm sandbox is pinged (a round trip through its REPL server and cell
 *   process) before it is handed out; one that died or stopped answering while idle is destroyed and
 *   replaced by a fresh start for the same acquire — never handed out.
 * - **Docker engine gone.** A start that fails while the engine does not answer a ping throws
 *   {@link DockerUnavailableError}; refills back off (0.5 s doubling to 30 s) and any successful start
 *   ends the back-off, so the pool recovers by itself once the engine is back.
 * - **Closing** refuses waiters, cancels starts and removes every container the pool started, in
 *   use or not; idempotent. Every container carries the reaper's owner labels, so a killed host
 *   process leaves nothing that `rlm sandbox prune` (or the next process's reaper) won't remove.
 */
import type { Language } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { AbortedError, DockerUnavailableError, InvalidOptionError, SandboxClosedError, type SandboxPoolExhaustedError } from '../../errors.js';
import { debug, warn } from '../../logging.js';
import { createDockerClient, pingDocker } from '../docker-client.js';
import { Sandbox, type SandboxOptions } from '../sandbox.js';
import { PoolCore, type PoolResource, type PoolTicket } from './pool-core.js';

/** Default {@link SandboxPoolOptions.maxSandboxes}. */
export const DEFAULT_POOL_MAX_SANDBOXES = 8;
/** Default {@link SandboxPoolOptions.healthCheckTimeoutMs}. */
export const DEFAULT_POOL_HEALTH_CHECK_TIMEOUT_MS = 5_000;

/**
 * Options of {@link createSandboxPool}: how many warm sandboxes to keep, the process-wide bound, and
 * the settings of every sandbox the pool starts (as for `Sandbox.create`; times in milliseconds).
 */
export interface SandboxPoolOptions extends Omit<SandboxOptions, 'language' | 'context' | 'onSubcall' | 'tools' | 'signal'> {
  /**
   * Sandboxes to keep started and ready, per language; default none (the pool then only bounds and
   * queues). Their sum must be at most `maxSandboxes`. Kept full in the background while there is
   * room and nobody waits.
   */
  warm?: { javascript?: number; python?: number };
  /**
   * Most sandboxes of this pool alive at once — warm, starting, in use (runs and their child RLMs),
   * and being removed; default 8. Each may take `limits.memoryBytes` of memory (1 GiB by default).
   */
  maxSandboxes?: number;
  /**
   * How long a warm sandbox may take to answer the ping it gets before it is handed out, in
   * milliseconds; default 5 000. One that does not is destroyed and replaced.
   */
  healthCheckTimeoutMs?: number;
}

/** Options of {@link SandboxPool.acquire}. */
export interface SandboxPoolAcquireOptions {
  /** The sandbox's language; default `javascript`. */
  language?: Language;
  /** Stops the wait (the acquire leaves the queue) or the start; nothing is left running. */
  signal?: AbortSignal;
  /**
   * Longest wait for room in the pool, in milliseconds (the start of a fresh sandbox not included);
   * unset: as long as `signal` allows. Past it the acquire throws {@link SandboxPoolExhaustedError}.
   */
  timeoutMs?: number;
}

/**
 * A sandbox lent by a {@link SandboxPool} for one run. Use {@link PooledSandbox.sandbox} as any
 * sandbox (load the context, define tools, run cells), then {@link PooledSandbox.release} it, or
 * `await using` the lease: the sandbox is destroyed either way — closing the sandbox itself also
 * destroys it, but only `release()` frees its place in the pool.
 */
export interface PooledSandbox extends AsyncDisposable {
  /** The sandbox, started, healthy, and never used before this lease. */
  readonly sandbox: Sandbox;
  /** The sandbox's language. */
  readonly language: Language;
  /** Milliseconds the acquire waited for room in the pool (0 when there was room at once). */
  readonly waitedMs: number;
  /** True when a warm sandbox was handed over; false when one was started for this acquire. */
  readonly warm: boolean;
  /** Destroys the sandbox and frees its place; resolves once its container is removed. Never throws; safe to call twice. */
  release(): Promise<void>;
}

/** What a pool holds and has done, for metrics. Counts are sandboxes; times are milliseconds. */
export interface SandboxPoolStats {
  /** The pool's bound. */
  maxSandboxes: number;
  /** Sandboxes alive now: warm, starting, in use and being removed together; never above `maxSandboxes`. */
  live: number;
  /** Warm and idle now, per language. */
  warm: Record<Language, number>;
  /** Warm sandboxes being started now. */
  refilling: number;
  /** Held by callers now (leased, or being started for an acquire). */
  inUse: number;
  /** Acquires waiting for room now. */
  waiting: number;
  /** Acquires admitted since the pool was made. */
  acquired: number;
  /** How many of them got a warm sandbox. */
  acquiredWarm: number;
  /** Time admitted acquires spent waiting for room, summed (the mean is `waitedMsTotal / acquired`). */
  waitedMsTotal: number;
  /** The longest wait for room of one acquire. */
  waitedMsMax: number;
  /** Warm sandboxes destroyed to make room for another language. */
  evicted: number;
  /** Warm sandboxes found dead or unresponsive at acquire and replaced. */
  replacedUnhealthy: number;
  /** Acquires refused: their `timeoutMs` passed, or (a child RLM) waiting could never end. */
  refused: { timeout: number; deadlock: number };
  /** Warm sandboxes that failed to start (each retried after a back-off). */
  refillFailures: number;
}

/** A pooled Sandbox as the core sees it. */
class PoolEntry implements PoolResource {
  constructor(readonly sandbox: Sandbox) {}
  async ping(signal: AbortSignal): Promise<void> {
    if (this.sandbox.isClosed) throw new SandboxClosedError(`sandbox ${this.sandbox.id} is closed`, this.sandbox.id);
    // An empty tool set is a no-op for a sandbox that never defined tools, and a full round trip
    // through the REPL server and its cell process: a dead or hung container cannot answer it.
    await this.sandbox.defineTools({}, { signal });
  }
  close(): Promise<void> {
    return this.sandbox.close();
  }
}

/** A pool's admission as the engine holds it (internal). */
export type SandboxTicket = PoolTicket<Language, PoolEntry>;

const cores = new WeakMap<SandboxPool, PoolCore<Language, PoolEntry>>();

/**
 * Warm sandboxes and a bound on how many exist at once in this process: see
 * {@link createSandboxPool}. Pass it to `new RLM({ pool })` so every run and child RLM takes its
 * sandbox from it, or call {@link SandboxPool.acquire} directly. Close with `close()` or `await using`.
 */
export class SandboxPool implements AsyncDisposable {
  /** The bound on live sandboxes (see {@link SandboxPoolOptions.maxSandboxes}). */
  readonly maxSandboxes: number;
  readonly #core: PoolCore<Language, PoolEntry>;

  /** @internal use {@link createSandboxPool}. */
  constructor(options: SandboxPoolOptions = {}) {
    const { warm = {}, maxSandboxes = DEFAULT_POOL_MAX_SANDBOXES, healthCheckTimeoutMs = DEFAULT_POOL_HEALTH_CHECK_TIMEOUT_MS, ...rest } = options;
    validatePoolOptions(warm, maxSandboxes, healthCheckTimeoutMs);
    this.maxSandboxes = maxSandboxes;
    const docker = rest.docker ?? createDockerClient();
    const sandboxOptions: SandboxOptions = { ...rest, docker };
    let refillWarned = false;
    this.#core = new PoolCore<Language, PoolEntry>({
      maxSize: maxSandboxes,
      warm,
      healthCheckTimeoutMs,
      create: async (language, signal, purpose) => {
        const entry = new PoolEntry(await Sandbox.create({ ...sandboxOptions, language, signal }));
        // A warm one answers one ping before it waits: the first request through a new REPL is
        // several times slower than the next (code paths not yet compiled), and the next is the
        // health check of the acquire that takes it.
        if (purpose === 'warm') {
          try {
            await entry.ping(signal);
          } catch (error) {
            await entry.close();
            throw error;
          }
        }
        return entry;
      },
      describeStartFailure: (error) => engineGone(docker, error),
      onRefillError: (language, error) => {
        const message = `the sandbox pool could not start a warm ${language} sandbox (${error instanceof Error ? error.message : String(error)}); it tries again later`;
        // Once per pool at warning level: an engine that is down fails every retry the same way.
        if (refillWarned) debug(message);
        else warn(message);
        refillWarned = true;
      },
    });
    cores.set(this, this.#core);
  }

  /**
   * A sandbox for one run: a warm one at once when there is one of `language` (after a health
   * ping), else a fresh one once there is room — waiting, first come first served, while all
   * `maxSandboxes` are alive; a warm sandbox of another language is evicted rather than waited for.
   *
   * @throws {AbortedError} `signal` fired; the acquire left the queue, nothing is left running.
   * @throws {SandboxPoolExhaustedError} no room freed within `timeoutMs`.
   * @throws {SandboxClosedError} the pool is closed (or closed while this waited).
   * @throws {DockerUnavailableError} a sandbox had to be started and the Docker engine does not answer.
   * @throws what `Sandbox.create` throws when starting one failed otherwise (`SandboxError`, `SandboxImageError`, `InvalidOptionError`).
   */
  async acquire(options: SandboxPoolAcquireOptions = {}): Promise<PooledSandbox> {
    const language = options.language ?? 'javascript';
    if (language !== 'javascript' && language !== 'python') {
      throw new InvalidOptionError('language', `must be 'javascript' or 'python', got ${JSON.stringify(language)}`);
    }
    const ticket = await this.#core.reserve({
      key: language,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    });
    const entry = await ticket.lease(options.signal);
    return leaseOf(ticket, entry.sandbox);
  }

  /** The pool's figures now (see {@link SandboxPoolStats}); cheap enough to read on every scrape. */
  stats(): SandboxPoolStats {
    const { warm, ...rest } = this.#core.stats();
    return { maxSandboxes: this.maxSandboxes, ...rest, warm: { javascript: warm.javascript ?? 0, python: warm.python ?? 0 } };
  }

  /**
   * Resolves once the configured warm sandboxes are all started and idle — e.g. before a benchmark
   * or before a service says it is ready. Warm sandboxes handed out are refilled in the background;
   * this does not wait for that again.
   *
   * @throws the error of a warm sandbox that failed to start (e.g. {@link DockerUnavailableError},
   *   `SandboxImageError`); the pool keeps trying.
   * @throws {SandboxClosedError} the pool closed. @throws {AbortedError} `options.signal` fired.
   */
  whenWarm(options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.#core.whenWarm(options.signal);
  }

  /** True once `close()` was called. */
  get isClosed(): boolean {
    return this.#core.closed;
  }

  /**
   * Refuses every waiting acquire ({@link SandboxClosedError}), stops starts, and removes every
   * container the pool started — warm ones and those still lent to runs (their cells then fail).
   * Resolves once they are gone. Never throws; safe to call twice and concurrently.
   */
  close(): Promise<void> {
    return this.#core.close();
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Creates a {@link SandboxPool} and starts its warm sandboxes in the background (the image is built
 * on first use if `image` is not given). Returns at once; {@link SandboxPool.whenWarm} waits for them.
 *
 * ```ts
 * await using pool = createSandboxPool({ warm: { javascript: 2 }, maxSandboxes: 8 });
 * const rlm = new RLM({ root, pool });
 * const results = await Promise.all(queries.map((query) => rlm.completion({ context, query })));
 * ```
 *
 * @throws {InvalidOptionError} `maxSandboxes` is not a positive integer, a warm count is not a whole
 *   number, or the warm counts add up to more than `maxSandboxes`.
 */
export function createSandboxPool(options: SandboxPoolOptions = {}): SandboxPool {
  return new SandboxPool(options);
}

/**
 * Internal, for the engine: room in `pool` for a run at `depth` (0 for a root run, deeper for a
 * child RLM), without starting anything yet; the caller leases and releases the ticket.
 */
export function reservePooledSandbox(
  pool: SandboxPool,
  options: { language: Language; depth: number; signal?: AbortSignal; timeoutMs?: number; parentMark?: () => void },
): Promise<SandboxTicket> {
  const core = cores.get(pool);
  if (!core) return Promise.reject(new InvalidOptionError('pool', 'not a sandbox pool made by createSandboxPool'));
  return core.reserve({
    key: options.language,
    depth: options.depth,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.parentMark ? { parentMark: options.parentMark } : {}),
  });
}

/** Internal, for the engine: the sandbox of a ticket, leased (health-checked or started). */
export async function leaseTicket(ticket: SandboxTicket, signal?: AbortSignal): Promise<Sandbox> {
  return (await ticket.lease(signal)).sandbox;
}

function leaseOf(ticket: SandboxTicket, sandbox: Sandbox): PooledSandbox {
  const release = () => ticket.release();
  return {
    sandbox,
    language: ticket.key,
    waitedMs: ticket.waitedMs,
    warm: ticket.warm,
    release,
    [Symbol.asyncDispose]: release,
  };
}

/** A failed start's error, or — when the engine does not answer a ping now — a DockerUnavailableError that says so. */
async function engineGone(docker: Dockerode, error: unknown): Promise<unknown> {
  if (DockerUnavailableError.isInstance(error) || AbortedError.isInstance(error) || InvalidOptionError.isInstance(error)) return error;
  try {
    await pingDocker(docker, { timeoutMs: 3_000 });
  } catch (pingError) {
    if (!DockerUnavailableError.isInstance(pingError)) return error;
    return new DockerUnavailableError(`${pingError.message}. The sandbox pool starts sandboxes again once the engine answers.`, pingError.dockerHost, {
      cause: error,
    });
  }
  return error;
}

function validatePoolOptions(warm: NonNullable<SandboxPoolOptions['warm']>, maxSandboxes: number, healthCheckTimeoutMs: number): void {
  if (!Number.isInteger(maxSandboxes) || maxSandboxes < 1) {
    throw new InvalidOptionError('maxSandboxes', `must be a positive integer, got ${String(maxSandboxes)}`);
  }
  if (!Number.isInteger(healthCheckTimeoutMs) || healthCheckTimeoutMs < 1) {
    throw new InvalidOptionError('healthCheckTimeoutMs', `must be a positive integer, got ${String(healthCheckTimeoutMs)}`);
  }
  let total = 0;
  for (const [language, count] of Object.entries(warm)) {
    if (language !== 'javascript' && language !== 'python') {
      throw new InvalidOptionError(`warm.${language}`, "is not a language; use 'javascript' or 'python'");
    }
    if (count === undefined) continue;
    if (!Number.isInteger(count) || count < 0) throw new InvalidOptionError(`warm.${language}`, `must be a whole number, 0 or more, got ${String(count)}`);
    total += count;
  }
  if (total > maxSandboxes) {
    throw new InvalidOptionError('warm', `the warm sandboxes (${total}) must fit in maxSandboxes (${maxSandboxes}); raise maxSandboxes or keep fewer warm`);
  }
}
