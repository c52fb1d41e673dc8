/**
 * `pnpm bench:cli-start`: prints median and p95 of how long the built `rlm` command takes to start —
 * `--version`, `--help` and each command's `--help`, from spawn to exit, next to `node -e 0` — and,
 * with a Docker engine, how soon a run gets going: `rlm demo`'s first line on stderr, and the first
 * model request of a run, as a provider sees it. The demo's scripted model is in-process, where
 * nothing outside sees its requests; so that row runs `rlm` with the OpenAI-compatible backend
 * against a local fake on 127.0.0.1 and times the request's arrival there. `-- --no-docker` skips
 * the rows that need Docker; BENCH_RUNS sets the runs of the start-up rows (default 21).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSourceHooks } from './source-hooks.ts';
import { formatRow, summarize } from './stats.ts';

registerSourceHooks();
const { startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');

/** BENCH_RLM_BIN names another build's launcher, e.g. a copy of the tree before a change, to compare. */
const RLM_BIN = process.env.BENCH_RLM_BIN ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 21);
/** Runs of the rows that start sandboxes: each is a whole run of seconds. */
const DOCKER_RUNS = 7;
const withDocker = !process.argv.includes('--no-docker');

const scratch = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-start-bench-'));

/** The environment of every child: no provider keys or RLM_* settings of this shell. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$/.test(key)) env[key] = value;
  return { ...env, ...extra };
}

interface Timed {
  /** Milliseconds from spawn to the moment asked for (exit by default). */
  ms: number;
  code: number | null;
}

/**
 * Spawns `node args…` in the scratch directory and times it from spawn to what `until` waits for
 * (it resolves with the time it saw it), or to its exit; either way the process runs to its end.
 */
async function timeProcess(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; until?: (child: ChildProcess, started: number) => Promise<number> } = {},
): Promise<Timed> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { env: options.env ?? childEnv(), cwd: scratch, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<Timed>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: performance.now() - started, code }));
  });
  const moment = options.until?.(child, started);
  child.stderr?.resume();
  const [exit, ms] = await Promise.all([exited, moment ?? exited.then((e) => e.ms)]);
  return { ms, code: exit.code };
}

async function row(name: string, args: string[], targetMs: number, runs = RUNS, options: Parameters<typeof timeProcess>[1] = {}): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { ms, code } = await timeProcess(args, options);
    if (code !== 0) throw new Error(`${name}: exit code ${code}, expected 0`);
    samples.push(ms);
  }
  console.log(formatRow(name, summarize(samples), targetMs));
}

/** Resolves with the time of the child's first byte on stderr. */
function firstStderr(child: ChildProcess, started: number): Promise<number> {
  return new Promise((resolve, reject) => {
    child.stderr?.once('data', () => resolve(performance.now() - started));
    child.once('close', () => reject(new Error('ended without writing to stderr')));
  });
}

console.log(`rlm start-up of ${RLM_BIN}, wall time from spawn (${os.cpus().length} cores, node ${process.version})`);
try {
  await row('node -e 0 (for reference)', ['-e', '0'], 100);
  await row('rlm --version', [RLM_BIN, '--version'], 100);
  await row('rlm --help', [RLM_BIN, '--help'], 100);
  for (const command of ['view', 'sandbox', 'sandbox exec', 'doctor', 'demo'])
    await row(`rlm ${command} --help`, [RLM_BIN, ...command.split(' '), '--help'], 150);
  if (withDocker) {
    // Once first, so that a sandbox image the runs need is built before anything is timed.
    const warmUp = await timeProcess([RLM_BIN, 'demo', '--quiet']);
    if (warmUp.code !== 0) throw new Error(`rlm demo: exit code ${warmUp.code}; see \`rlm doctor\``);
    await row('rlm demo: first line on stderr', [RLM_BIN, 'demo'], 500, DOCKER_RUNS, { until: firstStderr });
    // Each run gets a fake of its own, answering at once with a cell that ends the run.
    const servers: Array<Awaited<ReturnType<typeof startFakeOpenAIServer>>> = [];
    const samples: number[] = [];
    try {
      for (let i = 0; i < DOCKER_RUNS; i++) {
        const server = await startFakeOpenAIServer(() => "```repl\nFINAL('ready')\n```");
        servers.push(server);
        const args = [
          RLM_BIN,
          'When?',
          '--context',
          'a short context',
          '--backend',
          'openai',
          '--model',
          'gpt-5-mini',
          '--base-url',
          server.baseURL,
          '--quiet',
        ];
        const until = (_child: ChildProcess, started: number) => server.whenReceived(0).then(() => performance.now() - started);
        const { ms, code } = await timeProcess(args, { env: childEnv({ OPENAI_API_KEY: 'sk-bench' }), until });
        if (code !== 0) throw new Error(`rlm run against the fake provider: exit code ${code}, expected 0`);
        samples.push(ms);
      }
    } finally {
      await Promise.all(servers.map((server) => server.close()));
    }
    console.log(formatRow('rlm run: first model request (fake provider)', summarize(samples), 1_000));
  }
} finally {
  await rm(scratch, { recursive: true, force: true });
}
