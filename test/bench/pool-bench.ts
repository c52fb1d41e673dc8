/**
 * `pnpm bench:pool`: what the warm sandbox pool buys and what it costs, on this machine — acquire
 * latency from warm, the time from `completion()` to the first cell's result with and without a
 * pool, 20 runs through a pool with `maxSandboxes: 4` (throughput and the wait for room), and the
 * memory of an idle warm sandbox per language. Prints median and p95.
 * Needs a Docker engine; builds the sandbox image first if it is missing (not timed).
 */
import { RLM, createDockerClient, createSandboxPool, ensureSandboxImage, pingDocker, type RunEvent, type SandboxPool } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { type Summary, formatRow, summarize } from './stats.ts';

const docker = createDockerClient();
await pingDocker(docker);
const { tag } = await ensureSandboxImage({ docker });
const sandboxOptions = { docker, image: tag };

/** A zero-latency root model: one cell that calls the sub model, then FINAL. */
function oneCellModel() {
  return new ScriptedBackend((request) => {
    const turn = request.messages.filter((m) => m.role === 'assistant').length;
    return turn === 0 ? '```repl\nconst said = llm_query("hi"); print(said)\n```' : '```repl\nFINAL(said)\n```';
  });
}
const echo = new ScriptedBackend((request) => `echo ${request.messages.at(-1)?.content ?? ''}`);

/** Runs one completion and returns the time from its call to its first `cell_end`. */
async function firstCellLatency(options: { pool?: SandboxPool }): Promise<number> {
  let cellEnd: number | undefined;
  const rlm = new RLM({
    root: { backend: oneCellModel(), model: 'bench-model' },
    sub: { backend: echo, model: 'echo' },
    ...(options.pool ? { pool: options.pool } : { sandbox: sandboxOptions }),
    onEvent: (event) => {
      if (event.type === 'cell_end' && cellEnd === undefined) cellEnd = performance.now();
    },
  });
  const started = performance.now();
  const result = await rlm.completion({ context: 'bench', query: 'q' });
  if (result.answer !== 'echo hi' || cellEnd === undefined) throw new Error(`benchmark run failed: ${result.error?.message}`);
  return cellEnd - started;
}

/** The memory a container uses as `docker stats` shows it (page cache of inactive files left out), in MiB. */
async function containerMemoryMib(id: string): Promise<number> {
  const stats = (await docker.getContainer(id).stats({ stream: false })) as {
    memory_stats: { usage?: number; stats?: Record<string, number> };
  };
  const usage = stats.memory_stats.usage ?? 0;
  const inactive = stats.memory_stats.stats?.inactive_file ?? stats.memory_stats.stats?.total_inactive_file ?? 0;
  return (usage - inactive) / (1024 * 1024);
}

const fmtMs = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(0)} ms`;

/** A row without a target: name, median, p95 and the sample size. */
function formatPlain(name: string, summary: Summary): string {
  return `${name.padEnd(44)} median ${fmtMs(summary.median).padStart(9)}   p95 ${fmtMs(summary.p95).padStart(9)}   n=${summary.n}`;
}

console.log(`rlm sandbox pool benchmark — node ${process.version}\n`);

// 1. Acquire from warm: four warm sandboxes taken one after another, released, refilled, again. The
// pool is exactly that big, so no refill starts a container while the four are taken.
{
  const pool = createSandboxPool({ ...sandboxOptions, warm: { javascript: 4 }, maxSandboxes: 4 });
  try {
    const samples: number[] = [];
    for (let round = 0; round < 11; round++) {
      await pool.whenWarm();
      const leases = [];
      for (let i = 0; i < 4; i++) {
        const started = performance.now();
        const lease = await pool.acquire();
        const took = performance.now() - started;
        if (!lease.warm) throw new Error('the benchmark expected a warm sandbox');
        if (round > 0) samples.push(took);
        leases.push(lease);
      }
      await Promise.all(leases.map((lease) => lease.release()));
    }
    console.log(formatRow('acquire from warm (JavaScript, health ping)', summarize(samples), 10));
  } finally {
    await pool.close();
  }
}

// 2. From completion() to the first cell's result, cold (a container per run) and from a warm pool.
{
  const cold: number[] = [];
  await firstCellLatency({}); // warm-up: image, reaper, engine caches
  for (let i = 0; i < 10; i++) cold.push(await firstCellLatency({}));
  const pool = createSandboxPool({ ...sandboxOptions, warm: { javascript: 2 }, maxSandboxes: 4 });
  const warm: number[] = [];
  try {
    await pool.whenWarm();
    await firstCellLatency({ pool });
    for (let i = 0; i < 10; i++) {
      await pool.whenWarm();
      warm.push(await firstCellLatency({ pool }));
    }
  } finally {
    await pool.close();
  }
  const coldSummary = summarize(cold);
  const warmSummary = summarize(warm);
  console.log(formatPlain('completion() to first cell result, no pool', coldSummary));
  console.log(formatPlain('completion() to first cell result, warm pool', warmSummary));
}

// 3. Twenty runs at once through a pool of 4 (all warm at the start).
{
  const pool = createSandboxPool({ ...sandboxOptions, warm: { javascript: 4 }, maxSandboxes: 4 });
  try {
    await pool.whenWarm();
    const waits: number[] = [];
    const rlm = new RLM({
      root: { backend: oneCellModel(), model: 'bench-model' },
      sub: { backend: echo, model: 'echo' },
      pool,
      onEvent: (event: RunEvent) => {
        if (event.type === 'sandbox_acquired') waits.push(event.waitedMs);
      },
    });
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 20 }, () => rlm.completion({ context: 'bench', query: 'q' })));
    const seconds = (performance.now() - started) / 1000;
    if (results.some((r) => r.answer !== 'echo hi')) throw new Error('a benchmark run failed');
    const wait = summarize(waits);
    const stats = pool.stats();
    console.log(
      `${'20 runs through maxSandboxes 4'.padEnd(44)} ${seconds.toFixed(1)} s, ${(20 / seconds).toFixed(2)} runs/s;` +
        ` wait for room median ${fmtMs(wait.median)}, p95 ${fmtMs(wait.p95)}, max ${fmtMs(stats.waitedMsMax)}; ${stats.acquiredWarm}/20 got a warm sandbox`,
    );
  } finally {
    await pool.close();
  }
}

// 4. Memory of an idle warm sandbox, per language.
for (const [language, target] of [
  ['javascript', 60],
  ['python', undefined],
] as const) {
  const pool = createSandboxPool({ ...sandboxOptions, warm: { [language]: 3 }, maxSandboxes: 3 });
  try {
    await pool.whenWarm();
    // Let start-up work (the REPL's first garbage collection, Pyodide's) settle before reading.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const ids = (await docker.listContainers({ filters: { label: [`rlm.owner.pid=${process.pid}`] } })).map((c) => c.Id);
    const samples = await Promise.all(ids.map((id) => containerMemoryMib(id)));
    const { median } = summarize(samples);
    const verdict = target === undefined ? '' : median <= target ? `   target <= ${target} MiB ok` : `   target <= ${target} MiB OVER TARGET`;
    console.log(`${`idle warm sandbox memory (${language})`.padEnd(44)} median ${median.toFixed(1)} MiB over ${samples.length} containers${verdict}`);
  } finally {
    await pool.close();
  }
}
