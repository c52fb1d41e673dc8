/**
 * The run worker on the real embedded store (a temp data directory) with a real RLM: scripted
 * models at the backend seam and in-process REPLs (the sandbox's REPL core without a container).
 * test/service-worker.test.ts runs a cancel against real sandbox containers.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RLM, type RlmResult, useReplFactory } from '../../engine/rlm.js';
import { AbortedError } from '../../errors.js';
import type { CompletionRequest } from '../../models/model-backend.js';
import { ScriptedBackend } from '../../models/scripted-backend.js';
import { inProcessRepls, type InProcessReplFactory } from '../../testing/in-process-repl.js';
import { replResponse as repl } from '../../testing/scripted-models.js';
import { contextOf, engineLimits } from '../run-engine.js';
import { createServiceNotices } from '../service-notices.js';
import { ServiceMetrics } from '../service-metrics.js';
import {
  type RunEngine,
  type RunRecord,
  type RunStatus,
  type RunWorker,
  ServiceError,
  type ServiceNotice,
  type ServiceNotices,
  type ServiceStore,
  type StoredRunEvent,
  type TeamRecord,
} from '../service-types.js';
import { openServiceStore } from '../store/service-store.js';
import { createRunWorker, type RunWorkerOptions } from './run-worker.js';

/** A price the engine knows, so runs report a cost. */
const ROOT_MODEL = 'claude-sonnet-4-5';
/** A cell that never ends by itself (the test stops its run). */
const WAIT_FOREVER = 'await new Promise((resolve) => setTimeout(resolve, 600000))';

/**
 * The root model, by the run's query (the first message holds it):
 * - `answer <text>`: one cell, then FINAL(`<text> <context length>`);
 * - `wait`: a cell that waits until the run is stopped;
 * - `sleep`: a cell that waits 1.5 s, then FINAL("slept");
 * - `huge`: a response with 200,000 characters of prose around a FINAL;
 * - `model fails`: the model call throws.
 */
function rootModel(): ScriptedBackend {
  return new ScriptedBackend(
    (request: CompletionRequest) => {
      const query = queryOf(request);
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (query.startsWith('answer ')) {
        const text = query.slice('answer '.length);
        return turn === 0 ? repl('const n = context.length; print(n)') : repl(`FINAL(${JSON.stringify(text)} + " " + n)`);
      }
      if (query === 'wait') return repl(WAIT_FOREVER);
      if (query === 'sleep') return turn === 0 ? repl('await new Promise((resolve) => setTimeout(resolve, 1500))') : repl('FINAL("slept")');
      if (query === 'huge') return `${'x'.repeat(200_000)}\n${repl('FINAL("big")')}`;
      if (query === 'model fails') return new Error('the provider is on fire');
      throw new Error(`no script for query ${JSON.stringify(query)}`);
    },
    { name: 'scripted-root' },
  );
}

/** The run's query, as the engine's first user message quotes it. */
function queryOf(request: CompletionRequest): string {
  const first = request.messages.find((m) => m.role === 'user')?.content ?? '';
  const match = /"(answer [^"]*|wait|sleep|huge|model fails)"/.exec(first);
  if (!match?.[1]) throw new Error(`no scripted query in ${JSON.stringify(first.slice(0, 300))}`);
  return match[1];
}

/** A RunEngine on an RLM with in-process REPLs that counts the runs in it at once and how they ended. */
class TestEngine implements RunEngine {
  running = 0;
  maxRunning = 0;
  readonly ended: Array<{ query: string; how: 'resolved' | 'aborted' | 'threw' }> = [];
  readonly repls: InProcessReplFactory = inProcessRepls();

