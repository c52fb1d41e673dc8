/**
 * The ServiceStore contract (orchestrator/src/service/service-types.ts), proved once and run on
 * both databases: the embedded one (node:sqlite in a temp data directory) and a real PostgreSQL
 * (a throwaway cluster from Debian's postgresql package, support/postgres.ts), each test on a fresh
 * database. Then what only one of them can show: several store instances claiming from one
 * PostgreSQL at once, and the embedded database surviving `kill -9`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type NewRun, type RunOutcome, type RunRecord, ServiceError, type ServiceStore } from '../orchestrator/src/service/service-types.js';
import { openPostgresDatabase } from '../orchestrator/src/service/store/postgres-database.js';
import { openServiceStore } from '../orchestrator/src/service/store/service-store.js';
import { openSqliteDatabase } from '../orchestrator/src/service/store/sqlite-database.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STORE_SOURCE = path.join(ROOT, 'orchestrator', 'src', 'service', 'store', 'service-store.ts');

/** A clock that moves 1 ms per reading (so that times order events) and jumps on demand (to expire leases). */
class TestClock {
  #now = 1_800_000_000_000;
  readonly now = () => this.#now++;
  advance(ms: number): void {
    this.#now += ms;
  }
}

interface Harness {
  store: ServiceStore;
  clock: TestClock;
  /**
   * `n` stores on the same database. PostgreSQL: other instances with their own connections, as
   * workers on other machines would have. Embedded: the same store (one process holds the file).
   */
  peers(n: number): Promise<ServiceStore[]>;
  /** Rows of a statement run on the database itself, past the store. The embedded store is closed first (it holds the file). */
  raw(sql: string): Promise<Record<string, unknown>[]>;
}

interface Backend {
  name: 'embedded' | 'postgres';
  /** A store on a new, empty database; closed after the test. */
  open(): Promise<Harness>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let postgres: TestPostgres | undefined;
beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.close();
});

const embedded: Backend = {
  name: 'embedded',
  async open() {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-store-test-'));
    const clock = new TestClock();
    const store = await openServiceStore({ dataDir, now: clock.now });
    cleanups.push(async () => {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    });
    return {
      store,
      clock,
      peers: async (n) => Array.from({ length: n }, () => store),
      async raw(sql) {
        await store.close();
        const db = await openSqliteDatabase({ dataDir });
        try {
          return await db.query(sql);
        } finally {
          await db.close();
        }
      },
    };
  },
};

const postgresBackend: Backend = {
  name: 'postgres',
  async open() {
    if (!postgres) throw new Error('the PostgreSQL cluster did not start');
    const databaseUrl = await postgres.newDatabase();
    const clock = new TestClock();
    const store = await openServiceStore({ databaseUrl, now: clock.now });
    cleanups.push(() => store.close());
    return {
      store,
      clock,
      async peers(n) {
        const stores = await Promise.all(Array.from({ length: n }, () => openServiceStore({ databaseUrl, now: clock.now, maxConnections: 4 })));
        cleanups.push(async () => {
          await Promise.all(stores.map((peer) => peer.close()));
        });
        return stores;
      },
      async raw(sql) {
        const db = await openPostgresDatabase({ url: databaseUrl });
        try {
          return await db.query(sql);
        } finally {
          await db.close();
        }
      },
    };
  },
};

function newRun(teamId: string, query = 'what is in the context?', extra: Partial<NewRun> = {}): NewRun {
  return { teamId, input: { query }, model: null, language: 'javascript', limits: {}, source: 'runs', ...extra };
}

function outcome(extra: Partial<RunOutcome> = {}): RunOutcome {
  return { status: 'succeeded', answer: '42', error: null, usage: {}, costUsd: null, iterations: 1, trajectory: null, ...extra };
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (error) {
    expect(ServiceError.isInstance(error)).toBe(true);
    return error as ServiceError;
  }
  throw new Error('expected a rejection');
}

