/**
 * The worker of `rlm serve`: claims queued runs from the store (with a lease), runs each through the
 * {@link RunEngine}, streams its events into the store and records how it ended. Everything it knows
 * that matters outlives it in the store: a worker that dies leaves runs whose leases expire, and any
 * worker's periodic recovery requeues or fails them.
 *
 * When it looks for work: at start, on a `run_queued` notice, when one of its runs ends, and on a
 * poll timer (runs queued by another process send it no notice). How a run stops early: a
 * `run_cancel` notice (a cancel in this process) or a lease renewal that answers `cancelRequested`
 * (a cancel in another) aborts it and it ends `cancelled`; a renewal that no longer lists it (its
 * lease was lost to recovery) aborts it and reports nothing, since the run is no longer this
 * worker's; a drain past its grace aborts it and it ends `cancelled` with error `shutdown`, or is
 * handed back to the queue.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { RlmResult } from '../../engine/rlm.js';
import { AbortedError, InvalidOptionError, errorMessage } from '../../errors.js';
import type { ServiceMetrics } from '../service-metrics.js';
import type { RunEngine, RunOutcome, RunRecord, RunWorker, ServeSettings, ServiceNotice, ServiceNotices, ServiceStore } from '../service-types.js';
import { EventBatcher } from './event-batcher.js';
import { EventUsage } from './event-usage.js';

export interface RunWorkerOptions {
  store: ServiceStore;
  engine: RunEngine;
  notices: ServiceNotices;
  metrics?: ServiceMetrics;
  settings: Pick<ServeSettings, 'maxRunningRuns' | 'leaseMs' | 'retryInterrupted' | 'maxAttempts'>;
  logger: Logger;
  /** The id its claims carry; default `<host>:<pid>:<random>`. */
  workerId?: string;
  /**
   * At start, treat every `running` run as interrupted, not only those whose lease expired: true
   * for the embedded database, which only one process opens, so no run there is still alive.
   */
  recoverEveryRunning?: boolean;
  /** How often it looks for runs queued by another process, milliseconds; default 1,000. */
  pollIntervalMs?: number;
  /** Where each run's temporary trajectory directory is made; default the OS's temp directory. */
  trajectoryRoot?: string;
  /**
   * How long an aborted run's engine gets to settle (remove its sandboxes) before the worker stops
   * waiting for it and records the run as stopped anyway, milliseconds; default 60,000.
   */
  abortSettleMs?: number;
  /**
   * Report this worker in the store's workers table (GET /v1/admin/workers): at start, every third
   * of the lease, as draining once it drains, and removed once drained. Off by default.
   */
  heartbeat?: boolean;
}

/** Why the worker stopped a run before its engine finished it. */
type StopReason =
  /** Cancelled by a user: ends `cancelled`, error `cancelled`. */
  | 'cancelled'
  /** Drained past its grace: ends `cancelled`, error `shutdown`. */
  | 'shutdown'
  /** Drained past its grace with handBack: returned to the queue. */
  | 'handback'
  /** The store no longer lists it as this worker's: nothing is reported. */
  | 'lease_lost';

interface ActiveRun {
  readonly record: RunRecord;
  readonly controller: AbortController;
  stop: StopReason | undefined;
  /** Its outcome is being recorded: renewals no longer judge it. */
  finishing: boolean;
  /** When its lease ends as far as this worker knows (the last renewal that answered). */
  leaseExpiresAt: number;
  /** Settles (never rejects) once the run is recorded and cleaned up. */
  done: Promise<void>;
}

/** Claim retries after a store error wait this long, doubling up to {@link MAX_BACKOFF_MS}. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;
/** Attempts at recording a run's outcome before leaving it to recovery. */
const FINISH_ATTEMPTS = 4;

/**
 * A {@link RunWorker} on `store` and `engine`. Call `start()` to begin claiming, and `drain()` or
 * `close()` to stop. No promise it makes rejects unhandled: a store error in its loops is logged and
 * retried (claims with backoff up to 5 s); a run whose engine throws ends `failed` with the error's
 * message; a run whose outcome cannot be recorded is left to lease recovery.
 * @throws {InvalidOptionError} a setting is out of range.
 */
