/**
 * `pnpm bench:eval`: what `rlm eval` costs on top of the runs it makes, on this machine. 100 needle
 * tasks (BENCH_TASKS) against a zero-latency fake provider on 127.0.0.1 whose model solves each in
 * one ```repl cell (each task: one model request, one fresh sandbox), run two ways:
 *
 * - `rlm eval --concurrency 8`: total wall time, each run's duration (the runner's `duration_ms`),
 *   and the harness overhead per task: the time a concurrency slot spends outside a run
 *   ((wall × concurrency − Σ run durations) / tasks: process start, dataset, scheduling, scoring,
 *   writing results, the summary and report);
 * - 100 sequential `rlm "query" --context-file task.txt` invocations, as a shell loop does it.
 *
 * Prints median and p95. Needs a Docker engine and a build (`pnpm bench:eval` builds first).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSourceHooks } from './source-hooks.ts';
import { summarize } from './stats.ts';

registerSourceHooks();
const { startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');

const RLM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');
const TASKS = Number(process.env.BENCH_TASKS ?? 100);
const CONCURRENCY = 8;
const NEEDLE = /The special magic number for [^.\n]*? is (\d+)\./;

const scratch = await mkdtemp(path.join(os.tmpdir(), 'rlm-eval-bench-'));
const env: NodeJS.ProcessEnv = { OPENAI_API_KEY: 'sk-bench' };
for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$/.test(key)) env[key] = value;

const server = await startFakeOpenAIServer((body) => {
  const rlmRun = body.messages.some((m) => m.role === 'system' && String(m.content).includes('FINAL_VAR'));
  if (rlmRun) return `\`\`\`repl\nconst m = context.match(${NEEDLE.toString()});\nFINAL(m ? m[1] : "not found");\n\`\`\``;
  return NEEDLE.exec(body.messages.map((m) => String(m.content)).join('\n'))?.[1] ?? 'unknown';
});
const provider = ['--backend', 'openai', '--base-url', server.baseURL, '--model', 'gpt-5-mini'];

function run(args: string[], options: { stdout?: boolean } = {}): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  const started = performance.now();
  const child: ChildProcess = spawn(process.execPath, [RLM_BIN, ...args], { env, cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    if (options.stdout !== false) stdout += d;
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: performance.now() - started, code, stdout, stderr }));
  });
}

const fmt = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`);
const row = (name: string, samples: number[]) => {
  const s = summarize(samples);
  console.log(`${name.padEnd(52)} median ${fmt(s.median).padStart(9)}   p95 ${fmt(s.p95).padStart(9)}   n=${s.n}`);
};

try {
  console.log(`rlm eval benchmark — ${TASKS} needle tasks, zero-latency fake provider, node ${process.version}\n`);
  const generated = await run(['eval', 'generate', 'niah', '--n', String(TASKS), '--context-chars', '2000', '--seed', '1', '--out', 'niah.jsonl']);
  if (generated.code !== 0) throw new Error(`rlm eval generate failed: ${generated.stderr}`);

  // Warm-up: builds the sandbox image if it is missing, and fills the OS caches (not timed).
  const warm = await run(['eval', 'niah.jsonl', '--limit', '2', '--out', 'warm', '--quiet', ...provider]);
  if (warm.code !== 0) throw new Error(`warm-up failed: ${warm.stderr}`);

  // 1. rlm eval --concurrency 8
  const requestsBefore = server.requests.length;
  const evaluation = await run(['eval', 'niah.jsonl', '--out', 'eval', '--concurrency', String(CONCURRENCY), '--quiet', '--json', ...provider]);
  if (evaluation.code !== 0) throw new Error(`rlm eval exited ${evaluation.code}: ${evaluation.stderr}`);
  const summary = JSON.parse(evaluation.stdout) as { methods: { rlm: { accuracy: number } } };
  const lines = (await readFile(path.join(scratch, 'eval', 'results.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { duration_ms: number; task_id: string });
  const durations = lines.map((line) => line.duration_ms);
  const busy = durations.reduce((a, b) => a + b, 0);
  const overhead = (evaluation.ms * CONCURRENCY - busy) / lines.length;
  console.log(
    `rlm eval --concurrency ${CONCURRENCY}: ${lines.length} tasks, accuracy ${summary.methods.rlm.accuracy}, ${server.requests.length - requestsBefore} model requests`,
  );
  console.log(`  total wall time                                  ${fmt(evaluation.ms)}   (${((lines.length / evaluation.ms) * 1000).toFixed(2)} tasks/s)`);
  row('  run duration per task (duration_ms)', durations);
  console.log(`  harness overhead per task (slot time outside runs) ${fmt(overhead)}`);

  // 2. The same tasks as sequential `rlm` invocations.
  const tasks = (await readFile(path.join(scratch, 'niah.jsonl'), 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { id: string; query: string; context: string; answer: string });
  await mkdir(path.join(scratch, 'contexts'), { recursive: true });
  const samples: number[] = [];
  let right = 0;
  const started = performance.now();
  for (const task of tasks) {
    const file = path.join(scratch, 'contexts', `${task.id}.txt`);
    await writeFile(file, task.context);
    const one = await run([task.query, '--context-file', file, '--quiet', ...provider]);
    if (one.code !== 0) throw new Error(`rlm exited ${one.code}: ${one.stderr}`);
    if (one.stdout.trim() === task.answer) right += 1;
    samples.push(one.ms);
  }
  const sequential = performance.now() - started;
  console.log(`\n${tasks.length} sequential rlm invocations: ${right}/${tasks.length} right`);
  console.log(`  total wall time                                  ${fmt(sequential)}   (${((tasks.length / sequential) * 1000).toFixed(2)} tasks/s)`);
  row('  one invocation, spawn to exit', samples);
  console.log(`\nrlm eval is ${(sequential / evaluation.ms).toFixed(1)}× faster in wall time than the sequential loop.`);
} finally {
  await server.close();
  await rm(scratch, { recursive: true, force: true });
}