describe.each([embedded, postgresBackend])('ServiceStore on the $name database', (backend) => {
  describe('teams', () => {
    it('creates a team with the defaults and finds it by name and id', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'research' });
      expect(team).toEqual({
        id: expect.stringMatching(/^team_[0-9a-f]{24}$/),
        name: 'research',
        budgetUsd: null,
        maxConcurrentRuns: 4,
        maxQueued: 100,
        models: null,
        createdAt: expect.any(Number),
      });
      expect(team.createdAt).toBeLessThan(clock.now());
      expect(await store.teamByName('research')).toEqual(team);
      expect(await store.teamById(team.id)).toEqual(team);
      expect(await store.teamByName('nobody')).toBeNull();
      expect(await store.teamSpendUsd(team.id)).toBe(0);
    });

    it('keeps budget, limits and models, and lists teams by name', async () => {
      const { store } = await backend.open();
      const b = await store.createTeam({ name: 'b.team', budgetUsd: 12.5, maxConcurrentRuns: 2, maxQueued: 7, models: ['fast', 'smart', 'fast'] });
      const a = await store.createTeam({ name: 'a-team' });
      expect(b).toMatchObject({ budgetUsd: 12.5, maxConcurrentRuns: 2, maxQueued: 7, models: ['fast', 'smart'] });
      expect(await store.listTeams()).toEqual([a, b]);
    });

    it('refuses a taken name with conflict, and a bad name or limit with invalid_request', async () => {
      const { store } = await backend.open();
      await store.createTeam({ name: 'taken' });
      expect(await rejection(store.createTeam({ name: 'taken' }))).toMatchObject({ kind: 'conflict', status: 409, message: expect.stringMatching(/taken/) });
      for (const name of ['', 'has space', 'slash/name', 'x'.repeat(65), 'émoji']) {
        expect((await rejection(store.createTeam({ name }))).kind).toBe('invalid_request');
      }
      expect((await rejection(store.createTeam({ name: 'ok', maxConcurrentRuns: 0 }))).message).toMatch(/maxConcurrentRuns/);
      expect((await rejection(store.createTeam({ name: 'ok', maxQueued: 1.5 }))).message).toMatch(/maxQueued/);
      expect((await rejection(store.createTeam({ name: 'ok', budgetUsd: -1 }))).message).toMatch(/budgetUsd/);
      expect(await store.listTeams()).toHaveLength(1);
    });
  });

  describe('updating a team', () => {
    it('changes only the fields given, and answers the team as it now is', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 5, maxConcurrentRuns: 3, maxQueued: 9, models: ['fast'] });
      const other = await store.createTeam({ name: 'other', budgetUsd: 1 });

      const raised = await store.updateTeam('ops', { budgetUsd: 10 });
      expect(raised).toEqual({ ...team, budgetUsd: 10 });
      expect(await store.teamByName('ops')).toEqual(raised);
      const limited = await store.updateTeam('ops', { maxConcurrentRuns: 1, maxQueued: 2 });
      expect(limited).toEqual({ ...team, budgetUsd: 10, maxConcurrentRuns: 1, maxQueued: 2 });
      const opened = await store.updateTeam('ops', { budgetUsd: null, models: null });
      expect(opened).toEqual({ ...team, budgetUsd: null, maxConcurrentRuns: 1, maxQueued: 2, models: null });
      // Models are kept as createTeam keeps them: trimmed, without repeats.
      expect((await store.updateTeam('ops', { models: [' smart', 'smart', 'fast'] })).models).toEqual(['smart', 'fast']);
      // An absent field and an undefined one are the same: unchanged.
      expect(await store.updateTeam('ops', { maxQueued: 4, budgetUsd: undefined })).toMatchObject({ budgetUsd: null, maxQueued: 4 });

      expect(await store.teamById(other.id)).toEqual(other);
      expect((await store.listTeams()).map((t) => t.name)).toEqual(['ops', 'other']);
    });

    it('refuses an unknown team with not_found naming it', async () => {
      const { store } = await backend.open();
      await store.createTeam({ name: 'ops' });
      expect(await rejection(store.updateTeam('nobody', { maxQueued: 3 }))).toMatchObject({
        kind: 'not_found',
        status: 404,
        message: expect.stringMatching(/nobody/),
      });
      expect(await store.listTeams()).toHaveLength(1);
    });

    it('refuses a bad value as createTeam does, and an empty update naming the fields that can change, changing nothing', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 5, maxConcurrentRuns: 3, maxQueued: 9, models: ['fast'] });
      const bad: [Parameters<ServiceStore['updateTeam']>[1], RegExp][] = [
        [{ maxConcurrentRuns: 0 }, /^maxConcurrentRuns: must be an integer from 1 to 10000 \(got 0\)/],
        [{ maxConcurrentRuns: 10_001 }, /^maxConcurrentRuns/],
        [{ maxQueued: 1.5 }, /^maxQueued: must be an integer from 1 to 1000000/],
        [{ budgetUsd: -1 }, /^budgetUsd: must be a number ≥ 0/],
        [{ budgetUsd: Number.NaN }, /^budgetUsd/],
        [{ models: ['fast', ' '] }, /^models/],
        // One bad field among good ones: the good ones are not written either.
        [{ budgetUsd: 50, maxConcurrentRuns: 8, maxQueued: -2 }, /^maxQueued/],
      ];
      for (const [update, message] of bad) {
        const refused = await rejection(store.updateTeam('ops', update));
        expect(refused, JSON.stringify(update)).toMatchObject({ kind: 'invalid_request', status: 400 });
        expect(refused.message).toMatch(message);
        // createTeam refuses the same value with the same message.
        expect((await rejection(store.createTeam({ name: 'twin', ...update }))).message).toBe(refused.message);
      }
      const empty = await rejection(store.updateTeam('ops', {}));
      expect(empty).toMatchObject({ kind: 'invalid_request', message: expect.stringMatching(/ops.*budgetUsd, maxConcurrentRuns, maxQueued, models/) });
      expect((await rejection(store.updateTeam('ops', { budgetUsd: undefined }))).kind).toBe('invalid_request');
      expect(await store.listTeams()).toEqual([team]);
    });

    it('holds back the next claim of a team at its lowered maxConcurrentRuns, leaving its running runs running', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxConcurrentRuns: 3 });
      for (let i = 0; i < 5; i++) await store.submitRun(newRun(team.id, `q${i}`));
      const first = (await store.claimRun('w', 60_000)) as RunRecord;
      const second = (await store.claimRun('w', 60_000)) as RunRecord;
      await store.updateTeam('ops', { maxConcurrentRuns: 2 });
      // At its new limit: nothing more for it, and its two runs still run.
      expect(await store.claimRun('w', 60_000)).toBeNull();
      expect((await store.stats()).runsByStatus).toMatchObject({ running: 2, queued: 3 });
      await store.updateTeam('ops', { maxConcurrentRuns: 1 });
      expect(await store.finishRun('w', first.id, outcome())).toBe(true);
      // Still one running, its new limit: none yet.
      expect(await store.claimRun('w', 60_000)).toBeNull();
      expect(await store.finishRun('w', second.id, outcome())).toBe(true);
      expect((await store.claimRun('w', 60_000))?.query).toBe('q2');
      expect(await store.claimRun('w', 60_000)).toBeNull();
      // Raised again: the next claim takes the next run at once.
      await store.updateTeam('ops', { maxConcurrentRuns: 4 });
      expect((await store.claimRun('w', 60_000))?.query).toBe('q3');
    });

    it('refuses new runs only when maxQueued is lowered below the queue, keeping the queued ones', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxQueued: 5 });
      for (let i = 0; i < 4; i++) await store.submitRun(newRun(team.id));
      await store.updateTeam('ops', { maxQueued: 2 });
      expect(await rejection(store.submitRun(newRun(team.id)))).toMatchObject({ kind: 'queue_full', message: expect.stringMatching(/ops has 2 runs waiting/) });
      expect((await store.stats()).queuedByTeam).toEqual({ ops: 4 });
      expect(await store.claimRun('w', 60_000)).not.toBeNull();
    });

    it('lets a team whose spend reached its budget submit again once the budget is raised, and refuses it again once lowered', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 1 });
      const run = await store.submitRun(newRun(team.id));
      await store.claimRun('w', 60_000);
      await store.finishRun('w', run.id, outcome({ costUsd: 1 }));
      expect((await rejection(store.submitRun(newRun(team.id)))).kind).toBe('budget_exhausted');

      await store.updateTeam('ops', { budgetUsd: 3 });
      const again = await store.submitRun(newRun(team.id, 'again', { limits: { maxCostUsd: 10 } }));
      // What is left of the raised budget caps the new run's cost.
      expect(again).toMatchObject({ status: 'queued', limits: { maxCostUsd: 2 } });

      await store.updateTeam('ops', { budgetUsd: 0.5 });
      expect((await rejection(store.submitRun(newRun(team.id)))).kind).toBe('budget_exhausted');
      expect((await store.getRun(team.id, again.id))?.status).toBe('queued');
      await store.updateTeam('ops', { budgetUsd: null });
      expect((await store.submitRun(newRun(team.id))).limits.maxCostUsd).toBeUndefined();
    });
  });

  describe('tokens', () => {
    it('shows a new token once and stores only its SHA-256 and prefix', async () => {
      const { store, raw } = await backend.open();
      await store.createTeam({ name: 'ops' });
      const { token, record } = await store.createToken('ops');
      expect(token).toMatch(/^rlm_[A-Za-z0-9_-]{43}$/);
      expect(record).toMatchObject({
        id: expect.stringMatching(/^tok_[0-9a-f]{24}$/),
        teamName: 'ops',
        prefix: token.slice(0, 12),
        revokedAt: null,
        lastUsedAt: null,
      });
      const rows = await raw('SELECT * FROM tokens');
      expect(rows).toHaveLength(1);
      const stored = JSON.stringify(rows);
      expect(stored).not.toContain(token);
      expect(stored).not.toContain(token.slice(12));
      expect(rows[0]?.token_hash).toBe(createHash('sha256').update(token).digest('hex'));
    });

    it('authenticates a valid token as its team and nothing else', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const { token } = await store.createToken('ops');
      expect(await store.authenticate(token)).toEqual(team);
      expect(await store.authenticate(`${token}x`)).toBeNull();
      expect(await store.authenticate(token.slice(0, -1))).toBeNull();
      expect(await store.authenticate('')).toBeNull();
      expect(await store.authenticate('Bearer whatever')).toBeNull();
      expect((await rejection(store.createToken('nobody'))).kind).toBe('not_found');
    });

    it('tells admin tokens apart: only an unrevoked admin token is one', async () => {
      const { store } = await backend.open();
      await store.createTeam({ name: 'ops' });
      const plain = await store.createToken('ops');
      const admin = await store.createToken('ops', { admin: true });
      expect(admin.record.admin).toBe(true);
      expect(plain.record.admin).toBe(false);
      expect(await store.isAdminToken(admin.token)).toBe(true);
      expect(await store.isAdminToken(plain.token)).toBe(false);
      expect(await store.isAdminToken('rlm_nothing')).toBe(false);
      expect((await store.listTokens('ops')).map((t) => t.admin)).toEqual([false, true]);
      await store.revokeToken(admin.record.id);
      expect(await store.isAdminToken(admin.token)).toBe(false);
    });

    it('records the last use of a token at most once a minute', async () => {
      const { store, clock } = await backend.open();
      await store.createTeam({ name: 'ops' });
      const { token, record } = await store.createToken('ops');
      await store.authenticate(token);
      const [first] = await store.listTokens('ops');
      expect(first?.lastUsedAt).toBeGreaterThan(record.createdAt);
      clock.advance(30_000);
      await store.authenticate(token);
      expect((await store.listTokens('ops'))[0]?.lastUsedAt).toBe(first?.lastUsedAt);
      clock.advance(31_000);
      await store.authenticate(token);
      expect((await store.listTokens('ops'))[0]?.lastUsedAt).toBeGreaterThan((first?.lastUsedAt ?? 0) + 60_000);
    });

    it('revokes by id or by prefix; a revoked token no longer authenticates; an unknown one is false', async () => {
      const { store } = await backend.open();
      await store.createTeam({ name: 'ops' });
      await store.createTeam({ name: 'dev' });
      const one = await store.createToken('ops');
      const two = await store.createToken('ops');
      const three = await store.createToken('dev');
      expect((await store.listTokens('ops')).map((t) => t.id)).toEqual([one.record.id, two.record.id]);
      expect((await store.listTokens()).map((t) => t.id)).toEqual([one.record.id, two.record.id, three.record.id]);
      expect((await rejection(store.listTokens('nobody'))).kind).toBe('not_found');

      expect(await store.revokeToken(one.record.id)).toBe(true);
      expect(await store.revokeToken(two.record.prefix)).toBe(true);
      expect(await store.revokeToken('tok_000000000000000000000000')).toBe(false);
      expect(await store.authenticate(one.token)).toBeNull();
      expect(await store.authenticate(two.token)).toBeNull();
      expect(await store.authenticate(three.token)).toMatchObject({ name: 'dev' });
      const revoked = (await store.listTokens('ops'))[0];
      expect(revoked?.revokedAt).toEqual(expect.any(Number));
      // Revoking again: still true, and the first time stays.
      expect(await store.revokeToken(one.record.id)).toBe(true);
      expect((await store.listTokens('ops'))[0]?.revokedAt).toBe(revoked?.revokedAt);
    });
  });

  describe('runs', () => {
    it('accepts a run as queued with its input and a queued event, and reads it back', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const input = { query: 'summarise', context: { 'a.txt': 'alpha' }, contexts: ['one', [2, 3]] };
      const run = await store.submitRun({
        teamId: team.id,
        input,
        model: 'fast',
        language: 'python',
        limits: { maxIterations: 5, maxCostUsd: 0.5 },
        source: 'chat',
      });
      expect(run).toEqual({
        id: expect.stringMatching(/^run_[0-9a-f]{24}$/),
        teamId: team.id,
        status: 'queued',
        query: 'summarise',
        model: 'fast',
        language: 'python',
        limits: { maxIterations: 5, maxCostUsd: 0.5 },
        source: 'chat',
        answer: null,
        error: null,
        usage: {},
        costUsd: null,
        iterations: 0,
        createdAt: expect.any(Number),
        startedAt: null,
        finishedAt: null,
        attempts: 0,
        cancelRequested: false,
        workerId: null,
        leaseExpiresAt: null,
      });
      expect(await store.getRun(team.id, run.id)).toEqual(run);
      expect(await store.getRun(null, run.id)).toEqual(run);
      expect(await store.getRunInput(run.id)).toEqual(input);
      expect(await store.readEvents(run.id, 0)).toEqual([{ runId: run.id, seq: 1, type: 'queued', data: { status: 'queued' }, createdAt: run.createdAt }]);
      expect((await rejection(store.submitRun(newRun('team_000000000000000000000000')))).kind).toBe('not_found');
    });

    it("answers null for another team's run, exactly as for an unknown id", async () => {
      const { store } = await backend.open();
      const ops = await store.createTeam({ name: 'ops' });
      const dev = await store.createTeam({ name: 'dev' });
      const run = await store.submitRun(newRun(ops.id));
      expect(await store.getRun(dev.id, run.id)).toBeNull();
      expect(await store.getRun(dev.id, 'run_000000000000000000000000')).toBeNull();
      expect(await store.requestCancel(dev.id, run.id)).toBeNull();
      expect((await store.listRuns(dev.id, {})).runs).toEqual([]);
      expect((await store.getRun(ops.id, run.id))?.status).toBe('queued');
    });

    it('lists a team’s runs newest first, page by page, filtered by status', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const other = await store.createTeam({ name: 'dev' });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        ids.push((await store.submitRun(newRun(team.id, `q${i}`))).id);
        await store.submitRun(newRun(other.id));
      }
      const newestFirst = [...ids].reverse();
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await store.listRuns(team.id, { limit: 3, ...(cursor ? { cursor } : {}) });
        seen.push(...page.runs.map((run) => run.id));
        cursor = page.nextCursor ?? undefined;
        pages++;
      } while (cursor);
      expect(seen).toEqual(newestFirst);
      expect(pages).toBe(3);
      expect((await store.listRuns(team.id, { limit: 7 })).nextCursor).toBeNull();
      expect((await store.listRuns(team.id, {})).runs).toHaveLength(7);

      // Cancel two; the status filter pages over the rest.
      await store.requestCancel(team.id, ids[1] as string);
      await store.requestCancel(team.id, ids[4] as string);
      const cancelled = await store.listRuns(team.id, { status: 'cancelled' });
      expect(cancelled.runs.map((run) => run.id)).toEqual([ids[4], ids[1]]);
      const queuedFirst = await store.listRuns(team.id, { status: 'queued', limit: 4 });
      const queuedRest = await store.listRuns(team.id, { status: 'queued', limit: 4, cursor: queuedFirst.nextCursor as string });
      expect([...queuedFirst.runs, ...queuedRest.runs].map((run) => run.id)).toEqual(newestFirst.filter((id) => id !== ids[1] && id !== ids[4]));
      expect(queuedRest.nextCursor).toBeNull();
    });

    it('refuses a bad cursor or limit with invalid_request', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      for (const cursor of ['nonsense', 'YWJj', '', 'a b', Buffer.from('s:-1').toString('base64url')]) {
        const error = await rejection(store.listRuns(team.id, { cursor }));
        expect(error).toMatchObject({ kind: 'invalid_request', status: 400, message: expect.stringMatching(/^cursor:/) });
      }
      for (const limit of [0, 101, 2.5]) expect((await rejection(store.listRuns(team.id, { limit }))).kind).toBe('invalid_request');
    });
  });

  describe('admission', () => {
    it('refuses a run beyond maxQueued with queue_full and a Retry-After, and accepts again once one starts', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxQueued: 2 });
      await store.submitRun(newRun(team.id));
      await store.submitRun(newRun(team.id));
      const full = await rejection(store.submitRun(newRun(team.id)));
      expect(full).toMatchObject({ kind: 'queue_full', status: 429, message: expect.stringMatching(/ops has 2 runs waiting/) });
      expect(full.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(full.retryAfterSeconds).toBeLessThanOrEqual(300);
      expect((await store.listRuns(team.id, {})).runs).toHaveLength(2);

      expect(await store.claimRun('w1', 60_000)).not.toBeNull();
      expect((await store.submitRun(newRun(team.id))).status).toBe('queued');
    });

    it('admits concurrent submits up to maxQueued and no further', async () => {
      const { store, peers } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxQueued: 5 });
      const stores = await peers(4);
      const results = await Promise.allSettled(Array.from({ length: 24 }, (_, i) => (stores[i % stores.length] as ServiceStore).submitRun(newRun(team.id))));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      for (const result of results) if (result.status === 'rejected') expect(result.reason).toMatchObject({ kind: 'queue_full' });
      expect((await store.stats()).queuedByTeam).toEqual({ ops: 5 });
    });

    it('refuses runs with budget_exhausted once the team spent its budget', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 1 });
      const first = await store.submitRun(newRun(team.id));
      const second = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 60_000);
      await store.finishRun('w1', first.id, outcome({ costUsd: 0.75 }));
      expect(await store.teamSpendUsd(team.id)).toBeCloseTo(0.75);
      // Still under budget: accepted.
      await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 60_000);
      await store.finishRun('w1', second.id, outcome({ costUsd: 0.25, status: 'failed', error: 'model error' }));
      expect(await store.teamSpendUsd(team.id)).toBeCloseTo(1);
      const refused = await rejection(store.submitRun(newRun(team.id)));
      expect(refused).toMatchObject({ kind: 'budget_exhausted', status: 429, message: expect.stringMatching(/ops has spent \$1\.0000 of its \$1 budget/) });

      const free = await store.createTeam({ name: 'free', budgetUsd: 0 });
      expect((await rejection(store.submitRun(newRun(free.id)))).kind).toBe('budget_exhausted');
    });
  });

  describe('claims', () => {
    it('claims a team’s runs in FIFO order, each with a lease, an attempt and a started event', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxConcurrentRuns: 10 });
      const submitted = [];
      for (let i = 0; i < 4; i++) submitted.push(await store.submitRun(newRun(team.id, `q${i}`)));
      const claimed: RunRecord[] = [];
      for (let i = 0; i < 4; i++) {
        const before = clock.now();
        const run = await store.claimRun('worker-1', 30_000);
        expect(run).toMatchObject({ status: 'running', workerId: 'worker-1', attempts: 1 });
        expect(run?.startedAt).toBeGreaterThan(before);
        expect(run?.leaseExpiresAt).toBe((run?.startedAt ?? 0) + 30_000);
        claimed.push(run as RunRecord);
      }
      expect(claimed.map((run) => run.id)).toEqual(submitted.map((run) => run.id));
      expect(await store.claimRun('worker-1', 30_000)).toBeNull();
      expect((await store.readEvents(submitted[0]?.id as string, 0)).map((event) => [event.seq, event.type, event.data])).toEqual([
        [1, 'queued', { status: 'queued' }],
        [2, 'started', { attempt: 1, startedAt: claimed[0]?.startedAt }],
      ]);
    });

    it("starts another team's run second when one team queued ten before it (round-robin)", async () => {
      const { store } = await backend.open();
      const a = await store.createTeam({ name: 'a', maxConcurrentRuns: 20 });
      const b = await store.createTeam({ name: 'b', maxConcurrentRuns: 20 });
      for (let i = 0; i < 10; i++) await store.submitRun(newRun(a.id));
      const bRun = await store.submitRun(newRun(b.id));
      const first = await store.claimRun('w', 60_000);
      const second = await store.claimRun('w', 60_000);
      expect([first?.id, second?.id]).toContain(bRun.id);
      expect([first?.teamId, second?.teamId].sort()).toEqual([a.id, b.id].sort());
    });

    it('takes turns across teams with queued runs, each team in FIFO order', async () => {
      const { store } = await backend.open();
      const teams = [];
      for (const name of ['x', 'y', 'z']) teams.push(await store.createTeam({ name, maxConcurrentRuns: 10 }));
      const order: string[] = [];
      for (const team of teams) for (let i = 0; i < 3; i++) order.push((await store.submitRun(newRun(team.id, `${team.name}${i}`))).id);
      const claimed: string[] = [];
      for (let i = 0; i < 9; i++) claimed.push(((await store.claimRun('w', 60_000)) as RunRecord).query);
      expect(claimed).toEqual(['x0', 'y0', 'z0', 'x1', 'y1', 'z1', 'x2', 'y2', 'z2']);
    });

    it('never runs more of a team than its maxConcurrentRuns, and starts the next when one finishes', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxConcurrentRuns: 2 });
      const other = await store.createTeam({ name: 'other', maxConcurrentRuns: 1 });
      for (let i = 0; i < 5; i++) await store.submitRun(newRun(team.id));
      const otherRun = await store.submitRun(newRun(other.id));
      const first = await store.claimRun('w', 60_000);
      const second = await store.claimRun('w', 60_000);
      const third = await store.claimRun('w', 60_000);
      expect([first, second, third].filter((run) => run?.teamId === team.id)).toHaveLength(2);
      expect([first?.id, second?.id, third?.id]).toContain(otherRun.id);
      expect(await store.claimRun('w', 60_000)).toBeNull();
      expect((await store.stats()).runsByStatus).toMatchObject({ running: 3, queued: 3 });

      const ours = [first, second, third].find((run) => run?.teamId === team.id) as RunRecord;
      expect(await store.finishRun('w', ours.id, outcome())).toBe(true);
      expect((await store.claimRun('w', 60_000))?.teamId).toBe(team.id);
      expect(await store.claimRun('w', 60_000)).toBeNull();
    });
  });

  describe('workers', () => {
    it("keeps each worker's last heartbeat, lists the recent ones and forgets a removed one", async () => {
      const { store, clock } = await backend.open();
      const worker = { id: 'w-a', host: 'machine-a', capacity: 4, running: 1, draining: false, startedAt: 1_000 };
      await store.heartbeatWorker(worker);
      const first = (await store.listWorkers())[0]?.lastHeartbeatAt ?? 0;
      clock.advance(1000);
      await store.heartbeatWorker({ ...worker, running: 3 });
      await store.heartbeatWorker({ id: 'w-b', host: 'machine-b', capacity: 2, running: 0, draining: true, startedAt: 2_000 });
      const listed = await store.listWorkers();
      expect(listed).toEqual([
        { ...worker, running: 3, lastHeartbeatAt: expect.any(Number) },
        { id: 'w-b', host: 'machine-b', capacity: 2, running: 0, draining: true, startedAt: 2_000, lastHeartbeatAt: expect.any(Number) },
      ]);
      // The store's clock stamps the heartbeat: the second one a second after the first.
      expect((listed[0]?.lastHeartbeatAt ?? 0) - first).toBeGreaterThanOrEqual(1000);
      clock.advance(60_000);
      await store.heartbeatWorker({ ...worker, running: 0 });
      expect((await store.listWorkers({ staleMs: 30_000 })).map((w) => w.id)).toEqual(['w-a']);
      await store.removeWorker('w-a');
      expect((await store.listWorkers()).map((w) => w.id)).toEqual(['w-b']);
    });
  });

  describe('leases', () => {
    it("takes a worker's events only while it holds the run", async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun({ teamId: team.id, input: { query: 'q' }, model: null, language: 'javascript', limits: {}, source: 'runs' });
      await store.claimRun('w1', 1_000);
      expect(await store.appendEvents(run.id, [{ type: 'turn_start', data: { turn: 1 } }], { workerId: 'w1' })).toHaveLength(1);
      clock.advance(1_001);
      await store.recoverExpired({ retry: true, maxAttempts: 3 });
      await store.claimRun('w2', 1_000);
      expect((await rejection(store.appendEvents(run.id, [{ type: 'turn_start', data: { turn: 2 } }], { workerId: 'w1' }))).kind).toBe('conflict');
      expect(await store.appendEvents(run.id, [{ type: 'turn_start', data: { turn: 1 } }], { workerId: 'w2' })).toHaveLength(1);
      expect((await store.readEvents(run.id, 0)).filter((e) => e.type === 'turn_start').map((e) => e.data)).toEqual([{ turn: 1 }, { turn: 1 }]);
    });

    it('renews the leases a worker holds and reports a cancel asked meanwhile', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const one = await store.submitRun(newRun(team.id));
      const two = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 10_000);
      await store.claimRun('w2', 10_000);
      clock.advance(5_000);
      await store.requestCancel(team.id, one.id);
      const before = clock.now();
      const renewed = await store.renewLeases('w1', [one.id, two.id, 'run_000000000000000000000000'], 10_000);
      expect(renewed).toEqual([{ runId: one.id, cancelRequested: true }]);
      expect((await store.getRun(null, one.id))?.leaseExpiresAt).toBeGreaterThan(before + 10_000);
      expect(await store.renewLeases('w1', [], 10_000)).toEqual([]);
      expect(await store.renewLeases('w2', [two.id], 10_000)).toEqual([{ runId: two.id, cancelRequested: false }]);
    });

    it('puts runs whose lease expired back in the queue while attempts remain, then fails them with worker_lost', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 10_000);
      expect(await store.recoverExpired({ retry: true, maxAttempts: 2 })).toEqual([]);

      clock.advance(10_001);
      const [requeued] = await store.recoverExpired({ retry: true, maxAttempts: 2 });
      expect(requeued).toMatchObject({ id: run.id, status: 'queued', workerId: null, leaseExpiresAt: null, startedAt: null, attempts: 1 });
      expect((await store.readEvents(run.id, 2)).map((event) => [event.type, event.data])).toEqual([['queued', { status: 'queued', reason: 'interrupted' }]]);

      expect(await store.claimRun('w2', 10_000)).toMatchObject({ id: run.id, attempts: 2, workerId: 'w2' });
      clock.advance(10_001);
      const [failed] = await store.recoverExpired({ retry: true, maxAttempts: 2 });
      expect(failed).toMatchObject({ id: run.id, status: 'failed', error: 'worker_lost', workerId: null, finishedAt: expect.any(Number) });
      const events = await store.readEvents(run.id, 0);
      expect(events.at(-1)).toMatchObject({ type: 'finished', data: { status: 'failed', error: 'worker_lost' } });
      expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    });

    it('fails expired runs at once without retry, and every running run with everyRunning', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const expired = await store.submitRun(newRun(team.id));
      const live = await store.submitRun(newRun(team.id));
      const cancelled = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 1_000);
      await store.claimRun('w1', 60_000);
      await store.claimRun('w1', 60_000);
      await store.requestCancel(team.id, cancelled.id);
      clock.advance(1_001);
      const recovered = await store.recoverExpired({ retry: false, maxAttempts: 5 });
      expect(recovered.map((run) => [run.id, run.status, run.error])).toEqual([[expired.id, 'failed', 'interrupted']]);
      expect((await store.getRun(null, live.id))?.status).toBe('running');

      const all = await store.recoverExpired({ retry: true, maxAttempts: 5, everyRunning: true });
      // A run whose cancel was asked is cancelled rather than retried.
      expect(all.map((run) => [run.id, run.status])).toEqual([
        [live.id, 'queued'],
        [cancelled.id, 'cancelled'],
      ]);
      expect((await store.stats()).runsByStatus).toMatchObject({ running: 0, queued: 1, failed: 1, cancelled: 1 });
    });

    it('refuses to finish a run whose lease another worker took over, and writes nothing', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 10 });
      const run = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 1_000);
      clock.advance(1_001);
      await store.recoverExpired({ retry: true, maxAttempts: 3 });
      await store.claimRun('w2', 60_000);
      const eventsBefore = await store.readEvents(run.id, 0);

      expect(await store.finishRun('w1', run.id, outcome({ trajectory: '{"stale":true}\n', costUsd: 3 }))).toBe(false);
      expect(await store.getRun(null, run.id)).toMatchObject({ status: 'running', workerId: 'w2', answer: null });
      expect(await store.getTrajectory(run.id)).toBeNull();
      expect(await store.readEvents(run.id, 0)).toEqual(eventsBefore);
      expect(await store.teamSpendUsd(team.id)).toBe(0);
      expect(await store.renewLeases('w1', [run.id], 1_000)).toEqual([]);
      expect(await store.releaseRun('w1', run.id)).toBe(false);

      expect(await store.finishRun('w2', run.id, outcome({ costUsd: 3 }))).toBe(true);
      expect(await store.getRun(null, run.id)).toMatchObject({ status: 'succeeded', answer: '42', workerId: null, leaseExpiresAt: null, costUsd: 3 });
      expect(await store.finishRun('w2', run.id, outcome())).toBe(false);
    });

    it('hands a released run back to the queue at its place', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxConcurrentRuns: 1 });
      const first = await store.submitRun(newRun(team.id));
      await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 60_000);
      expect(await store.releaseRun('w2', first.id)).toBe(false);
      expect(await store.releaseRun('w1', first.id)).toBe(true);
      expect(await store.getRun(null, first.id)).toMatchObject({ status: 'queued', workerId: null, startedAt: null });
      expect(await store.claimRun('w3', 60_000)).toMatchObject({ id: first.id, attempts: 2 });
    });
  });

  describe('finishing and cancelling', () => {
    it('records the outcome, the trajectory and a finished event carrying the final fields', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 60_000);
      const usage = { 'gpt-x': { calls: 3, inputTokens: 1200, outputTokens: 300, cacheReadTokens: 100, cacheWriteTokens: 0, costUsd: 0.0123 } };
      const trajectory = `${JSON.stringify({ type: 'run_start', query: 'q' })}\n${JSON.stringify({ type: 'final', answer: 'é ✓' })}\n`;
      expect(await store.finishRun('w1', run.id, outcome({ answer: 'é ✓', usage, costUsd: 0.0123, iterations: 4, trajectory }))).toBe(true);
      const finished = await store.getRun(team.id, run.id);
      expect(finished).toMatchObject({ status: 'succeeded', answer: 'é ✓', usage, costUsd: 0.0123, iterations: 4, error: null });
      expect(await store.getTrajectory(run.id)).toBe(trajectory);
      const last = (await store.readEvents(run.id, 0)).at(-1);
      expect(last).toEqual({
        runId: run.id,
        seq: 3,
        type: 'finished',
        data: {
          status: 'succeeded',
          answer: 'é ✓',
          error: null,
          usage,
          costUsd: 0.0123,
          iterations: 4,
          startedAt: finished?.startedAt,
          finishedAt: finished?.finishedAt,
        },
        createdAt: finished?.finishedAt,
      });
    });

    it('cancels a queued run at once, marks a running one, and leaves a finished one; each idempotently', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops', maxConcurrentRuns: 1 });
      const running = await store.submitRun(newRun(team.id));
      const queued = await store.submitRun(newRun(team.id));
      const done = await store.submitRun(newRun(team.id));
      await store.claimRun('w1', 60_000);

      const cancelledQueued = await store.requestCancel(team.id, queued.id);
      expect(cancelledQueued).toMatchObject({ status: 'cancelled', error: 'cancelled', finishedAt: expect.any(Number) });
      expect(await store.requestCancel(team.id, queued.id)).toEqual(cancelledQueued);
      expect((await store.readEvents(queued.id, 0)).map((event) => event.type)).toEqual(['queued', 'finished']);

      const marked = await store.requestCancel(team.id, running.id);
      expect(marked).toMatchObject({ status: 'running', cancelRequested: true, workerId: 'w1' });
      expect(await store.requestCancel(team.id, running.id)).toEqual(marked);
      expect(await store.finishRun('w1', running.id, outcome({ status: 'cancelled', answer: null, error: 'cancelled' }))).toBe(true);

      expect(await store.claimRun('w1', 60_000)).toMatchObject({ id: done.id });
      await store.finishRun('w1', done.id, outcome());
      const finished = await store.getRun(team.id, done.id);
      expect(await store.requestCancel(team.id, done.id)).toEqual(finished);
      expect(await store.claimRun('w1', 60_000)).toBeNull();
    });
  });

  describe('events and trajectories', () => {
    it('numbers appended events after the run’s own and reads them in pages', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun(newRun(team.id));
      const appended = await store.appendEvents(run.id, [
        { type: 'run_start', data: { depth: 0 } },
        { type: 'turn_start', data: { turn: 1, nested: { a: [1, 'two', null] } } },
      ]);
      expect(appended.map((event) => [event.seq, event.type])).toEqual([
        [2, 'run_start'],
        [3, 'turn_start'],
      ]);
      expect(await store.appendEvents(run.id, [])).toEqual([]);
      const all = await store.readEvents(run.id, 0);
      expect(all.slice(1)).toEqual(appended);
      expect(await store.readEvents(run.id, 1, 1)).toEqual([appended[0]]);
      expect(await store.readEvents(run.id, 3)).toEqual([]);
      expect((await rejection(store.appendEvents('run_000000000000000000000000', [{ type: 'x', data: {} }]))).kind).toBe('not_found');
    });

    it('gives concurrent appenders distinct, gapless numbers', async () => {
      const { store, peers } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun(newRun(team.id));
      const stores = await peers(3);
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          (stores[i % stores.length] as ServiceStore).appendEvents(run.id, [
            { type: 'tick', data: { i, part: 0 } },
            { type: 'tick', data: { i, part: 1 } },
          ]),
        ),
      );
      const events = await store.readEvents(run.id, 0);
      expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 61 }, (_, i) => i + 1));
      // Each call's two events are consecutive.
      for (let i = 1; i < events.length; i += 2) expect(events[i + 1]?.data).toEqual({ ...(events[i]?.data as object), part: 1 });
    });

    it('has no trajectory for a run that wrote none', async () => {
      const { store } = await backend.open();
      const team = await store.createTeam({ name: 'ops' });
      const run = await store.submitRun(newRun(team.id));
      expect(await store.getTrajectory(run.id)).toBeNull();
    });
  });

  describe('pruning finished runs', () => {
    const DAY_MS = 24 * 60 * 60 * 1000;

    /** A signal that reads as aborted from its `after`-th check on: the prune checks it before each batch. */
    function abortedAfterChecks(after: number): AbortSignal {
      let checks = 0;
      return {
        get aborted() {
          return ++checks > after;
        },
        reason: new Error('enough'),
      } as unknown as AbortSignal;
    }

    /** `count` runs of the team, each cancelled while queued: finished, with two events (queued, finished). */
    async function cancelledRuns(store: ServiceStore, teamId: string, count: number): Promise<string[]> {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const run = await store.submitRun(newRun(teamId, `q${i}`));
        await store.requestCancel(teamId, run.id);
        ids.push(run.id);
      }
      return ids;
    }

    it('deletes only the runs finished before the cutoff, with their events, input and trajectory; queued, running and newer runs stay; spend is unchanged', async () => {
      const { store, clock, raw } = await backend.open();
      const team = await store.createTeam({ name: 'ops', budgetUsd: 10 });
      // Old, each way a run ends: succeeded (with a trajectory, events and a cost), failed, cancelled while queued.
      const succeeded = await store.submitRun(newRun(team.id, 'old success'));
      await store.claimRun('w', 60_000);
      await store.appendEvents(
        succeeded.id,
        [1, 2, 3].map((turn) => ({ type: 'turn_start', data: { turn } })),
        { workerId: 'w' },
      );
      await store.finishRun('w', succeeded.id, outcome({ costUsd: 0.25, trajectory: '{"type":"run_start"}\n' }));
      const failed = await store.submitRun(newRun(team.id, 'old failure'));
      await store.claimRun('w', 60_000);
      await store.finishRun('w', failed.id, outcome({ status: 'failed', answer: null, error: 'boom', costUsd: 0.5 }));
      const [cancelled] = await cancelledRuns(store, team.id, 1);
      // Old too, but not finished: running and queued.
      const running = await store.submitRun(newRun(team.id, 'still running'));
      await store.claimRun('w', 60 * DAY_MS);
      const queued = await store.submitRun(newRun(team.id, 'still queued'));
      clock.advance(DAY_MS);
      const cutoff = clock.now();
      // Finished after the cutoff.
      const [recent] = await cancelledRuns(store, team.id, 1);
      const spent = await store.teamSpendUsd(team.id);
      expect(spent).toBe(0.75);
      const old = [succeeded.id, failed.id, cancelled as string];
      const kept = [running.id, queued.id, recent as string];
      const keptEvents = await Promise.all(kept.map((id) => store.readEvents(id, 0)));

      // queued + started + 3 + finished, queued + started + finished, queued + finished.
      expect(await store.pruneRuns({ finishedBefore: cutoff, dryRun: true })).toEqual({ runs: 3, events: 11 });
      for (const id of old) expect(await store.getRun(null, id)).not.toBeNull();

      expect(await store.pruneRuns({ finishedBefore: cutoff })).toEqual({ runs: 3, events: 11 });
      for (const id of old) {
        expect(await store.getRun(null, id)).toBeNull();
        expect(await store.getRunInput(id)).toBeNull();
        expect(await store.getTrajectory(id)).toBeNull();
        expect(await store.readEvents(id, 0)).toEqual([]);
      }
      for (const [i, id] of kept.entries()) {
        expect(await store.getRun(null, id)).not.toBeNull();
        expect(await store.getRunInput(id)).not.toBeNull();
        expect(await store.readEvents(id, 0)).toEqual(keptEvents[i]);
      }
      expect((await store.listRuns(team.id, {})).runs.map((run) => run.id).sort()).toEqual([...kept].sort());
      expect(await store.teamSpendUsd(team.id)).toBe(spent);
      // Nothing left to prune; the running run, finishing now, is not older than the cutoff.
      expect(await store.pruneRuns({ finishedBefore: cutoff })).toEqual({ runs: 0, events: 0 });
      await store.finishRun('w', running.id, outcome());
      expect(await store.pruneRuns({ finishedBefore: cutoff })).toEqual({ runs: 0, events: 0 });
      expect(await store.pruneRuns({ finishedBefore: clock.now() })).toMatchObject({ runs: 2 });

      // Past the store: not one row of a pruned run is left in any table that references runs.
      const list = old.map((id) => `'${id}'`).join(', ');
      for (const table of ['run_events', 'run_inputs', 'run_trajectories']) {
        expect(await raw(`SELECT COUNT(*) AS n FROM ${table} WHERE run_id IN (${list})`), table).toEqual([{ n: 0 }]);
      }
    });

    it("prunes only one team's runs with teamId, and a dry run counts what the prune then deletes", async () => {
      const { store, clock } = await backend.open();
      const ops = await store.createTeam({ name: 'ops' });
      const dev = await store.createTeam({ name: 'dev' });
      const opsRuns = await cancelledRuns(store, ops.id, 3);
      const devRuns = await cancelledRuns(store, dev.id, 2);
      clock.advance(1000);
      const cutoff = clock.now();
      const dry = await store.pruneRuns({ finishedBefore: cutoff, teamId: dev.id, dryRun: true });
      expect(dry).toEqual({ runs: 2, events: 4 });
      expect(await store.pruneRuns({ finishedBefore: cutoff, teamId: dev.id })).toEqual(dry);
      for (const id of devRuns) expect(await store.getRun(null, id)).toBeNull();
      for (const id of opsRuns) expect(await store.getRun(ops.id, id)).not.toBeNull();
      expect(await store.pruneRuns({ finishedBefore: cutoff, teamId: 'team_000000000000000000000000' })).toEqual({ runs: 0, events: 0 });
      expect(await store.pruneRuns({ finishedBefore: cutoff, dryRun: true })).toEqual({ runs: 3, events: 6 });
    });

    it('deletes more runs than one batch, in batches of 500, stopping between two when its signal fires and keeping what it deleted', async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'bulk' });
      await cancelledRuns(store, team.id, 600);
      const cutoff = clock.now();
      expect(await store.pruneRuns({ finishedBefore: cutoff, dryRun: true })).toEqual({ runs: 600, events: 1_200 });

      const aborted = await store.pruneRuns({ finishedBefore: cutoff, signal: abortedAfterChecks(1) }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(aborted).toMatchObject({ name: 'AbortedError', message: expect.stringMatching(/after 500 runs \(1000 events\)/) });
      expect(await store.pruneRuns({ finishedBefore: cutoff, dryRun: true })).toEqual({ runs: 100, events: 200 });
      expect(await store.pruneRuns({ finishedBefore: cutoff })).toEqual({ runs: 100, events: 200 });
      expect((await store.stats()).runsByStatus.cancelled).toBe(0);
      // Aborted before it began: nothing deleted.
      await cancelledRuns(store, team.id, 1);
      await expect(store.pruneRuns({ finishedBefore: clock.now(), signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortedError' });
      expect((await store.stats()).runsByStatus.cancelled).toBe(1);
    });

    it("puts a run with many events in a batch of its own, and goes through one team's runs batch after batch", async () => {
      const { store, clock } = await backend.open();
      const team = await store.createTeam({ name: 'chatty' });
      const other = await store.createTeam({ name: 'other' });
      const ids = await cancelledRuns(store, team.id, 3);
      const others = await cancelledRuns(store, other.id, 2);
      // 3,000 events each: two runs would pass the 5,000 events a batch takes.
      for (const id of ids)
        await store.appendEvents(
          id,
          Array.from({ length: 3_000 }, (_, i) => ({ type: 'tick', data: { i } })),
        );
      const cutoff = clock.now();
      expect(await store.pruneRuns({ finishedBefore: cutoff, teamId: team.id, dryRun: true })).toEqual({ runs: 3, events: 9_006 });
      // Two batches, one run each, then stopped before the third.
      const aborted = await store.pruneRuns({ finishedBefore: cutoff, teamId: team.id, signal: abortedAfterChecks(2) }).catch((error: unknown) => error);
      expect(aborted).toMatchObject({ name: 'AbortedError', message: expect.stringMatching(/after 2 runs \(6004 events\)/) });
      expect(await store.getRun(null, ids[2] as string)).not.toBeNull();
      for (const id of ids.slice(0, 2)) expect(await store.readEvents(id, 0)).toEqual([]);
      expect(await store.pruneRuns({ finishedBefore: cutoff, teamId: team.id })).toEqual({ runs: 1, events: 3_002 });
      for (const id of others) expect(await store.getRun(null, id)).not.toBeNull();
      expect(await store.pruneRuns({ finishedBefore: cutoff })).toEqual({ runs: 2, events: 4 });
    });

    it('refuses a cutoff that is not a time', async () => {
      const { store } = await backend.open();
      for (const finishedBefore of [Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(await rejection(store.pruneRuns({ finishedBefore }))).toMatchObject({
          kind: 'invalid_request',
          message: expect.stringMatching(/^finishedBefore/),
        });
      }
    });
  });

  describe('operations', () => {
    it('counts runs by status and queued runs by team, and the age of the oldest queued run', async () => {
      const { store, clock } = await backend.open();
      const ops = await store.createTeam({ name: 'ops' });
      const dev = await store.createTeam({ name: 'dev' });
      expect(await store.stats()).toEqual({
        runsByStatus: { queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
        queuedByTeam: {},
        oldestQueuedSeconds: 0,
      });
      await store.submitRun(newRun(ops.id));
      await store.submitRun(newRun(ops.id));
      await store.submitRun(newRun(dev.id));
      await store.claimRun('w', 60_000);
      clock.advance(90_000);
      const stats = await store.stats();
      expect(stats.runsByStatus).toEqual({ queued: 2, running: 1, succeeded: 0, failed: 0, cancelled: 0 });
      expect(stats.queuedByTeam).toEqual({ ops: 1, dev: 1 });
      expect(stats.oldestQueuedSeconds).toBeGreaterThanOrEqual(90);
      expect(stats.oldestQueuedSeconds).toBeLessThan(91);
    });

    it('pings, closes twice, and refuses calls once closed', async () => {
      const { store } = await backend.open();
      await store.ping();
      await store.ping(AbortSignal.timeout(10_000));
      await store.close();
      await store[Symbol.asyncDispose]();
      await expect(store.ping()).rejects.toMatchObject({ kind: 'unavailable' });
      await expect(store.listTeams()).rejects.toMatchObject({ kind: 'unavailable' });
    });
  });

  it('never claims a run twice nor runs a team above its cap, with claimers racing (property)', async () => {
    // Several claimers race on one database (on PostgreSQL: separate store instances, as workers
    // on several machines); between rounds some running runs finish. Whatever the teams' caps and
    // queues, every run is claimed exactly once and no team ever has more running than its cap.
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ cap: fc.integer({ min: 1, max: 3 }), runs: fc.integer({ min: 0, max: 8 }) }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 2, max: 5 }),
        fc.infiniteStream(fc.boolean()),
        async (teamSpecs, claimers, finishCoin) => {
          const { store, peers } = await backend.open();
          const stores = await peers(claimers);
          const capOf = new Map<string, number>();
          let total = 0;
          for (const [index, spec] of teamSpecs.entries()) {
            const team = await store.createTeam({ name: `t${index}`, maxConcurrentRuns: spec.cap, maxQueued: 100 });
            capOf.set(team.id, spec.cap);
            for (let i = 0; i < spec.runs; i++) await store.submitRun(newRun(team.id));
            total += spec.runs;
          }
          const claimedOnce = new Set<string>();
          const running = new Map<string, RunRecord>();
          const coins = finishCoin[Symbol.iterator]();
          for (let round = 0; claimedOnce.size < total; round++) {
            expect(round).toBeLessThan(total * 4 + 10);
            const claims = await Promise.all(stores.map((peer, i) => peer.claimRun(`w${i}`, 60_000)));
            for (const run of claims) {
              if (run === null) continue;
              expect(claimedOnce.has(run.id)).toBe(false);
              claimedOnce.add(run.id);
              running.set(run.id, run);
            }
            for (const [teamId, cap] of capOf) expect([...running.values()].filter((run) => run.teamId === teamId).length).toBeLessThanOrEqual(cap);
            // A round in which every claim came back empty must mean there was nothing to start.
            if (claims.every((run) => run === null)) expect(running.size).toBeGreaterThan(0);
            for (const run of [...running.values()]) {
              if (coins.next().value || claims.every((claim) => claim === null)) {
                expect(await store.finishRun(run.workerId as string, run.id, outcome())).toBe(true);
                running.delete(run.id);
              }
            }
          }
          expect(await store.claimRun('late', 60_000)).toBeNull();
          for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
        },
      ),
      { numRuns: backend.name === 'postgres' ? 8 : 25 },
    );
  });
});