export function createRunWorker(options: RunWorkerOptions): RunWorker {
  return new Worker(options);
}

class Worker implements RunWorker {
  readonly id: string;
  readonly #store: ServiceStore;
  readonly #engine: RunEngine;
  readonly #notices: ServiceNotices;
  readonly #metrics: ServiceMetrics | undefined;
  readonly #settings: RunWorkerOptions['settings'];
  readonly #logger: Logger;
  readonly #recoverEveryRunning: boolean;
  readonly #pollIntervalMs: number;
  readonly #trajectoryRoot: string;
  readonly #abortSettleMs: number;

  #state: 'idle' | 'running' | 'stopped' = 'idle';
  #starting: Promise<void> | undefined;
  /** The runs this worker holds, by id. */
  readonly #runs = new Map<string, ActiveRun>();
  /** Every run still in progress here: those held, and any being stopped after the store gave it to a new claim. */
  readonly #active = new Set<ActiveRun>();
  /** The claim loop, while it runs. */
  #pumping: Promise<void> | undefined;
  /** Somebody asked for a look at the queue since the claim loop last looked. */
  #wakeRequested = false;
  #claimFailures = 0;
  #backoffTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #recoverTimer: NodeJS.Timeout | undefined;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing = false;
  readonly #heartbeat: boolean;
  readonly #startedAt = Date.now();
  #recovering = false;
  #unsubscribe: (() => void) | undefined;
  readonly #teamNames = new Map<string, string>();

