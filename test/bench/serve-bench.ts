/**
 * `pnpm bench:serve`: what `rlm serve` carries on this machine. 200 runs (BENCH_RUNS) submitted at
 * once over HTTP to the built `rlm serve` against a zero-latency fake provider on 127.0.0.1 whose
 * model answers each run with one ```repl cell and FINAL (each run: one model request, one sandbox
 * from the warm pool), on the embedded database and on PostgreSQL (a throwaway cluster from
 * Debian's postgresql package). Prints runs per second, median and p95 of the queue wait
 * (accepted → claimed) and of the end-to-end latency (accepted → finished), the server's RSS
 * (median and peak of samples every 100 ms), and sandboxes started per second (the engine's
 * container `start` events).
 *
 * Needs a Docker engine, PostgreSQL's binaries and a build (`pnpm bench:serve` builds first).
 * BENCH_MAX_SANDBOXES (default 8) bounds the pool; the team may run as many runs at once.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSourceHooks } from './source-hooks.ts';
import { summarize } from './stats.ts';

registerSourceHooks();
const { startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');
const { startPostgres } = await import('../support/postgres.ts');
const { createDockerClient } = await import('../../orchestrator/src/sandbox/docker-client.ts');

const RLM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 200);
const MAX_SANDBOXES = Number(process.env.BENCH_MAX_SANDBOXES ?? 8);

const env: NodeJS.ProcessEnv = { OPENAI_API_KEY: 'sk-bench' };
for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$|^DATABASE_URL$/.test(key)) env[key] = value;

const provider = await startFakeOpenAIServer(() => '```repl\nFINAL("chars=" + String(context).length);\n```');

function rlm(args: string[], cwd: string): ChildProcess {
  return spawn(process.execPath, [RLM_BIN, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function rlmOnce(args: string[], cwd: string): Promise<string> {
  const child = rlm(args, cwd);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d));
  child.stderr?.on('data', (d: Buffer) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`rlm ${args.join(' ')} exited ${code}: ${stderr}`);
  return stdout.trim();
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

interface RunJson {
  id: string;
  status: string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

async function bench(label: string, databaseArgs: string[]): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-serve-bench-'));
  await writeFile(
    path.join(dir, 'rlm.config.yaml'),
    `root:\n  backend: openai\n  baseURL: ${provider.baseURL}\n  model: gpt-5-mini\nlimits:\n  maxIterations: 2\n`,
  );
  await rlmOnce(['serve', 'teams', 'create', 'bench', '--max-concurrent-runs', String(MAX_SANDBOXES), '--max-queued', String(RUNS + 10), ...databaseArgs], dir);
  const token = await rlmOnce(['serve', 'tokens', 'create', '--team', 'bench', ...databaseArgs], dir);
  const server = rlm(['serve', '--port', '0', '--max-sandboxes', String(MAX_SANDBOXES), '--warm', String(Math.min(4, MAX_SANDBOXES)), ...databaseArgs], dir);
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    server.stderr?.on('data', (d: Buffer) => {
      stderr += d;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    server.on('exit', (code) => reject(new Error(`rlm serve exited ${code}: ${stderr}`)));
  });
  server.stdout?.resume();
  const pid = server.pid as number;
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

  // Container starts during the measured window, from the engine's event stream.
  const docker = createDockerClient();
  const events = (await docker.getEvents({ filters: { type: ['container'], event: ['start'], label: ['rlm.sandbox'] } })) as NodeJS.ReadableStream;
  let starts = 0;
  events.on('data', (chunk: Buffer) => {
    starts += chunk
      .toString('utf8')
      .split('\n')
      .filter((line) => line.trim() !== '').length;
  });

  const rss: number[] = [];
  const sampler = setInterval(() => {
    rssMiB(pid).then(
      (v) => rss.push(v),
      () => {},
    );
  }, 100);
  const started = performance.now();
  const ids = await Promise.all(
    Array.from({ length: RUNS }, async (_, i) => {
      const response = await fetch(`${url}/v1/runs`, { method: 'POST', headers, body: JSON.stringify({ query: `run ${i}`, context: 'x'.repeat(100 + i) }) });
      if (response.status !== 202) throw new Error(`submit ${i}: ${response.status} ${await response.text()}`);
      return ((await response.json()) as { id: string }).id;
    }),
  );
  const pending = new Set(ids);
  const runs: RunJson[] = [];
  while (pending.size > 0) {
    for (const id of [...pending]) {
      const run = (await (await fetch(`${url}/v1/runs/${id}`, { headers })).json()) as RunJson;
      if (['succeeded', 'failed', 'cancelled'].includes(run.status)) {
        pending.delete(id);
        runs.push(run);
      }
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const wallSeconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  (events as unknown as { destroy?: () => void }).destroy?.();
  server.kill('SIGTERM');
  await new Promise((resolve) => server.on('exit', resolve));

  const failed = runs.filter((r) => r.status !== 'succeeded');
  const t = (s: string | null) => Date.parse(s as string);
  const wait = summarize(runs.map((r) => t(r.started_at) - t(r.created_at)));
  const e2e = summarize(runs.map((r) => t(r.finished_at) - t(r.created_at)));
  const memory = summarize(rss);
  const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
  console.log(`\n${label}: ${RUNS} runs, pool of ${MAX_SANDBOXES} sandboxes, ${failed.length} not succeeded`);
  console.log(`  throughput                 ${(RUNS / wallSeconds).toFixed(2)} runs/s (${wallSeconds.toFixed(1)} s for all)`);
  console.log(`  queue wait                 median ${fmt(wait.median).padStart(8)}   p95 ${fmt(wait.p95).padStart(8)}`);
  console.log(`  end to end                 median ${fmt(e2e.median).padStart(8)}   p95 ${fmt(e2e.p95).padStart(8)}`);
  console.log(`  server RSS                 median ${memory.median.toFixed(0).padStart(5)} MiB   peak ${Math.max(...rss).toFixed(0)} MiB`);
  console.log(`  sandboxes started          ${(starts / wallSeconds).toFixed(2)} /s (${starts} in all)`);
}

await bench('embedded database (node:sqlite)', []);
const pg = await startPostgres({ durable: true });
try {
  await bench('PostgreSQL', ['--database', pg.url]);
} finally {
  await pg.close();
  await provider.close();
}