describe('the embedded database and kill -9', () => {
  let child: ChildProcess | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
  });

  it('keeps a run whose submit resolved when the process is SIGKILLed, admits admin opens meanwhile, and frees its data directory', async () => {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-store-kill-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    // The store from its TypeScript sources (no build needed); the sources import `./x.js` for
    // `x.ts`, which a resolve hook maps: registerHooks where Node has it, else register (Node 22.13).
    const script = `
      import * as nodeModule from 'node:module';
      const retry = (specifier, context, error) =>
        context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js') && error?.code === 'ERR_MODULE_NOT_FOUND';
      if (nodeModule.registerHooks) {
        nodeModule.registerHooks({
          resolve(specifier, context, nextResolve) {
            try {
              return nextResolve(specifier, context);
            } catch (error) {
              if (!retry(specifier, context, error)) throw error;
              return nextResolve(specifier.slice(0, -3) + '.ts', context);
            }
          },
        });
      } else {
        const hooks = 'export async function resolve(specifier, context, nextResolve) {' +
          ' try { return await nextResolve(specifier, context); } catch (error) {' +
          " if (!(context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js') && error?.code === 'ERR_MODULE_NOT_FOUND')) throw error;" +
          " return nextResolve(specifier.slice(0, -3) + '.ts', context); } }";
        nodeModule.register('data:text/javascript,' + encodeURIComponent(hooks));
      }
      const { openServiceStore } = await import(${JSON.stringify(pathToFileURL(STORE_SOURCE).href)});
      const store = await openServiceStore({ dataDir: ${JSON.stringify(dataDir)} });
      const team = await store.createTeam({ name: 'durable' });
      const run = await store.submitRun({ teamId: team.id, input: { query: 'keep me', context: 'x'.repeat(100000) }, model: null, language: 'javascript', limits: {}, source: 'runs' });
      await store.appendEvents(run.id, [{ type: 'note', data: { written: true } }]);
      process.stdout.write(JSON.stringify({ teamId: team.id, runId: run.id }) + '\\n');
      setInterval(() => {}, 60000);
    `;
    child = spawn(
      process.execPath,
      ['--experimental-transform-types', '--disable-warning=ExperimentalWarning', '--conditions=rlm-source', '--input-type=module', '-e', script],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child?.once('exit', () => resolve()));
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child?.stdout as NodeJS.ReadableStream }).once('line', resolve);
      child?.once('exit', (code) => reject(new Error(`the child exited (${code}) before it printed the run: ${stderr}`)));
    });
    const { teamId, runId } = JSON.parse(line) as { teamId: string; runId: string };

    // While it lives, the directory is its own to serve; an admin command can still open it.
    await expect(openServiceStore({ dataDir })).rejects.toThrow(/is in use by another rlm serve process/);
    const admin = await openServiceStore({ dataDir, access: 'admin' });
    expect(await admin.getRun(teamId, runId)).toMatchObject({ status: 'queued' });
    await admin.createTeam({ name: 'added-beside' });
    await admin.close();

    child.kill('SIGKILL');
    await exited;
    const store = await openServiceStore({ dataDir });
    cleanups.push(() => store.close());
    expect(await store.getRun(teamId, runId)).toMatchObject({ status: 'queued', query: 'keep me' });
    expect((await store.getRunInput(runId))?.context).toHaveLength(100_000);
    expect((await store.readEvents(runId, 0)).map((event) => event.type)).toEqual(['queued', 'note']);
    expect((await store.listTeams()).map((team) => team.name)).toEqual(['added-beside', 'durable']);
    expect(stderr).not.toMatch(/ExperimentalWarning/);
  });
});

