/**
 * `pnpm bench:scale-out`: how `rlm serve` grows with worker processes over one PostgreSQL. For 1, 2
 * and 4 workers (BENCH_WORKERS, e.g. `1,2,4,8`): a fresh database, one `--role api` process and
 * that many `--role worker` processes, 200 runs (BENCH_RUNS) submitted at once over HTTP against a
 * zero-latency fake provider on 127.0.0.1 whose model answers each run with one ```repl cell and
 * FINAL (one model request, one sandbox per run). Prints runs per second, median and p95 of the
 * queue wait (accepted → claimed) and of accepted → finished, and the database's load:
 * statements per second and per run (pg_stat_statements), transactions (pg_stat_database
 * xact_commit), the statements' execution time and PostgreSQL's CPU (its processes' CPU time), each
 * also while the workers idle (heartbeats, polling), so the per-run figures leave that out. From
 * PostgreSQL's CPU per run follows the rate at which one PostgreSQL core would be the limit.
 *
 * Each worker stands for a machine with BENCH_MAX_SANDBOXES (default 4) sandboxes, 2 of them warm.
 * By default every worker runs on this machine's Docker engine; BENCH_ENGINES=2 puts every second
 * worker on a second engine of its own (test/support/second-docker.ts: needs root). Either way they
 * share this machine's cores, so throughput here is bounded by the CPU that containers cost, not by
 * the number of workers; the database figures say how far PostgreSQL is from being the limit.
 *
 * Needs a Docker engine, PostgreSQL's binaries (Debian's postgresql package, with its
 * pg_stat_statements; without it only transactions and CPU are measured) and a build
 * (`pnpm bench:scale-out` builds first).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { registerSourceHooks } from './source-hooks.ts';
import { summarize } from './stats.ts';

registerSourceHooks();
const { startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');
const { startPostgres } = await import('../support/postgres.ts');
const { startSecondDocker } = await import('../support/second-docker.ts');
const { createDockerClient } = await import('../../orchestrator/src/sandbox/docker-client.ts');
const { listSandboxes } = await import('../../orchestrator/src/sandbox/reaper.ts');

const run = promisify(execFile);
const RLM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2,4').split(',').map(Number);
const MAX_SANDBOXES = Number(process.env.BENCH_MAX_SANDBOXES ?? 4);
const WARM = Math.min(2, MAX_SANDBOXES);
const ENGINES = Number(process.env.BENCH_ENGINES ?? 1);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 5);
const POLL_MS = 500;
/** /proc/<pid>/stat's clock ticks per second (`getconf CLK_TCK`; 100 on Linux). */
const TICKS = 100;

const env: NodeJS.ProcessEnv = { OPENAI_API_KEY: 'sk-bench' };
for (const [key, value] of Object.entries(process.env))
  if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$|^DATABASE_URL$|^DOCKER_HOST$/.test(key)) env[key] = value;

const provider = await startFakeOpenAIServer(() => '```repl\nFINAL("chars=" + String(context).length);\n```');

// ---- processes -----------------------------------------------------------------------------

interface Serve {
  child: ChildProcess;
  url: string;
}

async function rlmOnce(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run(process.execPath, [RLM_BIN, ...args], { env, cwd }).catch((error: { stderr?: string; message: string }) => {
    throw new Error(`rlm ${args.join(' ')}: ${error.stderr ?? error.message}`);
  });
  return stdout.trim();
}

