/**
 * The run worker of `rlm serve` against real sandbox containers: a run stopped while its cell runs
 * (a user's cancel, a drain past its grace) ends `cancelled` and leaves no container behind. The
 * store is the real embedded one; the models are scripted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { RLM, createDockerClient, createSandboxPool, listSandboxes, type SandboxPool } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { replResponse as repl } from '../orchestrator/src/testing/scripted-models.js';
import { contextOf } from '../orchestrator/src/service/run-engine.js';
import { createServiceNotices } from '../orchestrator/src/service/service-notices.js';
import type { RunEngine, RunRecord, ServiceStore, StoredRunEvent, TeamRecord } from '../orchestrator/src/service/service-types.js';
import { openServiceStore } from '../orchestrator/src/service/store/service-store.js';
import { createRunWorker } from '../orchestrator/src/service/worker/run-worker.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();

/** This process's sandbox containers (each carries its owner's pid in the reaper's label). */
async function containersOfThisProcess() {
  return (await listSandboxes({ docker })).filter((s) => s.owner.includes(`:${process.pid}:`));
}

/** Polls `condition` until it holds (a generous deadline; no fixed sleeps). */
async function until<T>(condition: () => Promise<T | undefined | false>, what: string, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A root model whose only cell waits a minute: the run is stopped while it runs. */
const waitingModel = () => new ScriptedBackend(() => repl('print("waiting"); await new Promise((resolve) => setTimeout(resolve, 60000)); FINAL("too late")'));

let dir: string;
let store: ServiceStore;
let team: TeamRecord;
let pool: SandboxPool;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-service-worker-'));
  store = await openServiceStore({ dataDir: path.join(dir, 'data') });
  team = await store.createTeam({ name: 'alpha' });
  pool = createSandboxPool({ docker, image: inject('sandboxImage'), ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS, maxSandboxes: 2 });
});

afterEach(async () => {
  await pool.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** A worker whose engine runs each run on an RLM over the pool, as `rlm serve` does. */
function workerOn(notices = createServiceNotices()) {
  const engine: RunEngine = {
    start: (run) =>
      new RLM({ root: { backend: waitingModel(), model: 'm' }, pool, logDir: run.logDir, onEvent: run.onEvent }).completion({
        context: contextOf(run.input),
        query: run.input.query,
        signal: run.signal,
      }),
  };
  const worker = createRunWorker({
    store,
    engine,
    notices,
    logger: pino({ level: 'silent' }),
    settings: { maxRunningRuns: 2, leaseMs: 600_000, retryInterrupted: false, maxAttempts: 1 },
    trajectoryRoot: path.join(dir, 'trajectories'),
  });
  return { worker, notices };
}

async function submit(notices: ReturnType<typeof createServiceNotices>): Promise<RunRecord> {
  const run = await store.submitRun({
    teamId: team.id,
    input: { query: 'wait', context: 'some text' },
    model: null,
    language: 'javascript',
    limits: {},
    source: 'runs',
  });
  notices.publish({ kind: 'run_queued', runId: run.id, teamId: team.id });
  return run;
}

/** Waits until the run's cell runs in its container, and answers that container's id. */
async function cellRunningIn(runId: string): Promise<string> {
  await until(async () => (await store.readEvents(runId, 0)).some((event: StoredRunEvent) => event.type === 'cell_start'), `run ${runId}'s cell to start`);
  const containers = await containersOfThisProcess();
  expect(containers).toHaveLength(1);
  return containers[0]?.id as string;
}

async function containerGone(id: string): Promise<void> {
  await until(async () => !(await containersOfThisProcess()).some((c) => c.id === id), `container ${id} to be removed`);
  await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
}

describe('the run worker with sandbox containers', () => {
  it('cancels a run while its cell runs: the run ends cancelled and its sandbox container is removed', async () => {
    const { worker, notices } = workerOn();
    await worker.start();
    try {
      const run = await submit(notices);
      const container = await cellRunningIn(run.id);
      // What POST /v1/runs/:id/cancel does: record the request, then tell the worker.
      await store.requestCancel(team.id, run.id);
      notices.publish({ kind: 'run_cancel', runId: run.id });
      await until(async () => (await store.getRun(team.id, run.id))?.status === 'cancelled', 'the run to end cancelled');
      expect(await store.getRun(team.id, run.id)).toMatchObject({ status: 'cancelled', error: 'cancelled', answer: null });
      await containerGone(container);
      expect(pool.stats()).toMatchObject({ inUse: 0 });
    } finally {
      await worker.close();
    }
  });

  it('a drain past its grace cancels a run mid-cell with error shutdown and removes its container', async () => {
    const { worker, notices } = workerOn();
    await worker.start();
    const run = await submit(notices);
    const container = await cellRunningIn(run.id);
    await worker.drain(100);
    expect(await store.getRun(team.id, run.id)).toMatchObject({ status: 'cancelled', error: 'shutdown' });
    await containerGone(container);
    expect(worker.running()).toBe(0);
  });
});
