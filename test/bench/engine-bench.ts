/**
 * `pnpm bench:engine`: the RLM engine's own overhead per turn — prompt building, parsing, budget,
 * events, usage and trajectory — with a zero-latency scripted model, the cell's time excluded.
 * Prints median and p95. Needs a Docker engine (the cells run in a real sandbox).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { RLM, createDockerClient, ensureSandboxImage, pingDocker, type RunEvent } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { formatRow, summarize } from './stats.ts';

const docker = createDockerClient();
await pingDocker(docker);
const { tag } = await ensureSandboxImage({ docker });
const TURNS = 150;

/** Per-turn overhead samples: the time from one turn's start to the next, minus its cell. */
async function measure(logDir: string | undefined): Promise<number[]> {
  const model = new ScriptedBackend((_request, index) =>
    index < TURNS - 1 ? `Next step.\n\`\`\`repl\nconst x = ${index}; print(x)\n\`\`\`` : '```repl\nFINAL("done")\n```',
  );
  const marks: Array<{ turnStart: number; cell: number }> = [];
  let cellStart = 0;
  const onEvent = (event: RunEvent) => {
    const now = performance.now();
    if (event.type === 'turn_start') marks.push({ turnStart: now, cell: 0 });
    else if (event.type === 'cell_start') cellStart = now;
    else if (event.type === 'cell_end') {
      const last = marks.at(-1);
      if (last) last.cell += now - cellStart;
    }
  };
  const rlm = new RLM({
    root: { backend: model, model: 'bench-model' },
    sandbox: { docker, image: tag },
    limits: { maxIterations: TURNS + 5 },
    onEvent,
    ...(logDir ? { logDir } : {}),
  });
  const result = await rlm.completion({ context: 'x'.repeat(100_000), query: 'benchmark' });
  if (result.answer !== 'done') throw new Error(`benchmark run failed: ${result.error?.message}`);
  const samples: number[] = [];
  for (let i = 5; i + 1 < marks.length; i++) {
    const current = marks[i];
    const next = marks[i + 1];
    if (current && next) samples.push(next.turnStart - current.turnStart - current.cell);
  }
  return samples;
}

console.log(`rlm engine benchmark — ${TURNS} turns per run, zero-latency model, node ${process.version}\n`);
await measure(undefined); // warm-up
console.log(formatRow('engine overhead per turn (no trajectory)', summarize(await measure(undefined)), 5));
const logDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-bench-'));
try {
  console.log(formatRow('engine overhead per turn (JSONL trajectory)', summarize(await measure(logDir)), 5));
} finally {
  await rm(logDir, { recursive: true, force: true });
}
