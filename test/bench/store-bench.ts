/**
 * The service store's latencies on this machine, on the embedded database and on PostgreSQL (a
 * throwaway cluster from Debian's postgresql package, fsync on, as the embedded database's
 * synchronous=FULL): opening (a new database, migrations included; and an existing one), then
 * submitRun, claimRun, appendEvents (one event) and finishRun, each called one at a time, median
 * and p95 over `RUNS` calls.
 *
 *   node --experimental-transform-types --disable-warning=ExperimentalWarning --conditions=rlm-source test/bench/store-bench.ts
 *
 * From the TypeScript sources (no build needed): the sources import `./x.js` for `x.ts`, which the
 * hook below maps.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { registerHooks } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { startPostgres } from '../support/postgres.ts';
import { type Summary, summarize } from './stats.ts';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const fromTypeScript = context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js');
      if (!fromTypeScript || (error as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
      return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
    }
  },
});
const { openServiceStore } = await import('../../orchestrator/src/service/store/service-store.ts');
type Store = Awaited<ReturnType<typeof openServiceStore>>;

const RUNS = Number(process.env.RUNS ?? 500);
const OPENS = 15;
const TEAMS = 5;

const row = (name: string, summary: Summary) =>
  `${name.padEnd(34)} median ${summary.median.toFixed(2).padStart(7)} ms   p95 ${summary.p95.toFixed(2).padStart(7)} ms   n=${summary.n}`;

async function timed<T>(samples: number[], fn: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await fn();
  samples.push(performance.now() - started);
  return result;
}

/** submit, claim, append and finish latencies on an open store, RUNS of each. */
async function measureQueue(store: Store): Promise<Record<string, Summary>> {
  const teams = [];
  for (let i = 0; i < TEAMS; i++) teams.push(await store.createTeam({ name: `bench-${i}`, maxQueued: RUNS, maxConcurrentRuns: RUNS }));
  const submit: number[] = [];
  const claim: number[] = [];
  const append: number[] = [];
  const finish: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const team = teams[i % TEAMS];
    if (!team) throw new Error('no team');
    await timed(submit, () =>
      store.submitRun({
        teamId: team.id,
        input: { query: `q${i}`, context: 'x'.repeat(1000) },
        model: null,
        language: 'javascript',
        limits: {},
        source: 'runs',
      }),
    );
  }
  const claimed = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await timed(claim, () => store.claimRun('bench-worker', 60_000));
    if (!run) throw new Error(`claim ${i} found nothing`);
    claimed.push(run);
  }
  for (const run of claimed) await timed(append, () => store.appendEvents(run.id, [{ type: 'turn_start', data: { turn: 1 } }]));
  for (const run of claimed) {
    await timed(finish, () =>
      store.finishRun('bench-worker', run.id, { status: 'succeeded', answer: 'a', error: null, usage: {}, costUsd: 0.001, iterations: 1, trajectory: '{}\n' }),
    );
  }
  return { submitRun: summarize(submit), claimRun: summarize(claim), 'appendEvents (1 event)': summarize(append), finishRun: summarize(finish) };
}

async function benchEmbedded(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'rlm-store-bench-'));
  try {
    // The first open of the process loads node:sqlite and zod: shown apart.
    const first: number[] = [];
    await (await timed(first, () => openServiceStore({ dataDir: path.join(root, 'first') }))).close();
    const fresh: number[] = [];
    const existing: number[] = [];
    for (let i = 0; i < OPENS; i++) {
      const dataDir = path.join(root, `open-${i}`);
      await (await timed(fresh, () => openServiceStore({ dataDir }))).close();
      await (await timed(existing, () => openServiceStore({ dataDir }))).close();
    }
    const store = await openServiceStore({ dataDir: path.join(root, 'queue') });
    const queue = await measureQueue(store);
    await store.close();
    console.log(`embedded (node:sqlite ${process.versions.sqlite}, WAL, synchronous=FULL), Node ${process.versions.node}`);
    console.log(`${'first open in the process'.padEnd(34)} ${first[0]?.toFixed(2)} ms`);
    console.log(row('open, new database', summarize(fresh)));
    console.log(row('open, existing database', summarize(existing)));
    for (const [name, summary] of Object.entries(queue)) console.log(row(name, summary));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

async function benchPostgres(): Promise<void> {
  await using cluster = await startPostgres({ durable: true });
  // The first open of the process loads pg: shown apart.
  const first: number[] = [];
  const firstUrl = await cluster.newDatabase();
  await (await timed(first, () => openServiceStore({ databaseUrl: firstUrl }))).close();
  const fresh: number[] = [];
  const existing: number[] = [];
  for (let i = 0; i < OPENS; i++) {
    const databaseUrl = await cluster.newDatabase();
    await (await timed(fresh, () => openServiceStore({ databaseUrl }))).close();
    await (await timed(existing, () => openServiceStore({ databaseUrl }))).close();
  }
  const store = await openServiceStore({ databaseUrl: await cluster.newDatabase() });
  const queue = await measureQueue(store);
  await store.close();
  console.log('\nPostgreSQL (local cluster on 127.0.0.1, fsync on)');
  console.log(`${'first open in the process'.padEnd(34)} ${first[0]?.toFixed(2)} ms`);
  console.log(row('open, new database', summarize(fresh)));
  console.log(row('open, existing database', summarize(existing)));
  for (const [name, summary] of Object.entries(queue)) console.log(row(name, summary));
}

await benchEmbedded();
await benchPostgres();
