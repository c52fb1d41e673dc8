/**
 * `pnpm bench:fail-fast`: prints median and p95 of how long the `rlm` command takes, from start to
 * exit, to fail on what no retry can fix — a refused key (401), an unknown model (404), a base URL
 * where nothing listens (connection refused) — next to `rlm --version`, the command's own start.
 * The tests prove each fails at once with its message and exit code; this says how soon. Every
 * request goes to a local fake on 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerSourceHooks } from './source-hooks.ts';
import { formatRow, summarize } from './stats.ts';

registerSourceHooks();
const { closedLoopbackPort, startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');

const RLM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 7);

/** Milliseconds from spawning `rlm args…` to its exit, and its exit code. */
function timeRlm(args: string[]): Promise<{ ms: number; code: number | null }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_/.test(key)) env[key] = value;
  env.OPENAI_API_KEY = 'sk-bench-wrong-key';
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RLM_BIN, ...args], { env, cwd: os.tmpdir(), stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ ms: performance.now() - started, code }));
  });
}

async function row(name: string, args: string[], expectedCode: number, targetMs: number): Promise<void> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const { ms, code } = await timeRlm(args);
    if (code !== expectedCode) throw new Error(`${name}: exit code ${code}, expected ${expectedCode}`);
    samples.push(ms);
  }
  console.log(formatRow(name, summarize(samples), targetMs));
}

const unauthorized = await startFakeOpenAIServer(() => ({
  status: 401,
  body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } },
}));
const unknownModel = await startFakeOpenAIServer(() => ({
  status: 404,
  body: { error: { message: 'The model `gpt-9` does not exist', type: 'invalid_request_error', code: 'model_not_found' } },
}));
const refusedPort = await closedLoopbackPort();
const run = (baseUrl: string, ...extra: string[]) => ['What is it?', '--context', 'some text', '--backend', 'openai', '--base-url', baseUrl, ...extra];

console.log(`rlm fail-fast, ${RUNS} runs each, wall time from spawn to exit (${os.cpus().length} cores)`);
try {
  await row('rlm --version (the start itself)', ['--version'], 0, 1_000);
  await row('refused key (401) -> exit 3', run(unauthorized.baseURL), 3, 3_000);
  await row('unknown model (404) -> exit 3', run(unknownModel.baseURL, '--model', 'gpt-9'), 3, 3_000);
  await row('connection refused -> exit 3', run(`http://127.0.0.1:${refusedPort}/v1`, '--timeout', '600'), 3, 5_000);
} finally {
  await unauthorized.close();
  await unknownModel.close();
}