  constructor(options: RunWorkerOptions) {
    const { maxRunningRuns, leaseMs, maxAttempts } = options.settings;
    if (!(Number.isInteger(maxRunningRuns) && maxRunningRuns >= 1)) {
      throw new InvalidOptionError('maxRunningRuns', `must be a positive integer, got ${maxRunningRuns}`);
    }
    if (!(Number.isFinite(leaseMs) && leaseMs >= 30)) throw new InvalidOptionError('leaseMs', `must be at least 30 ms, got ${leaseMs}`);
    if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new InvalidOptionError('maxAttempts', `must be a positive integer, got ${maxAttempts}`);
    const pollIntervalMs = options.pollIntervalMs ?? 1_000;
    if (!(pollIntervalMs > 0)) throw new InvalidOptionError('pollIntervalMs', `must be positive, got ${pollIntervalMs}`);
    this.id = options.workerId ?? `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    this.#heartbeat = options.heartbeat === true;
    this.#store = options.store;
    this.#engine = options.engine;
    this.#notices = options.notices;
    this.#metrics = options.metrics;
    this.#settings = options.settings;
    this.#logger = options.logger.child({ worker: this.id });
    this.#recoverEveryRunning = options.recoverEveryRunning ?? false;
    this.#pollIntervalMs = pollIntervalMs;
    this.#trajectoryRoot = options.trajectoryRoot ?? os.tmpdir();
    this.#abortSettleMs = options.abortSettleMs ?? 60_000;
  }

  /**
   * Recovers runs left by dead workers (every `running` one with `recoverEveryRunning`), then starts
   * claiming. Safe to call twice.
   * @throws the store's error when the first recovery fails (the database is unreachable at start).
   */
  start(): Promise<void> {
    // Drained before it started: it stays stopped.
    if (this.#state === 'stopped' && this.#starting === undefined) return Promise.resolve();
    this.#starting ??= (async () => {
      await this.#recover(this.#recoverEveryRunning, true);
      if (this.#state !== 'idle') return; // drained while recovering
      this.#state = 'running';
      this.#unsubscribe = this.#notices.subscribe((notice) => this.#onNotice(notice));
      const { leaseMs } = this.#settings;
      this.#pollTimer = setInterval(() => this.#wake(), this.#pollIntervalMs).unref();
      this.#recoverTimer = setInterval(() => void this.#recover(false, false), leaseMs / 2).unref();
      this.#renewTimer = setInterval(() => {
        void this.#renew();
        void this.#beat(false);
      }, leaseMs / 3).unref();
      await this.#beat(false);
      this.#logger.info({ maxRunningRuns: this.#settings.maxRunningRuns, leaseMs }, 'worker started');
      this.#wake();
    })();
    return this.#starting;
  }

  running(): number {
    return this.#active.size;
  }

  /**
   * Stops claiming at once; runs in progress get `graceMs` milliseconds (Infinity: as long as they
   * take) to finish, then are aborted: recorded `cancelled` with error `shutdown`, or with `handBack`
   * released to the queue. Resolves when no run is left. Calls may overlap; the shortest grace wins.
   */
  async drain(graceMs: number, options: { handBack?: boolean } = {}): Promise<void> {
    const wasRunning = this.#state === 'running';
    this.#state = 'stopped';
    clearInterval(this.#pollTimer);
    clearInterval(this.#recoverTimer);
    clearTimeout(this.#backoffTimer);
    this.#backoffTimer = undefined;
    await this.#starting?.catch(() => undefined);
    // A claim under way settles first (a run it claims now is handed back unstarted).
    await this.#pumping;
    if (wasRunning && this.#active.size > 0) this.#logger.info({ running: this.#active.size, graceMs }, 'draining');
    // Not awaited: the runs are stopped in the same turn as before, whatever the database's speed.
    const beating = wasRunning ? this.#beat(true) : undefined;
    if (this.#active.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      // setTimeout fires at once for a delay past 2^31 - 1 ms: a longer grace (Infinity) waits for the runs alone.
      const grace = graceMs < 2 ** 31 - 1 ? new Promise((resolve) => (timer = setTimeout(resolve, graceMs).unref())) : new Promise(() => {});
      await Promise.race([this.#allDone(), grace]);
      clearTimeout(timer);
    }
    for (const active of this.#active) this.#stopRun(active, options.handBack ? 'handback' : 'shutdown');
    await this.#allDone();
    clearInterval(this.#renewTimer);
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    await beating;
    if (wasRunning && this.#heartbeat)
      await this.#store
        .removeWorker(this.id)
        .catch((error: unknown) => this.#logger.warn({ err: error }, 'could not remove this worker from the workers table'));
  }

  /** One heartbeat in the workers table (when enabled); a failure is logged, the next one tries again. */
  async #beat(draining: boolean): Promise<void> {
    if (!this.#heartbeat) return;
    try {
      await this.#store.heartbeatWorker({
        id: this.id,
        host: os.hostname(),
        capacity: this.#settings.maxRunningRuns,
        running: this.#active.size,
        draining: draining || this.#state === 'stopped',
        startedAt: this.#startedAt,
      });
    } catch (error) {
      this.#logger.warn({ err: error }, 'heartbeat failed; the next one tries again');
    }
  }

  close(): Promise<void> {
    return this.drain(0);
  }

  // -------------------------------------------------------------------------------------------
  // Claiming

  #onNotice(notice: ServiceNotice): void {
    if (notice.kind === 'run_queued') {
      this.#wake();
    } else if (notice.kind === 'run_cancel') {
      const active = this.#runs.get(notice.runId);
      if (active && !active.finishing) this.#stopRun(active, 'cancelled');
    }
  }

  /** Asks the claim loop to look at the queue (starting it when it is not running). */
  #wake(): void {
    if (this.#state !== 'running') return;
    this.#wakeRequested = true;
    if (this.#pumping || this.#backoffTimer) return;
    this.#pumping = this.#pump()
      .catch((error: unknown) => this.#logger.error({ err: error }, 'the claim loop failed'))
      .finally(() => {
        this.#pumping = undefined;
        // A wake that came as the loop ended.
        if (this.#wakeRequested) this.#wake();
      });
  }

  async #pump(): Promise<void> {
    const { maxRunningRuns, leaseMs } = this.#settings;
    while (this.#wakeRequested && this.#state === 'running') {
      this.#wakeRequested = false;
      while (this.#state === 'running' && this.#active.size < maxRunningRuns) {
        let record: RunRecord | null;
        try {
          record = await this.#store.claimRun(this.id, leaseMs);
          this.#claimFailures = 0;
        } catch (error) {
          this.#claimFailures += 1;
          const delayMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.#claimFailures - 1));
          this.#logger.warn({ err: error, retryInMs: delayMs }, 'claiming a run failed');
          this.#backoffTimer = setTimeout(() => {
            this.#backoffTimer = undefined;
            this.#wake();
          }, delayMs).unref();
          return;
        }
        if (record === null) break;
        if (this.#state !== 'running') {
          await this.#handBackUnstarted(record);
          return;
        }
        this.#launch(record);
      }
    }
  }

  /** A run claimed as the worker began to drain: straight back to the queue. */
  async #handBackUnstarted(record: RunRecord): Promise<void> {
    try {
      await this.#store.releaseRun(this.id, record.id);
      this.#notices.publish({ kind: 'run_queued', runId: record.id, teamId: record.teamId });
    } catch (error) {
      this.#logger.error({ err: error, runId: record.id }, 'could not hand back a run claimed while draining; its lease will expire');
    }
  }

  #launch(record: RunRecord): void {
    const active: ActiveRun = {
      record,
      controller: new AbortController(),
      stop: undefined,
      finishing: false,
      leaseExpiresAt: record.leaseExpiresAt ?? Date.now() + this.#settings.leaseMs,
      done: Promise.resolve(),
    };
    // The store gave out again a run this worker still runs: that copy lost its lease (it was
    // released or recovered meanwhile) and must report nothing.
    const stale = this.#runs.get(record.id);
    if (stale) this.#stopRun(stale, 'lease_lost');
    this.#runs.set(record.id, active);
    this.#active.add(active);
    active.done = this.#execute(active)
      .catch((error: unknown) => this.#logger.error({ err: error, runId: record.id }, 'running a run failed unexpectedly'))
      .finally(() => {
        if (this.#runs.get(record.id) === active) this.#runs.delete(record.id);
        this.#active.delete(active);
        this.#wake();
      });
  }

  /** Resolves when no run is in progress here. */
  async #allDone(): Promise<void> {
    while (this.#active.size > 0) await Promise.all([...this.#active].map((active) => active.done));
  }

  // -------------------------------------------------------------------------------------------
  // One run

  #stopRun(active: ActiveRun, reason: StopReason): void {
    // A lost lease overrides any other reason: the run must not be reported at all then.
    if (active.stop !== undefined && reason !== 'lease_lost') return;
    if (active.stop === 'lease_lost') return;
    active.stop = reason;
    this.#logger.info({ runId: active.record.id, reason }, 'stopping a run');
    active.controller.abort(new AbortedError(`run ${active.record.id} was stopped: ${reason}`));
  }

  async #execute(active: ActiveRun): Promise<void> {
    const { record } = active;
    const log = this.#logger.child({ runId: record.id });
    const team = await this.#teamName(record.teamId);
    const startedAt = record.startedAt ?? Date.now();
    this.#metrics?.runStarted(team, (startedAt - record.createdAt) / 1000);
    log.info({ team, attempt: record.attempts }, 'run started');
    // The `started` event the claim wrote, for live readers.
    void this.#announceEvents(record.id, 0);

    const batcher = new EventBatcher({
      store: this.#store,
      runId: record.id,
      workerId: this.id,
      onStored: (lastSeq) => this.#notices.publish({ kind: 'run_events', runId: record.id, lastSeq }),
      onDropped: (error, count) => log.error({ err: error, dropped: count }, 'could not store events of a run; they were dropped'),
    });
    const usage = new EventUsage();
    let logDir: string | undefined;
    let result: RlmResult | undefined;
    let failure: unknown;
    try {
      await mkdir(this.#trajectoryRoot, { recursive: true, mode: 0o700 });
      logDir = await mkdtemp(path.join(this.#trajectoryRoot, 'rlm-serve-run-'));
      const input = await this.#store.getRunInput(record.id);
      if (input === null) throw new Error(`run ${record.id} has no stored input`);
      const started = this.#engine.start({
        model: record.model,
        language: record.language,
        limits: record.limits,
        input,
        logDir,
        signal: active.controller.signal,
        onEvent: (event) => {
          usage.add(event);
          batcher.add(event);
        },
      });
      result = await this.#settle(started, active.controller.signal);
    } catch (error) {
      failure = error;
    }

    try {
      if (active.stop === 'lease_lost') {
        batcher.discard();
        log.warn('the run was stopped: this worker no longer holds it (its lease was lost); nothing reported');
        return;
      }
      await batcher.close();
      if (result === undefined && active.stop === 'handback') {
        await this.#handBack(active, batcher.lastSeq);
        return;
      }
      const outcome = await this.#outcomeOf(result, failure, active.stop, usage, logDir);
      if (result === undefined && active.stop === undefined && !AbortedError.isInstance(failure)) {
        log.warn({ err: failure }, 'the engine failed the run');
      }
      await this.#finish(active, outcome, batcher.lastSeq, team, startedAt);
    } finally {
      if (logDir !== undefined) await rm(logDir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /**
   * The engine's result; or its rejection; or, when it was aborted and has not settled within
   * `abortSettleMs`, an AbortedError (the engine is left to finish on its own).
   */
  async #settle(started: Promise<RlmResult>, signal: AbortSignal): Promise<RlmResult> {
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const abandoned = new Promise<never>((_, reject) => {
      onAbort = () => {
        timer = setTimeout(
          () => reject(new AbortedError(`the engine did not stop within ${this.#abortSettleMs} ms of being aborted`)),
          this.#abortSettleMs,
        ).unref();
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    // Whichever loses the race must not become an unhandled rejection.
    abandoned.catch(() => undefined);
    started.catch(() => undefined);
    try {
      return await Promise.race([started, abandoned]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async #outcomeOf(
    result: RlmResult | undefined,
    failure: unknown,
    stop: StopReason | undefined,
    usage: EventUsage,
    logDir: string | undefined,
  ): Promise<RunOutcome> {
    const trajectory = await readTrajectory(result?.trajectoryFile ?? null, logDir);
    // A run that finished as it was being stopped reports how it finished.
    if (result !== undefined) {
      return {
        status: result.success ? 'succeeded' : 'failed',
        answer: result.answer,
        error: result.success ? null : (result.error?.message ?? 'the run ended without an answer'),
        usage: result.usage,
        costUsd: result.costUsd,
        iterations: result.iterations,
        trajectory,
      };
    }
    const spent = { usage: usage.usage(), costUsd: usage.costUsd(), iterations: usage.iterations(), trajectory };
    if (stop === 'shutdown') return { status: 'cancelled', answer: null, error: 'shutdown', ...spent };
    if (stop !== undefined || AbortedError.isInstance(failure)) return { status: 'cancelled', answer: null, error: 'cancelled', ...spent };
    return { status: 'failed', answer: null, error: errorMessage(failure), ...spent };
  }

  async #finish(active: ActiveRun, outcome: RunOutcome, lastSeq: number, team: string, startedAt: number): Promise<void> {
    const { record } = active;
    active.finishing = true;
    let recorded = false;
    for (let attempt = 1; ; attempt += 1) {
      try {
        recorded = await this.#store.finishRun(this.id, record.id, outcome);
        break;
      } catch (error) {
        if (attempt >= FINISH_ATTEMPTS) {
          this.#logger.error({ err: error, runId: record.id }, 'could not record the end of a run; lease recovery will end it');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, FIRST_BACKOFF_MS * 4 ** (attempt - 1)).unref());
      }
    }
    if (!recorded) {
      this.#logger.warn({ runId: record.id, status: outcome.status }, 'the run ended after this worker lost it (lease expired); its outcome was not recorded');
      return;
    }
    const seconds = (Date.now() - startedAt) / 1000;
    this.#metrics?.runFinished(team, outcome.status, seconds, outcome.usage);
    this.#logger.info({ runId: record.id, status: outcome.status, error: outcome.error, seconds, costUsd: outcome.costUsd }, 'run finished');
    await this.#announceEvents(record.id, lastSeq);
  }

  async #handBack(active: ActiveRun, lastSeq: number): Promise<void> {
    const { record } = active;
    active.finishing = true;
    try {
      if (await this.#store.releaseRun(this.id, record.id)) {
        this.#logger.info({ runId: record.id }, 'run handed back to the queue');
        this.#notices.publish({ kind: 'run_queued', runId: record.id, teamId: record.teamId });
        await this.#announceEvents(record.id, lastSeq);
      }
    } catch (error) {
      this.#logger.error({ err: error, runId: record.id }, 'could not hand a run back to the queue; lease recovery will');
    }
  }

  /** Publishes `run_events` with the run's last stored `seq`, if the store has events after `afterSeq`. Never throws. */
  async #announceEvents(runId: string, afterSeq: number): Promise<void> {
    try {
      let last = afterSeq;
      for (;;) {
        const page = await this.#store.readEvents(runId, last, 1000);
        const tail = page.at(-1);
        if (tail === undefined) break;
        last = tail.seq;
        if (page.length < 1000) break;
      }
      if (last > afterSeq) this.#notices.publish({ kind: 'run_events', runId, lastSeq: last });
    } catch (error) {
      this.#logger.warn({ err: error, runId }, 'could not read the events of a run to announce them');
    }
  }