describe('opening', () => {
  it('names the PostgreSQL server it cannot reach, without the password', async () => {
    const error = await rejection(openServiceStore({ databaseUrl: 'postgres://rlm:s3cret-pw@127.0.0.1:1/rlm' }));
    expect(error).toMatchObject({ kind: 'unavailable', message: expect.stringContaining('postgres://rlm@127.0.0.1:1/rlm') });
    expect(error.message).not.toContain('s3cret-pw');
  });

  it('stops connecting to a PostgreSQL that does not answer when its signal fires', async () => {
    const controller = new AbortController();
    // Accepts the connection and never answers: the abort, not a timeout, must end the wait.
    const sockets: Socket[] = [];
    const silent = createServer((socket) => {
      sockets.push(socket);
      controller.abort();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const { port } = silent.address() as AddressInfo;
    await expect(openServiceStore({ databaseUrl: `postgres://rlm@127.0.0.1:${port}/rlm`, signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortedError',
      kind: 'aborted',
    });
  });

  it('refuses a database URL that is not PostgreSQL’s', async () => {
    const error = await rejection(openServiceStore({ databaseUrl: 'mysql://root:pw@localhost/rlm' }));
    expect(error).toMatchObject({ kind: 'invalid_request', message: expect.stringMatching(/only PostgreSQL/) });
    expect(error.message).not.toContain(':pw@');
  });

  it('applies the migrations once when several servers open one PostgreSQL database at once', async () => {
    if (!postgres) throw new Error('the PostgreSQL cluster did not start');
    const databaseUrl = await postgres.newDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openServiceStore({ databaseUrl, maxConnections: 2 })));
    cleanups.push(async () => {
      await Promise.all(stores.map((store) => store.close()));
    });
    await stores[0]?.createTeam({ name: 'shared' });
    expect(await stores[3]?.teamByName('shared')).toMatchObject({ name: 'shared' });
  });
});
