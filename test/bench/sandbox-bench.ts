/**
 * `pnpm bench:sandbox`: prints median and p95 of the sandbox's hot paths on this machine, how
 * long past its timeout the result of a cell that runs away arrives, and how soon a sandbox's
 * container is gone after its host process dies or its call is aborted (the time guarantees the
 * tests leave out: they prove what happens at a deadline, not when).
 * Needs a Docker engine; builds the sandbox image first if it is missing (not timed).
 *
 *   pnpm bench:sandbox                      under the engine's default runtime (runc)
 *   pnpm bench:sandbox -- --runtime runsc   every sandbox under that OCI runtime, e.g. gVisor's
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { AbortedError, Sandbox, createDockerClient, ensureSandboxImage, pingDocker, type SubcallHandler } from 'rlm';
import { containerRemoved, startSandboxHost } from '../support/host-death.ts';
import { TEST_RUNTIME_ENV } from '../support/runtime.ts';
import { formatRow, summarize } from './stats.ts';

// `pnpm bench:sandbox -- --runtime runsc` may hand the script the `--` too.
const argv = process.argv.slice(2);
const { values: flags } = parseArgs({
  args: argv[0] === '--' ? argv.slice(1) : argv,
  options: { runtime: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  strict: true,
});
if (flags.help) {
  console.log("usage: pnpm bench:sandbox [-- --runtime NAME]   (NAME: an OCI runtime of the engine, e.g. runsc; default: the engine's default)");
  process.exit(0);
}
/** Spread into every Sandbox.create: the runtime asked for, or nothing (the engine's default). */
const runtimeOption = flags.runtime ? { runtime: flags.runtime } : {};

const docker = createDockerClient();
await pingDocker(docker);
const { tag } = await ensureSandboxImage({ docker });

const instant: SubcallHandler = async (request) => ({
  outcomes: request.prompts.map((prompt) => ({ ok: true as const, text: `echo:${prompt.length}` })),
});

async function time(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

async function repeat(n: number, fn: () => Promise<unknown>, warmup = 3): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await time(fn));
  return samples;
}

function expectOk(result: { status: string; error: { message: string } | null }) {
  if (result.status !== 'ok') throw new Error(`benchmark cell failed: ${result.error?.message}`);
}

/** The cell timeout of the deadline rows: short, since what they measure is the time past it. */
const DEADLINE_MS = 200;

/**
 * Runs `code` `n` times (after one warm-up) with a {@link DEADLINE_MS} timeout; each sample is how
 * long past the timeout its result arrived (the REPL promises within its 700 ms unresponsive grace).
 * `state` is what the cell should do to the REPL's variables: `lost` cells get the worker replaced,
 * and the replacement's start (waited for by a trivial cell) is not timed.
 */
async function overshoots(repl: Sandbox, n: number, code: string, state: 'kept' | 'lost'): Promise<number[]> {
  const samples: number[] = [];
  let unexpected = 0;
  for (let i = 0; i <= n; i++) {
    let stateLost = false;
    const ms = await time(async () => {
      const result = await repl.execute(code, { timeoutMs: DEADLINE_MS });
      if (result.status !== 'timeout') throw new Error(`benchmark cell ended with ${result.status}, not timeout: ${result.error?.message}`);
      stateLost = result.stateLost;
    });
    if (stateLost !== (state === 'lost')) unexpected++;
    if (stateLost) expectOk(await repl.execute('1', { timeoutMs: 60_000 }));
    if (i > 0) samples.push(ms - DEADLINE_MS);
  }
  if (unexpected > 0) console.log(`  (${unexpected} of ${n + 1} runs of ${JSON.stringify(code)} ${state === 'kept' ? 'lost' : 'kept'} the state)`);
  return samples;
}