  async start(run: Parameters<RunEngine['start']>[0]): Promise<RlmResult> {
    this.running += 1;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const rlm = useReplFactory(
        new RLM({
          root: { backend: rootModel(), model: ROOT_MODEL },
          language: run.language,
          limits: engineLimits({}, run.limits),
          logDir: run.logDir,
          onEvent: run.onEvent,
        }),
        this.repls,
      );
      const result = await rlm.completion({ context: contextOf(run.input), query: run.input.query, signal: run.signal });
      this.ended.push({ query: run.input.query, how: 'resolved' });
      return result;
    } catch (error) {
      this.ended.push({ query: run.input.query, how: AbortedError.isInstance(error) ? 'aborted' : 'threw' });
      throw error;
    } finally {
      this.running -= 1;
    }
  }
}

let dir: string;
let store: ServiceStore;
let team: TeamRecord;
let notices: ServiceNotices;
let published: ServiceNotice[];
let engine: TestEngine;
const workers: RunWorker[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-worker-test-'));
  store = await openServiceStore({ dataDir: path.join(dir, 'data') });
  team = await store.createTeam({ name: 'alpha', maxConcurrentRuns: 50, maxQueued: 1000 });
  notices = createServiceNotices({
    onError: (error) => {
      throw error;
    },
  });
  published = [];
  notices.subscribe((notice) => published.push(notice));
  engine = new TestEngine();
});

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.close();
  await store.close();
  // Every REPL a run made is closed once its run ended.
  const open = engine.repls.made.filter((repl) => !repl.isClosed);
  await Promise.all(open.map((repl) => repl.close()));
  expect(open.map((repl) => repl.id)).toEqual([]);
  // Every run's temporary trajectory directory was removed.
  expect((await readdir(path.join(dir, 'trajectories')).catch(() => [])).length).toBe(0);
  await rm(dir, { recursive: true, force: true });
});

function worker(options: Partial<Omit<RunWorkerOptions, 'settings'>> & { settings?: Partial<RunWorkerOptions['settings']> } = {}): RunWorker {
  const created = createRunWorker({
    store,
    engine,
    notices,
    logger: pino({ level: 'silent' }),
    trajectoryRoot: path.join(dir, 'trajectories'),
    ...options,
    settings: { maxRunningRuns: 4, leaseMs: 60_000, retryInterrupted: false, maxAttempts: 3, ...options.settings },
  });
  workers.push(created);
  return created;
}

/** Submits a run as the HTTP layer does: stored, then announced. */
async function submit(query: string, context = 'abcd', options: { announce?: boolean } = {}): Promise<RunRecord> {
  const run = await store.submitRun({ teamId: team.id, input: { query, context }, model: null, language: 'javascript', limits: {}, source: 'runs' });
  if (options.announce !== false) notices.publish({ kind: 'run_queued', runId: run.id, teamId: team.id });
  return run;
}

