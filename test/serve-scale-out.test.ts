/**
 * `rlm serve` over several machines, on one machine that stands in for them: PostgreSQL (a
 * throwaway cluster from Debian's package), one `--role api` process and two `--role worker`
 * processes, worker A on the machine's Docker engine and worker B on a second engine of its own
 * (test/support/second-docker.ts: its own dockerd, socket, data root and bridge). Everything the
 * processes share is the database.
 *
 * - 30 runs through the API while B is killed with -9 mid-run: every run ends `succeeded` (B's
 *   held runs on A, once their 3 s lease expired), each reports exactly one `finished` event, no
 *   run is claimed more than twice, and no sandbox is left on either engine.
 * - A cancel through the API stops the run on the worker holding it, on either engine, and its
 *   sandbox goes.
 * - GET /v1/admin/workers lists both workers for an admin token only.
 *
 * Worker B's provider answers with a cell that takes 3 s, so B holds runs when it is killed;
 * worker A's answers at once. The provider is a local fake on 127.0.0.1.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { listSandboxes } from '../orchestrator/src/sandbox/reaper.js';
import { openServiceStore } from '../orchestrator/src/service/store/service-store.js';
import { type ChatRequestBody, type FakeOpenAIServer, startFakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { testDocker } from './support/docker.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';
import { testRuntimeEnv } from './support/runtime.js';
import { type SecondDocker, startSecondDocker } from './support/second-docker.js';
import { api, createTeamToken, finished, type RunJson, type ServeProcess, startServe, waitForRun, writeServeConfig } from './support/serve-process.js';

const fence = (code: string) => `Let me look.\n\`\`\`repl\n${code}\n\`\`\``;

/** The model's cell: `[block]` never ends; otherwise it waits `cellMs` (0: not at all) and answers the context's length. */
function script(cellMs: number) {
  return (body: ChatRequestBody): string => {
    const prompt = body.messages.map((m) => String(m.content)).join('\n');
    if (prompt.includes('[block]')) return fence('await new Promise(() => {});');
    const wait = cellMs > 0 ? `await new Promise((resolve) => setTimeout(resolve, ${cellMs}));\n` : '';
    return fence(`${wait}FINAL("chars=" + String(context).length);`);
  };
}

const LEASE = ['--lease-seconds', '3'];

let pg: TestPostgres;
let engineB: SecondDocker;
let work: string;
const providers: FakeOpenAIServer[] = [];
const processes: ServeProcess[] = [];

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'rlm-serve-scale-out-'));
  [pg, engineB] = await Promise.all([startPostgres(), startSecondDocker('scale-out')]);
});

afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
  for (const s of providers.splice(0)) await s.close();
});

afterAll(async () => {
  await engineB?.close();
  await pg?.close();
});

interface Cluster {
  database: string;
  api: ServeProcess;
  workerA: ServeProcess;
  workerB: ServeProcess;
  /** Starts worker B again on its engine, as a restarted machine would (same id, same arguments). */
  restartWorkerB(): Promise<ServeProcess>;
  /** A token of team `t` (concurrency 8, queue 100). */
  token: string;
  dir: string;
}

/**
 * A fresh database, the API process and workers `worker-a` (first engine, cells of `cellMsA`) and
 * `worker-b` (second engine, cells of `cellMsB`), each in a directory of its own (its config file
 * names its provider), with `workerArgs` added to both workers' command lines.
 */
async function cluster(name: string, options: { cellMsA?: number; cellMsB?: number; workerArgs?: string[] } = {}): Promise<Cluster> {
  const database = await pg.newDatabase();
  const databaseArgs = ['--database', database];
  const dir = await mkdtemp(path.join(work, `${name}-`));
  const providerA = await startFakeOpenAIServer(script(options.cellMsA ?? 0));
  const providerB = await startFakeOpenAIServer(script(options.cellMsB ?? 0));
  providers.push(providerA, providerB);
  const dirs = { api: path.join(dir, 'api'), a: path.join(dir, 'worker-a'), b: path.join(dir, 'worker-b') };
  for (const d of Object.values(dirs)) await mkdir(d);
  await writeServeConfig(dirs.api, providerA);
  await writeServeConfig(dirs.a, providerA);
  await writeServeConfig(dirs.b, providerB);
  const token = await createTeamToken(dirs.api, 't', ['--max-concurrent-runs', '8', '--max-queued', '100'], databaseArgs);
  const workerArgs = ['--role', 'worker', ...databaseArgs, ...LEASE, ...(options.workerArgs ?? [])];
  const startWorkerB = async () => {
    const worker = await startServe(dirs.b, [...workerArgs, '--worker-id', 'worker-b'], testRuntimeEnv({ DOCKER_HOST: engineB.host }));
    processes.push(worker);
    return worker;
  };
  const [apiProcess, workerA, workerB] = await Promise.all([
    startServe(dirs.api, ['--role', 'api', ...databaseArgs, ...LEASE]),
    startServe(dirs.a, [...workerArgs, '--worker-id', 'worker-a'], testRuntimeEnv({})),
    startWorkerB(),
  ]);
  processes.push(apiProcess, workerA);
  for (const [worker, id] of [
    [workerA, 'worker-a'],
    [workerB, 'worker-b'],
  ] as const) {
    expect(worker.stderr()).toContain(`rlm serve: worker ${id} ready`);
  }
  return { database, api: apiProcess, workerA, workerB, restartWorkerB: startWorkerB, token, dir: dirs.api };
}