async function serve(args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<Serve> {
  const child = spawn(process.execPath, [RLM_BIN, 'serve', '--port', '0', ...args], { env: { ...env, ...extraEnv }, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.resume();
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    child.on('exit', (code) => reject(new Error(`rlm serve ${args.join(' ')} exited ${code}: ${stderr}`)));
  });
  return { child, url };
}

async function stop(processes: Serve[]): Promise<void> {
  await Promise.all(
    processes.map(
      ({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    ),
  );
}

// ---- CPU -----------------------------------------------------------------------------------

/** utime + stime of a process, in ticks (0 once it is gone). */
function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The machine's busy and total ticks (all cores). */
function machineTicks(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** The postmaster and its children (backends, background processes). */
function postgresPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

/**
 * CPU seconds spent from now until `end()` by the groups' processes and the machine. Processes are
 * looked up again at the end (PostgreSQL's backends come and go); a process's ticks before the
 * window count only if it existed at the start.
 */
function cpuWindow(groups: Record<string, () => number[]>) {
  const start = new Map<number, number>();
  for (const lookup of Object.values(groups)) for (const pid of lookup()) start.set(pid, processTicks(pid));
  const machine = machineTicks();
  const t0 = performance.now();
  return () => {
    const seconds = (performance.now() - t0) / 1000;
    const used: Record<string, number> = {};
    for (const [name, lookup] of Object.entries(groups)) {
      used[name] = lookup().reduce((sum, pid) => sum + (processTicks(pid) - (start.get(pid) ?? 0)), 0) / TICKS;
    }
    const after = machineTicks();
    return { seconds, used, machineBusy: (after.busy - machine.busy) / TICKS, machineCores: (after.total - machine.total) / TICKS / seconds };
  };
}

// ---- PostgreSQL's counters -------------------------------------------------------------------

interface DbCounters {
  statements: number;
  /** Without BEGIN/COMMIT/ROLLBACK. */
  queries: number;
  /**
   * The statements' execution time: wall clock inside PostgreSQL, lock waits included (a COMMIT's
   * WAL flush is not: it happens after the statement is accounted).
   */
  execMs: number;
  commits: number;
  top: { query: string; calls: number; ms: number }[];
}

async function dbCounters(client: pg.Client, statementsAvailable: boolean): Promise<DbCounters> {
  const xact = await client.query<{ n: string }>('SELECT xact_commit::text AS n FROM pg_stat_database WHERE datname = current_database()');
  const counters: DbCounters = { statements: 0, queries: 0, execMs: 0, commits: Number(xact.rows[0]?.n ?? 0), top: [] };
  if (!statementsAvailable) return counters;
  const rows = await client.query<{ query: string; calls: string; total_exec_time: number }>(
    `SELECT query, calls::text, total_exec_time FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_database%'`,
  );
  for (const row of rows.rows) {
    const calls = Number(row.calls);
    counters.statements += calls;
    if (!/^\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\b/i.test(row.query)) counters.queries += calls;
    counters.execMs += row.total_exec_time;
    counters.top.push({ query: row.query.replace(/\s+/g, ' ').slice(0, 90), calls, ms: row.total_exec_time });
  }
  counters.top.sort((a, b) => b.calls - a.calls);
  return counters;
}

/**
 * Loads pg_stat_statements into the cluster (a restart with shared_preload_libraries): the
 * benchmark's own change to its throwaway cluster. False when the extension is not installed.
 */
async function enableStatements(url: string): Promise<{ dataDir: string; available: boolean }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const dataDir = (await client.query<{ data_directory: string }>('SHOW data_directory')).rows[0]?.data_directory as string;
  const available = (await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")).rowCount === 1;
  if (available) await client.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'");
  await client.end();
  if (!available) return { dataDir, available };
  const lib = '/usr/lib/postgresql';
  const version = readdirSync(lib)
    .filter((v) => existsSync(path.join(lib, v, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a))[0] as string;
  const pgCtl = path.join(lib, version, 'bin', 'pg_ctl');
  const asRoot = process.getuid?.() === 0;
  const args = ['restart', '-D', dataDir, '-m', 'fast', '-w', '-l', path.join(path.dirname(dataDir), 'postgres.log')];
  await run(asRoot ? 'runuser' : pgCtl, asRoot ? ['-u', 'postgres', '--', pgCtl, ...args] : args, { cwd: path.dirname(dataDir) });
  return { dataDir, available };
}

// ---- one measurement -------------------------------------------------------------------------

interface RunJson {
  id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** Every run of the team, through the API's list (the way a client would poll). */
async function listRuns(url: string, headers: Record<string, string>): Promise<RunJson[]> {
  const runs: RunJson[] = [];
  let cursor: string | null = null;
  do {
    const query: string = `/v1/runs?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = (await (await fetch(`${url}${query}`, { headers })).json()) as { data: RunJson[]; next_cursor: string | null };
    runs.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return runs;
}

const done = (r: RunJson) => ['succeeded', 'failed', 'cancelled'].includes(r.status);

type CounterKey = 'statements' | 'queries' | 'commits' | 'execMs';

interface Row {
  workers: number;
  runsPerSecond: number;
  wallSeconds: number;
  notSucceeded: number;
  wait: { median: number; p95: number };
  e2e: { median: number; p95: number };
  /** Statements/s, transactions/s, exec ms/s, PostgreSQL CPU cores: while idle and while running. */
  idle: { statementsPerSecond: number; commitsPerSecond: number; execMsPerSecond: number; pgCores: number };
  busy: {
    statementsPerSecond: number;
    queriesPerSecond: number;
    commitsPerSecond: number;
    execMsPerSecond: number;
    pgCores: number;
  };
  perRun: { statements: number; queries: number; commits: number; execMs: number; pgCpuMs: number };
  cpu: { machine: number; machineCores: number; api: number; workers: number; pg: number };
  top: { query: string; calls: number; ms: number }[];
}

async function bench(workerCount: number, pgUrl: { newDatabase(): Promise<string> }, dataDir: string, statements: boolean, second?: string): Promise<Row> {
  const database = await pgUrl.newDatabase();
  const databaseArgs = ['--database', database];
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  if (statements) await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const dir = await mkdtemp(path.join(os.tmpdir(), `rlm-scale-out-bench-${workerCount}-`));
  await writeFile(
    path.join(dir, 'rlm.config.yaml'),
    `root:\n  backend: openai\n  baseURL: ${provider.baseURL}\n  model: gpt-5-mini\nlimits:\n  maxIterations: 2\n`,
  );
  await rlmOnce(
    ['serve', 'teams', 'create', 'bench', '--max-concurrent-runs', String(workerCount * MAX_SANDBOXES), '--max-queued', String(RUNS + 10), ...databaseArgs],
    dir,
  );
  const token = await rlmOnce(['serve', 'tokens', 'create', '--team', 'bench', ...databaseArgs], dir);
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  const apiProcess = await serve(['--role', 'api', ...databaseArgs], dir);
  const workers: (Serve & { host?: string })[] = [];
  const processes: Serve[] = [apiProcess];
  try {
    for (let i = 0; i < workerCount; i++) {
      const wdir = path.join(dir, `worker-${i}`);
      await mkdir(wdir);
      await writeFile(
        path.join(wdir, 'rlm.config.yaml'),
        `root:\n  backend: openai\n  baseURL: ${provider.baseURL}\n  model: gpt-5-mini\nlimits:\n  maxIterations: 2\n`,
      );
      const host = second !== undefined && i % 2 === 1 ? second : undefined;
      const worker = await serve(
        ['--role', 'worker', ...databaseArgs, '--worker-id', `bench-${i}`, '--max-sandboxes', String(MAX_SANDBOXES), '--warm', String(WARM)],
        wdir,
        host ? { DOCKER_HOST: host } : {},
      );
      workers.push({ ...worker, ...(host ? { host } : {}) });
      processes.push(worker);
    }
    // Every worker's pool warm before measuring: its warm sandboxes are up on its engine.
    const deadline = Date.now() + 300_000;
    for (const worker of workers) {
      const docker = createDockerClient(worker.host ? { dockerHost: worker.host } : {});
      const pid = String(worker.child.pid);
      while ((await listSandboxes({ docker })).filter((c) => c.owner.split(':')[1] === pid && c.state === 'running').length < WARM) {
        if (Date.now() > deadline) throw new Error(`worker ${pid}'s pool never warmed`);
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }

    const groups = {
      pg: () => postgresPids(dataDir),
      api: () => [apiProcess.child.pid as number],
      workers: () => workers.map((w) => w.child.pid as number),
    };
    const reset = async () => {
      if (statements) await client.query('SELECT pg_stat_statements_reset()');
    };

    // Idle: the workers' heartbeats and polling, and the benchmark's own polling of the list.
    await reset();
    const idleStart = await dbCounters(client, statements);
    const idleCpu = cpuWindow(groups);
    const idleUntil = Date.now() + IDLE_SECONDS * 1000;
    while (Date.now() < idleUntil) {
      await listRuns(apiProcess.url, headers);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const idleEnd = await dbCounters(client, statements);
    const idle = idleCpu();

    await reset();
    const busyStart = await dbCounters(client, statements);
    const busyCpu = cpuWindow(groups);
    const started = performance.now();
    await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        const response = await fetch(`${apiProcess.url}/v1/runs`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ query: `run ${i}`, context: 'x'.repeat(100 + i) }),
        });
        if (response.status !== 202) throw new Error(`submit ${i}: ${response.status} ${await response.text()}`);
      }),
    );
    let runs: RunJson[] = [];
    for (;;) {
      runs = await listRuns(apiProcess.url, headers);
      if (runs.length >= RUNS && runs.every(done)) break;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const wallSeconds = (performance.now() - started) / 1000;
    const busyEnd = await dbCounters(client, statements);
    const busy = busyCpu();

    const t = (s: string | null) => Date.parse(s as string);
    const wait = summarize(runs.map((r) => t(r.started_at) - t(r.created_at)));
    const e2e = summarize(runs.map((r) => t(r.finished_at) - t(r.created_at)));
    const idleRate = (key: CounterKey) => (idleEnd[key] - idleStart[key]) / idle.seconds;
    const busyDelta = (key: CounterKey) => busyEnd[key] - busyStart[key];
    // Per run: what the window cost beyond what the same window costs idle.
    const perRun = (key: CounterKey) => (busyDelta(key) - idleRate(key) * busy.seconds) / RUNS;
    const idlePgCores = (idle.used.pg ?? 0) / idle.seconds;
    return {
      workers: workerCount,
      runsPerSecond: RUNS / wallSeconds,
      wallSeconds,
      notSucceeded: runs.filter((r) => r.status !== 'succeeded').length,
      wait,
      e2e,
      idle: { statementsPerSecond: idleRate('statements'), commitsPerSecond: idleRate('commits'), execMsPerSecond: idleRate('execMs'), pgCores: idlePgCores },
      busy: {
        statementsPerSecond: busyDelta('statements') / busy.seconds,
        queriesPerSecond: busyDelta('queries') / busy.seconds,
        commitsPerSecond: busyDelta('commits') / busy.seconds,
        execMsPerSecond: busyDelta('execMs') / busy.seconds,
        pgCores: (busy.used.pg ?? 0) / busy.seconds,
      },
      perRun: {
        statements: perRun('statements'),
        queries: perRun('queries'),
        commits: perRun('commits'),
        execMs: perRun('execMs'),
        pgCpuMs: (((busy.used.pg ?? 0) - idlePgCores * busy.seconds) * 1000) / RUNS,
      },
      cpu: {
        machine: busy.machineBusy / busy.seconds,
        machineCores: busy.machineCores,
        api: (busy.used.api ?? 0) / busy.seconds,
        workers: (busy.used.workers ?? 0) / busy.seconds,
        pg: (busy.used.pg ?? 0) / busy.seconds,
      },
      top: busyEnd.top.map((q) => ({ query: q.query, calls: q.calls / RUNS, ms: q.ms / RUNS })),
    };
  } finally {
    await stop(processes);
    await client.end();
  }
}

// ---- main ----------------------------------------------------------------------------------

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
const pgServer = await startPostgres({ durable: true });
const engine = ENGINES >= 2 ? await startSecondDocker('bench') : undefined;
try {
  const { dataDir, available } = await enableStatements(pgServer.url);
  const placement = engine ? `alternately on this machine's engine and a second engine (${engine.host})` : "all on this machine's Docker engine";
  console.log(
    `${RUNS} runs per measurement, zero-latency fake provider; workers ${placement}, ${MAX_SANDBOXES} sandboxes (${WARM} warm) each; ` +
      `${os.cpus().length} cores shared by everything; PostgreSQL ${available ? 'with pg_stat_statements' : 'without pg_stat_statements (transactions and CPU only)'}, fsync on`,
  );
  const rows: Row[] = [];
  for (const count of WORKER_COUNTS) {
    const row = await bench(count, pgServer, dataDir, available, engine?.host);
    rows.push(row);
    console.log(`\n${count} worker${count === 1 ? '' : 's'}: ${RUNS} runs, ${row.notSucceeded} not succeeded`);
    console.log(`  throughput                 ${row.runsPerSecond.toFixed(2)} runs/s (${row.wallSeconds.toFixed(1)} s for all)`);
    console.log(`  queue wait                 median ${fmt(row.wait.median).padStart(8)}   p95 ${fmt(row.wait.p95).padStart(8)}`);
    console.log(`  end to end                 median ${fmt(row.e2e.median).padStart(8)}   p95 ${fmt(row.e2e.p95).padStart(8)}`);
    console.log(
      `  PostgreSQL while running   ${row.busy.statementsPerSecond.toFixed(0)} statements/s (${row.busy.queriesPerSecond.toFixed(0)} without BEGIN/COMMIT), ` +
        `${row.busy.commitsPerSecond.toFixed(0)} commits/s, in statements ${row.busy.execMsPerSecond.toFixed(1)} ms/s, CPU ${(row.busy.pgCores * 100).toFixed(1)} % of a core`,
    );
    console.log(
      `  PostgreSQL while idle      ${row.idle.statementsPerSecond.toFixed(1)} statements/s, ${row.idle.commitsPerSecond.toFixed(1)} commits/s, ` +
        `in statements ${row.idle.execMsPerSecond.toFixed(2)} ms/s, CPU ${(row.idle.pgCores * 100).toFixed(1)} % of a core (heartbeats, polling, this benchmark's list polling)`,
    );
    console.log(
      `  per run (beyond idle)      ${row.perRun.statements.toFixed(1)} statements (${row.perRun.queries.toFixed(1)} without BEGIN/COMMIT), ` +
        `${row.perRun.commits.toFixed(1)} commits, ${row.perRun.execMs.toFixed(1)} ms in statements, ${row.perRun.pgCpuMs.toFixed(1)} ms of PostgreSQL CPU`,
    );
    console.log(
      `  CPU (cores of ${row.cpu.machineCores.toFixed(0)})            machine ${row.cpu.machine.toFixed(2)}: api ${row.cpu.api.toFixed(2)}, workers ${row.cpu.workers.toFixed(2)}, ` +
        `PostgreSQL ${row.cpu.pg.toFixed(2)}, the rest (dockerd, containerd, containers, others) ${(row.cpu.machine - row.cpu.api - row.cpu.workers - row.cpu.pg).toFixed(2)}`,
    );
    if (row.top.length > 0) {
      console.log('  most frequent statements, calls per run:');
      for (const q of row.top.slice(0, 6)) console.log(`    ${q.calls.toFixed(2).padStart(6)}  ${q.query}`);
      console.log('  longest statements, ms per run (wall clock in PostgreSQL, lock waits included):');
      for (const q of [...row.top].sort((a, b) => b.ms - a.ms).slice(0, 4)) console.log(`    ${q.ms.toFixed(2).padStart(6)}  ${q.query}`);
    }
  }
  console.log('\nworkers | runs/s | queue wait median / p95 | PostgreSQL statements/s | commits/s | PostgreSQL CPU | CPU per run | one PostgreSQL core at');
  for (const row of rows) {
    const limit = row.perRun.pgCpuMs > 0 ? `${(1000 / row.perRun.pgCpuMs).toFixed(0)} runs/s` : 'n/a';
    console.log(
      `${String(row.workers).padStart(7)} | ${row.runsPerSecond.toFixed(2).padStart(6)} | ${`${fmt(row.wait.median)} / ${fmt(row.wait.p95)}`.padStart(23)} | ` +
        `${row.busy.statementsPerSecond.toFixed(0).padStart(23)} | ${row.busy.commitsPerSecond.toFixed(0).padStart(9)} | ${`${(row.busy.pgCores * 100).toFixed(1)} %`.padStart(14)} | ` +
        `${`${row.perRun.pgCpuMs.toFixed(1)} ms`.padStart(11)} | ${limit}`,
    );
  }
} finally {
  await engine?.close();
  await pgServer.close();
  await provider.close();
}