/** Polls `condition` until it holds (a generous deadline; no fixed sleeps). */
async function until<T>(condition: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function runOf(id: string): Promise<RunRecord> {
  const run = await store.getRun(null, id);
  if (!run) throw new Error(`no run ${id}`);
  return run;
}

function ended(id: string, statuses: RunStatus[] = ['succeeded', 'failed', 'cancelled']): Promise<RunRecord> {
  return until(async () => {
    const run = await runOf(id);
    return statuses.includes(run.status) ? run : undefined;
  }, `run ${id} to end`);
}

async function allEvents(id: string): Promise<StoredRunEvent[]> {
  return store.readEvents(id, 0, 10_000);
}

/** Waits until the run's events show its cell running (so a stop lands mid-cell). */
function cellRunning(id: string): Promise<true> {
  return until(async () => (await allEvents(id)).some((event) => event.type === 'cell_start') || undefined, `run ${id}'s cell to start`);
}

describe('the run worker', () => {
  it('runs a queued run: answer, usage, cost, iterations and trajectory stored; metrics count it', async () => {
    const metrics = new ServiceMetrics();
    await worker({ metrics }).start();
    const run = await submit('answer hello', 'abcdef');
    const done = await ended(run.id);
    expect(done).toMatchObject({ status: 'succeeded', answer: 'hello 6', error: null, iterations: 2, attempts: 1, workerId: null });
    expect(done.usage[ROOT_MODEL]).toMatchObject({ calls: 2 });
    expect(done.costUsd).toBeGreaterThan(0);
    const trajectory = await store.getTrajectory(run.id);
    const lines = (trajectory ?? '').trim().split('\n');
    expect(lines.length).toBe(3); // metadata and two turns
    expect(JSON.parse(lines[0] ?? '{}')).toMatchObject({ type: 'metadata' });
    const body = (await metrics.render()).body;
    expect(body).toMatch(/rlm_runs_finished_total\{team="alpha",status="succeeded"\} 1/);
    expect(body).toMatch(/rlm_run_queue_wait_seconds_count\{team="alpha"\} 1/);
    expect(body).toMatch(new RegExp(`rlm_model_tokens_total\\{team="alpha",model="${ROOT_MODEL}",direction="input"\\} [1-9]`));
  });

  it('stores the engine’s events in order between the store’s started and finished, and announces them', async () => {
    await worker().start();
    const run = await submit('answer ordered');
    await ended(run.id);
    const events = await allEvents(run.id);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    const types = events.map((event) => event.type);
    expect(types[0]).toBe('queued');
    expect(types[1]).toBe('started');
    expect(types.at(-1)).toBe('finished');
    expect(types.filter((type) => type === 'finished')).toHaveLength(1);
    const engineTypes = types.slice(2, -1);
    expect(engineTypes[0]).toBe('run_start');
    expect(engineTypes.at(-1)).toBe('run_end');
    expect(engineTypes).toEqual(expect.arrayContaining(['turn_start', 'model_response', 'cell_start', 'cell_end', 'final']));
    expect(engineTypes.indexOf('cell_start')).toBeLessThan(engineTypes.indexOf('cell_end'));
    // The engine's fields are kept as the event's data.
    const final = events.find((event) => event.type === 'final');
    expect(final?.data).toMatchObject({ answer: 'ordered 4', via: 'FINAL', depth: 0 });
    // The last announcement of the run names its last event.
    const announced = published.filter((notice) => notice.kind === 'run_events' && notice.runId === run.id);
    expect(announced.at(-1)).toEqual({ kind: 'run_events', runId: run.id, lastSeq: events.length });
  });

  it('clips a huge string in an event to 64 KiB with a marker before storing it', async () => {
    await worker().start();
    const run = await submit('huge');
    expect(await ended(run.id)).toMatchObject({ status: 'succeeded', answer: 'big' });
    const response = (await allEvents(run.id)).find((event) => event.type === 'model_response');
    const text = String(response?.data.text);
    expect(text.length).toBeLessThan(64 * 1024 + 200);
    expect(text).toMatch(/characters not recorded; 200,0\d\d in all/);
  });

  it('never runs more than maxRunningRuns at once, and runs every queued run', async () => {
    await worker({ settings: { maxRunningRuns: 3 } }).start();
    const runs = await Promise.all(Array.from({ length: 10 }, (_, i) => submit(`answer run${i}`)));
    const done = await Promise.all(runs.map((run) => ended(run.id)));
    expect(done.map((run) => run.answer)).toEqual(runs.map((_, i) => `run${i} 4`));
    expect(engine.maxRunning).toBeLessThanOrEqual(3);
    expect(engine.maxRunning).toBeGreaterThan(1);
  });

  it('finds a run queued without a notice (by another process) on its poll', async () => {
    await worker({ pollIntervalMs: 50 }).start();
    const run = await submit('answer polled', 'ab', { announce: false });
    expect(await ended(run.id)).toMatchObject({ status: 'succeeded', answer: 'polled 2' });
  });

  it('cancels a running run on a run_cancel notice: the engine is aborted and the run ends cancelled', async () => {
    // Leases renewed every 200 s: only the notice can stop the run within the test.
    await worker({ settings: { leaseMs: 600_000 } }).start();
    const run = await submit('wait');
    await cellRunning(run.id);
    expect((await store.requestCancel(team.id, run.id))?.cancelRequested).toBe(true);
    notices.publish({ kind: 'run_cancel', runId: run.id });
    expect(await ended(run.id)).toMatchObject({ status: 'cancelled', error: 'cancelled', answer: null });
    expect(engine.ended).toEqual([{ query: 'wait', how: 'aborted' }]);
    const events = await allEvents(run.id);
    expect(events.at(-1)?.type).toBe('finished');
    // What the run spent before the cancel counts.
    expect((await runOf(run.id)).usage[ROOT_MODEL]?.calls).toBe(1);
    // So does the trajectory written up to the cancel: the metadata and the cancelled turn.
    const lines = ((await store.getTrajectory(run.id)) ?? '').trim().split('\n');
    expect(lines.map((line) => (JSON.parse(line) as { type: string }).type)).toEqual(['metadata', 'iteration']);
  });

  it('cancels a running run whose cancel was asked in another process: the lease renewal answers cancelRequested', async () => {
    await worker({ settings: { leaseMs: 600 } }).start();
    const run = await submit('wait');
    await cellRunning(run.id);
    // No notice: another process's HTTP layer asked.
    await store.requestCancel(team.id, run.id);
    expect(await ended(run.id)).toMatchObject({ status: 'cancelled', error: 'cancelled' });
    expect(engine.ended).toEqual([{ query: 'wait', how: 'aborted' }]);
  });

  it('aborts a run whose lease it lost (another worker recovered it) and reports nothing for it', async () => {
    const running = worker({ settings: { leaseMs: 600 } });
    await running.start();
    const run = await submit('wait');
    await cellRunning(run.id);
    // Another process, believing no worker alive, fails every running run.
    const recovered = await store.recoverExpired({ retry: false, maxAttempts: 1, everyRunning: true });
    expect(recovered.map((r) => [r.id, r.status, r.error])).toEqual([[run.id, 'failed', 'interrupted']]);
    await until(() => engine.ended.length === 1, 'the engine to be aborted');
    expect(engine.ended).toEqual([{ query: 'wait', how: 'aborted' }]);
    await until(() => running.running() === 0, 'the worker to let the run go');
    // The recovery's outcome stands: one finished event, nothing written after it.
    expect(await runOf(run.id)).toMatchObject({ status: 'failed', error: 'interrupted' });
    const events = await allEvents(run.id);
    expect(events.filter((event) => event.type === 'finished')).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('finished');
  });

  it('drain with a grace lets a run in progress finish, and claims nothing new', async () => {
    const draining = worker({ settings: { maxRunningRuns: 1 } });
    await draining.start();
    const run = await submit('sleep');
    await cellRunning(run.id);
    const waiting = await submit('answer later');
    await draining.drain(60_000);
    expect(await runOf(run.id)).toMatchObject({ status: 'succeeded', answer: 'slept' });
    expect(await runOf(waiting.id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect(draining.running()).toBe(0);
  });

  it('drain past its grace cancels the runs still going with error shutdown', async () => {
    const draining = worker();
    await draining.start();
    const runs = [await submit('wait'), await submit('wait')];
    for (const run of runs) await cellRunning(run.id);
    await draining.drain(100);
    for (const run of runs) expect(await runOf(run.id)).toMatchObject({ status: 'cancelled', error: 'shutdown' });
    expect(engine.ended.map((e) => e.how)).toEqual(['aborted', 'aborted']);
    expect(draining.running()).toBe(0);
    // Closing after a drain does nothing more.
    await draining.close();
  });

  it('drain with handBack returns the runs still going to the queue, and another worker runs them again', async () => {
    const first = worker();
    await first.start();
    const run = await submit('wait');
    await cellRunning(run.id);
    await Promise.all([first.drain(0, { handBack: true }), first.close()]);
    const requeued = await runOf(run.id);
    expect(requeued).toMatchObject({ status: 'queued', attempts: 1, workerId: null });
    expect((await allEvents(run.id)).some((event) => event.type === 'finished')).toBe(false);

    // The next worker takes it up, and this time it is cancelled.
    const second = worker({ settings: { leaseMs: 600 } });
    await second.start();
    await until(async () => (await runOf(run.id)).attempts === 2 || undefined, 'the second claim');
    await store.requestCancel(team.id, run.id);
    expect(await ended(run.id)).toMatchObject({ status: 'cancelled', attempts: 2 });
  });

  it('ends a run failed when its model fails, with the engine’s message and the partial usage', async () => {
    await worker().start();
    const run = await submit('model fails');
    const done = await ended(run.id);
    expect(done.status).toBe('failed');
    expect(done.error).toMatch(/the provider is on fire/);
  });

  it('ends a run failed when the engine throws: a ServiceError (a model not allowed) or anything else', async () => {
    const failing: RunEngine = {
      async start(run) {
        if (run.model === 'nope') throw new ServiceError('model_not_allowed', 'model "rlm:nope" is not configured on this server');
        throw new TypeError('engine exploded');
      },
    };
    await worker({ engine: failing }).start();
    const notAllowed = await store.submitRun({ teamId: team.id, input: { query: 'q' }, model: 'nope', language: 'javascript', limits: {}, source: 'runs' });
    const exploded = await submit('anything');
    expect(await ended(notAllowed.id)).toMatchObject({ status: 'failed', error: 'model "rlm:nope" is not configured on this server' });
    expect(await ended(exploded.id)).toMatchObject({ status: 'failed', error: 'engine exploded' });
  });

  it('at start fails the runs left running by a dead process, or requeues and runs them when retryInterrupted', async () => {
    const left = await submit('answer again', 'abc', { announce: false });
    expect((await store.claimRun('dead-worker', 600_000))?.id).toBe(left.id);
    await worker({ recoverEveryRunning: true }).start();
    expect(await runOf(left.id)).toMatchObject({ status: 'failed', error: 'interrupted' });
    for (const w of workers.splice(0)) await w.close();

    const retried = await submit('answer again', 'abc', { announce: false });
    expect((await store.claimRun('dead-worker', 600_000))?.id).toBe(retried.id);
    await worker({ recoverEveryRunning: true, settings: { retryInterrupted: true } }).start();
    expect(await ended(retried.id)).toMatchObject({ status: 'succeeded', answer: 'again 3', attempts: 2 });
  });

  it('recovers a dead worker’s run once its lease expires, while running', async () => {
    const left = await submit('answer recovered', 'abc', { announce: false });
    // A worker that died right after claiming, with a short lease.
    expect((await store.claimRun('dead-worker', 300))?.id).toBe(left.id);
    await worker({ settings: { leaseMs: 300, retryInterrupted: true } }).start();
    expect(await ended(left.id)).toMatchObject({ status: 'succeeded', answer: 'recovered 3', attempts: 2 });
  });

  it('keeps claiming after the store fails: errors are logged and retried with backoff, nothing rejects unhandled', async () => {
    let failures = 2;
    const flaky = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'claimRun') {
          return (...args: Parameters<ServiceStore['claimRun']>) => {
            if (failures > 0) {
              failures -= 1;
              return Promise.reject(new Error('database is locked'));
            }
            return target.claimRun(...args);
          };
        }
        const value = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    await worker({ store: flaky, logger }).start();
    const run = await submit('answer eventually');
    expect(await ended(run.id)).toMatchObject({ status: 'succeeded' });
    expect(failures).toBe(0);
    expect(lines.filter((line) => line.includes('claiming a run failed'))).toHaveLength(2);
  });

  it('start and close are safe to call twice; a worker closed before it started never claims', async () => {
    const idle = worker();
    await idle.close();
    await idle.start();
    const run = await submit('answer never', 'x');
    const twice = worker();
    await Promise.all([twice.start(), twice.start()]);
    await ended(run.id);
    await Promise.all([twice.close(), twice.close()]);
    await twice.close();
    expect(engine.ended).toHaveLength(1);
  });
});