async function adminToken(dir: string, database: string): Promise<string> {
  const created = await runRlm(['serve', 'tokens', 'create', '--team', 't', '--admin', '--database', database], { cwd: dir, env: cleanEnv() });
  if (created.code !== 0) throw new Error(`tokens create --admin failed (${created.code}): ${created.stderr}`);
  return created.stdout.trim();
}

interface WorkerJson {
  id: string;
  host: string;
  capacity: number;
  running: number;
  started_at: string;
  last_heartbeat_at: string;
  draining: boolean;
}

/** Polls GET /v1/admin/workers until `done(workers)` holds. */
async function waitForWorkers(url: string, token: string, done: (workers: WorkerJson[]) => boolean, timeoutMs = 120_000): Promise<WorkerJson[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const { status, body } = await api<{ data: WorkerJson[] }>(url, token, 'GET', '/v1/admin/workers');
    last = body;
    if (status === 200 && done(body.data)) return body.data;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the workers never reached the expected state; last: ${JSON.stringify(last)}`);
}

/** The event types of a run's stream, from the start; the stream ends after `finished`. */
async function eventTypes(url: string, token: string, id: string): Promise<string[]> {
  const response = await fetch(`${url}/v1/runs/${id}/events`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(60_000) });
  expect(response.status).toBe(200);
  const text = await response.text();
  return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1] as string);
}

/** Sandboxes on `docker` owned by one of `pids` (every one when `pids` is undefined). */
async function sandboxesOn(docker: Dockerode, pids?: readonly number[]): Promise<string[]> {
  const containers = await listSandboxes({ docker });
  return containers.filter((c) => pids === undefined || pids.map(String).includes(c.owner.split(':')[1] ?? '')).map((c) => `${c.name} [${c.state}]`);
}

/** Polls until `list()` is empty, up to `timeoutMs`; what is left otherwise. */
async function waitForEmpty(list: () => Promise<string[]>, timeoutMs = 120_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await list();
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await list();
  }
  return left;
}

describe('rlm serve with an API process and two workers on two Docker engines, over PostgreSQL', () => {
  it('loses no run to a worker killed with -9: every one of 30 runs succeeds on the other worker, each reported once, none claimed more than twice, no sandbox left on either engine', async () => {
    const c = await cluster('kill', { cellMsB: 3_000, workerArgs: ['--max-sandboxes', '3', '--warm', '1'] });
    const admin = await adminToken(c.dir, c.database);
    const submitted = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api<{ id: string; status: string }>(c.api.url, c.token, 'POST', '/v1/runs', { query: `count ${i}`, context: 'x'.repeat(i + 1) }),
      ),
    );
    for (const s of submitted) expect(s).toMatchObject({ status: 202, body: { status: 'queued' } });

    // Kill B once the workers' list shows it running something: its cells take 3 s, so it holds them.
    await waitForWorkers(c.api.url, admin, (workers) => (workers.find((w) => w.id === 'worker-b')?.running ?? 0) >= 1);
    const pidB = c.workerB.child.pid as number;
    c.workerB.child.kill('SIGKILL');
    await c.workerB.exited;
    await using store = await openServiceStore({ databaseUrl: c.database });
    const heldByB = [];
    for (const s of submitted) {
      const run = await store.getRun(null, s.body.id);
      if (run?.status === 'running' && run.workerId === 'worker-b') heldByB.push(run.id);
    }
    expect(heldByB.length).toBeGreaterThanOrEqual(1);

    const runs = await Promise.all(submitted.map((s) => waitForRun(c.api.url, c.token, s.body.id, finished, 300_000)));
    for (const [i, run] of runs.entries()) expect(run).toMatchObject({ status: 'succeeded', answer: `chars=${i + 1}`, error: null });
    for (const s of submitted) {
      const run = await store.getRun(null, s.body.id);
      expect(run?.attempts).toBeLessThanOrEqual(2);
      // B's held runs were claimed again, by A (B is dead).
      if (heldByB.includes(s.body.id)) expect(run?.attempts).toBe(2);
      const types = await eventTypes(c.api.url, c.token, s.body.id);
      expect(types.filter((t) => t === 'finished')).toHaveLength(1);
      expect(types.at(-1)).toBe('finished');
    }

    // No sandbox left. B's sandboxes that were running die with their control channel; one B was
    // still creating when killed never started, so only a reaper on B's engine removes it: the
    // restarted worker B's, as on a machine that comes back.
    const restartedB = await c.restartWorkerB();
    expect(await waitForEmpty(() => sandboxesOn(engineB.docker(), [pidB]))).toEqual([]);
    for (const worker of [restartedB, c.workerA]) {
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    }
    expect(await waitForEmpty(() => sandboxesOn(engineB.docker()))).toEqual([]);
    expect(await waitForEmpty(() => sandboxesOn(testDocker(), [pidB, c.workerA.child.pid as number]))).toEqual([]);
    // A stopped worker leaves the list; the dead one stays until it is stale (five minutes).
    const workers = await waitForWorkers(c.api.url, admin, (list) => !list.some((w) => w.id === 'worker-a'));
    expect(workers.map((w) => w.id)).not.toContain('worker-a');
  }, 300_000);

  it('cancels through the API process a run a worker is running, on either engine: it ends cancelled and its sandbox goes', async () => {
    // One run at a time per worker and no warm sandbox: each worker takes one of the two runs, and
    // the only sandbox of a worker is its run's.
    const c = await cluster('cancel', { workerArgs: ['--max-sandboxes', '1', '--warm', '0'] });
    const ids = await Promise.all(
      [0, 1].map(async (i) => (await api<{ id: string }>(c.api.url, c.token, 'POST', '/v1/runs', { query: `never ends ${i} [block]` })).body.id),
    );
    await using store = await openServiceStore({ databaseUrl: c.database });
    const engines = {
      'worker-a': { docker: testDocker(), pid: c.workerA.child.pid as number },
      'worker-b': { docker: engineB.docker(), pid: c.workerB.child.pid as number },
    };
    for (const id of ids) await waitForRun(c.api.url, c.token, id, (run) => run.status === 'running');
    // Each worker's one sandbox is running its run's endless cell.
    const holders = await Promise.all(ids.map(async (id) => (await store.getRun(null, id))?.workerId));
    expect(holders.sort()).toEqual(['worker-a', 'worker-b']);
    for (const { docker, pid } of Object.values(engines)) {
      const deadline = Date.now() + 120_000;
      while ((await sandboxesOn(docker, [pid])).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await sandboxesOn(docker, [pid])).toHaveLength(1);
    }

    for (const id of ids) {
      const asked = Date.now();
      const cancel = await api<RunJson & { cancel_requested: boolean }>(c.api.url, c.token, 'POST', `/v1/runs/${id}/cancel`);
      expect(cancel.status).toBe(200);
      const run = await waitForRun(c.api.url, c.token, id, finished, 60_000);
      expect(run).toMatchObject({ status: 'cancelled' });
      // For the report: the issue asks for two seconds; a loaded machine may take longer, so not asserted.
      console.log(`cancel of a run on ${holders[ids.indexOf(id)]}: cancelled ${Date.now() - asked} ms after the request`);
      expect((await eventTypes(c.api.url, c.token, id)).filter((t) => t === 'finished')).toHaveLength(1);
    }
    for (const { docker, pid } of Object.values(engines)) expect(await waitForEmpty(() => sandboxesOn(docker, [pid]))).toEqual([]);
  });

  it('lists both workers with their capacity and heartbeat at GET /v1/admin/workers for an admin token, and refuses a team token (403) and none (401)', async () => {
    const c = await cluster('admin', { workerArgs: ['--max-sandboxes', '2', '--warm', '0'] });
    const admin = await adminToken(c.dir, c.database);
    const workers = await waitForWorkers(c.api.url, admin, (list) => ['worker-a', 'worker-b'].every((id) => list.some((w) => w.id === id)));
    expect(workers.map((w) => w.id).sort()).toEqual(['worker-a', 'worker-b']);
    for (const worker of workers) {
      expect(worker).toMatchObject({ host: os.hostname(), capacity: 2, running: 0, draining: false });
      expect(Date.parse(worker.last_heartbeat_at)).toBeGreaterThanOrEqual(Date.parse(worker.started_at));
    }
    // The heartbeat moves on (every third of the 3 s lease).
    const first = Math.max(...workers.map((w) => Date.parse(w.last_heartbeat_at)));
    await waitForWorkers(c.api.url, admin, (list) => list.length === 2 && list.every((w) => Date.parse(w.last_heartbeat_at) > first));

    const asTeam = await api<{ error: { code: string } }>(c.api.url, c.token, 'GET', '/v1/admin/workers');
    expect(asTeam).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    const anonymous = await fetch(`${c.api.url}/v1/admin/workers`);
    expect(anonymous.status).toBe(401);
  });
});