  async #teamName(teamId: string): Promise<string> {
    const known = this.#teamNames.get(teamId);
    if (known !== undefined) return known;
    try {
      const name = (await this.#store.teamById(teamId))?.name ?? teamId;
      this.#teamNames.set(teamId, name);
      return name;
    } catch {
      return teamId;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Leases and recovery

  async #renew(): Promise<void> {
    if (this.#renewing || this.#runs.size === 0) return;
    this.#renewing = true;
    const { leaseMs } = this.#settings;
    const ids = [...this.#runs.keys()];
    const askedAt = Date.now();
    try {
      const held = new Map((await this.#store.renewLeases(this.id, ids, leaseMs)).map((lease) => [lease.runId, lease]));
      for (const runId of ids) {
        const active = this.#runs.get(runId);
        if (!active || active.finishing) continue;
        const lease = held.get(runId);
        if (lease === undefined) {
          this.#logger.warn({ runId }, 'the store no longer lists this run as held by this worker (lease lost)');
          this.#stopRun(active, 'lease_lost');
        } else {
          active.leaseExpiresAt = askedAt + leaseMs;
          if (lease.cancelRequested) this.#stopRun(active, 'cancelled');
        }
      }
    } catch (error) {
      this.#logger.warn({ err: error }, 'renewing leases failed');
      // Past its lease, another worker may already have recovered the run: stop, report nothing.
      const now = Date.now();
      for (const active of this.#active) {
        if (!active.finishing && active.leaseExpiresAt <= now) this.#stopRun(active, 'lease_lost');
      }
    } finally {
      this.#renewing = false;
    }
  }

  /** Requeues or fails runs of dead workers. At start its error is thrown; later it is logged (the next period retries). */
  async #recover(everyRunning: boolean, atStart: boolean): Promise<void> {
    if (this.#recovering) return;
    this.#recovering = true;
    try {
      const { retryInterrupted, maxAttempts } = this.#settings;
      const changed = await this.#store.recoverExpired({ retry: retryInterrupted, maxAttempts, ...(everyRunning ? { everyRunning: true } : {}) });
      let requeued = false;
      for (const run of changed) {
        this.#logger.warn({ runId: run.id, status: run.status, attempts: run.attempts }, 'recovered a run its worker left (lease expired)');
        if (run.status === 'queued') {
          requeued = true;
          this.#notices.publish({ kind: 'run_queued', runId: run.id, teamId: run.teamId });
        } else {
          const seconds = run.startedAt !== null && run.finishedAt !== null ? (run.finishedAt - run.startedAt) / 1000 : 0;
          this.#metrics?.runFinished(await this.#teamName(run.teamId), run.status, seconds, run.usage);
        }
        await this.#announceEvents(run.id, 0);
      }
      if (requeued) this.#wake();
    } catch (error) {
      if (atStart) throw error;
      this.#logger.warn({ err: error }, 'recovering expired leases failed');
    } finally {
      this.#recovering = false;
    }
  }
}

/** The run's JSONL trajectory: the file the result names, or the one an aborted run left in its directory; null when none. */
async function readTrajectory(file: string | null, logDir: string | undefined): Promise<string | null> {
  try {
    if (file !== null) return await readFile(file, 'utf8');
    if (logDir === undefined) return null;
    const name = (await readdir(logDir)).find((entry) => entry.endsWith('.jsonl'));
    return name === undefined ? null : await readFile(path.join(logDir, name), 'utf8');
  } catch {
    return null;
  }
}