/** Settles only by rejecting when `signal` aborts: a host that never answers in time. */
function never(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

const ignore = () => {};

/** Whether the engine no longer knows the container: inspect answers 404. */
function isRemoved(containerId: string): Promise<boolean> {
  return docker
    .getContainer(containerId)
    .inspect()
    .then(
      () => false,
      (error: { statusCode?: number }) => {
        if (error.statusCode === 404) return true;
        throw error;
      },
    );
}

/**
 * A host process that crashes (`test/fixtures/hold-sandbox.mjs` holding a sandbox) is SIGKILLed.
 * The sample is the time from the kill until the container is removed (the REPL server sees its
 * control channel drop, exits, and the engine removes the container).
 */
async function hostKillToRemoved(): Promise<number | undefined> {
  const { holder, containerId } = await startSandboxHost(tag);
  const container = docker.getContainer(containerId);
  try {
    // The holder (test/fixtures/hold-sandbox.mjs) starts its sandbox itself, under the runtime it
    // reads from RLM_TEST_RUNTIME if it reads one at all: a sample under another runtime than the
    // one asked for is no sample.
    if (flags.runtime && (await container.inspect()).HostConfig.Runtime !== flags.runtime) return undefined;
    const removed = containerRemoved(container, AbortSignal.timeout(60_000));
    const start = performance.now();
    holder.kill('SIGKILL');
    if (!(await removed)) throw new Error(`container ${containerId} still exists 60 s after its host was killed`);
    return performance.now() - start;
  } finally {
    holder.kill('SIGKILL');
    // Left behind only by a sample that failed before the engine removed it; else a 404, ignored.
    await container.remove({ force: true }).catch(ignore);
  }
}

/**
 * The caller aborts a running cell's `execute` as the cell's first `llm_query` reaches the host.
 * The sample is the time from the abort until `execute` rejects, which it does once the sandbox is
 * closed and its container removed (checked afterwards, untimed).
 */
async function abortToRemoved(): Promise<number> {
  const controller = new AbortController();
  let abortedAt = 0;
  const doomed = await Sandbox.create({
    docker,
    image: tag,
    ...runtimeOption,
    onSubcall: (_request, { signal }) => {
      abortedAt = performance.now();
      controller.abort();
      return never(signal);
    },
  });
  try {
    const containerId = doomed.containerId;
    if (!containerId) throw new Error('the new sandbox has no container');
    const error = await doomed.execute('llm_query("hello")', { signal: controller.signal }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = performance.now() - abortedAt;
    if (!(error instanceof AbortedError)) throw new Error(`aborted cell ended with ${String(error)}, not AbortedError`);
    if (!(await isRemoved(containerId))) throw new Error(`the aborted cell's execute settled before container ${containerId} was removed`);
    return ms;
  } finally {
    await doomed.close();
  }
}

if (flags.runtime) process.env[TEST_RUNTIME_ENV] = flags.runtime; // for the holder process of the teardown rows
const engineInfo: unknown = await docker.info();
const defaultRuntime = (engineInfo as { DefaultRuntime?: unknown }).DefaultRuntime;
const runtimeName = flags.runtime ?? `${typeof defaultRuntime === 'string' ? defaultRuntime : 'runc'} (the engine's default)`;
console.log(`rlm sandbox benchmark — image ${tag}, runtime ${runtimeName}, node ${process.version}, ${os.cpus().length} CPUs\n`);

// 1. Cold start: create a sandbox and get the first cell's result.
const coldStarts: number[] = [];
for (let i = 0; i < 12; i++) {
  let sandbox: Sandbox | undefined;
  const ms = await time(async () => {
    sandbox = await Sandbox.create({ docker, image: tag, ...runtimeOption });
    expectOk(await sandbox.execute('1 + 1'));
  });
  await sandbox?.close();
  if (i >= 2) coldStarts.push(ms); // the first runs warm the engine's caches
}
console.log(formatRow('cold start to first cell result', summarize(coldStarts), 500));

await using sandbox = await Sandbox.create({ docker, image: tag, ...runtimeOption, onSubcall: instant });

// 2. A trivial cell's round trip.
console.log(formatRow('trivial cell round trip', summarize(await repeat(300, async () => expectOk(await sandbox.execute('1')))), 2));

// 3. A cell making one llm_query that the host answers at once.
console.log(formatRow('cell with one llm_query', summarize(await repeat(300, async () => expectOk(await sandbox.execute('llm_query("hello")')))), 3));

// 4. llm_query_batched of 100 instant answers.
await sandbox.execute('const prompts = Array.from({ length: 100 }, (_, i) => "prompt " + i)');
console.log(
  formatRow(
    'llm_query_batched of 100 instant answers',
    summarize(await repeat(60, async () => expectOk(await sandbox.execute('llm_query_batched(prompts).length')))),
    50,
  ),
);

// 5. 100 MB of text ready in the REPL as a context variable.
const hundredMb = 'abcdefghij'.repeat(10 * 1024 * 1024);
const loads = await repeat(6, () => sandbox.loadContext(hundredMb, { variable: 'big' }), 1);
const check = await sandbox.execute('big.length');
if (check.value !== String(hundredMb.length)) throw new Error(`context arrived with length ${check.value}`);
console.log(formatRow('100 MB context ready in the REPL', summarize(loads), 1000));

// ---------------------------------------------------------------------------------------------
// Deadlines: how long past its timeout a cell's result arrives (target: within the 700 ms grace
// plus the round trip; the median should be far below it).
console.log('');
{
  await using deadlines = await Sandbox.create({
    docker,
    image: tag,
    ...runtimeOption,
    onSubcall: (request, { signal }) => (request.prompts[0] === 'never' ? never(signal) : instant(request, { signal })),
    tools: { slow_tool: { handler: (_args, { signal }) => never(signal) } },
  });
  console.log(formatRow('past timeout: runaway JS loop', summarize(await overshoots(deadlines, 10, 'while (true) {}', 'kept')), 1000));
  console.log(formatRow('past timeout: never-settling await', summarize(await overshoots(deadlines, 10, 'await new Promise(() => {})', 'kept')), 1000));
  console.log(formatRow('past timeout: llm_query never answered', summarize(await overshoots(deadlines, 10, 'llm_query("never")', 'kept')), 1000));
  console.log(formatRow('past timeout: tool call still running', summarize(await overshoots(deadlines, 10, 'slow_tool()', 'kept')), 1000));
  console.log(
    formatRow('past timeout: JS loop after await (replaced)', summarize(await overshoots(deadlines, 5, 'await null; while (true) {}', 'lost')), 1000),
  );
  console.log(formatRow('past timeout: endless print loop', summarize(await overshoots(deadlines, 10, 'while (true) print("x".repeat(1000))', 'kept')), 1000));
}

// ---------------------------------------------------------------------------------------------
// Teardown: how soon a sandbox whose host is gone, or whose call was aborted, stops existing.
console.log('');
{
  const killed: number[] = [];
  let otherRuntime = false;
  for (let i = 0; i <= 5 && !otherRuntime; i++) {
    const ms = await hostKillToRemoved();
    if (ms === undefined) otherRuntime = true;
    else if (i > 0) killed.push(ms); // the first run warms the engine's caches
  }
  console.log(
    otherRuntime
      ? `${'host process killed → container removed'.padEnd(44)} skipped: test/fixtures/hold-sandbox.mjs started its sandbox under another runtime than ${flags.runtime}`
      : formatRow('host process killed → container removed', summarize(killed), 1000),
  );
  const aborted: number[] = [];
  for (let i = 0; i <= 5; i++) {
    const ms = await abortToRemoved();
    if (i > 0) aborted.push(ms);
  }
  console.log(formatRow('caller abort → sandbox removed', summarize(aborted), 500));
}

// ---------------------------------------------------------------------------------------------
// Python cells (Pyodide; the interpreter is restored from its memory snapshot when the sandbox starts).
console.log('');

// 6. Cold start: create a Python sandbox and get the first Python cell's result.
const pythonColdStarts: number[] = [];
for (let i = 0; i < 10; i++) {
  let python: Sandbox | undefined;
  const ms = await time(async () => {
    python = await Sandbox.create({ docker, image: tag, ...runtimeOption, language: 'python' });
    expectOk(await python.execute('1 + 1'));
  });
  await python?.close();
  if (i >= 2) pythonColdStarts.push(ms);
}
console.log(formatRow('cold start to first Python cell result', summarize(pythonColdStarts), 2500));

await using python = await Sandbox.create({ docker, image: tag, ...runtimeOption, language: 'python', onSubcall: instant });

// 7. A trivial Python cell's round trip.
console.log(formatRow('trivial Python cell round trip', summarize(await repeat(300, async () => expectOk(await python.execute('1')))), 5));

// 8. A Python cell making one llm_query that the host answers at once.
console.log(formatRow('Python cell with one llm_query', summarize(await repeat(300, async () => expectOk(await python.execute('llm_query("hello")')))), 5));

// Deadlines in Python: the main thread interrupts the interpreter at the timeout.
console.log(formatRow('past timeout: runaway Python loop', summarize(await overshoots(python, 10, 'while True: pass', 'kept')), 1000));
console.log(formatRow('past timeout: endless Python print loop', summarize(await overshoots(python, 10, 'while True: print("x" * 1000)', 'kept')), 1000));
console.log(
  formatRow(
    'past timeout: KeyboardInterrupt swallowed',
    summarize(await overshoots(python, 4, 'try:\n    while True: pass\nexcept KeyboardInterrupt:\n    while True: pass', 'lost')),
    1000,
  ),
);

// 9. 100 MB of text ready in Python as a context variable.
const pythonLoads = await repeat(6, () => python.loadContext(hundredMb, { variable: 'big' }), 1);
const pythonCheck = await python.execute('len(big)');
if (pythonCheck.value !== String(hundredMb.length)) throw new Error(`context arrived in Python with length ${pythonCheck.value}`);
console.log(formatRow('100 MB context ready in Python', summarize(pythonLoads), 1000));
