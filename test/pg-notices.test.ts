/**
 * Notices across processes over PostgreSQL LISTEN/NOTIFY (orchestrator/src/service/pg-notices.ts),
 * on a throwaway cluster: what one process publishes reaches the others, reaches its own listeners
 * once, and keeps flowing after the database drops the listening connection.
 */
import { pino } from 'pino';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresNotices, type PostgresNotices } from '../orchestrator/src/service/pg-notices.js';
import type { ServiceNotice } from '../orchestrator/src/service/service-types.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

let database: TestPostgres;
beforeAll(async () => {
  database = await startPostgres();
});
afterAll(async () => {
  await database?.close();
});

const logger = pino({ level: 'silent' });

/** Resolves with the first notice `notices` delivers that `match` accepts. */
function next(notices: PostgresNotices, match: (notice: ServiceNotice) => boolean): Promise<ServiceNotice> {
  return new Promise((resolve) => {
    const unsubscribe = notices.subscribe((notice) => {
      if (!match(notice)) return;
      unsubscribe();
      resolve(notice);
    });
  });
}

describe('notices over PostgreSQL', () => {
  it('carry a notice to every other process, and to their own listeners exactly once', async () => {
    const url = await database.newDatabase();
    const a = await createPostgresNotices({ databaseUrl: url, logger });
    const b = await createPostgresNotices({ databaseUrl: url, logger });
    try {
      const seenByA: ServiceNotice[] = [];
      a.subscribe((notice) => seenByA.push(notice));
      const atB = next(b, (n) => n.kind === 'run_cancel');
      a.publish({ kind: 'run_cancel', runId: 'run_1' });
      expect(await atB).toEqual({ kind: 'run_cancel', runId: 'run_1' });
      // A later notice from B reaching A proves A's own earlier one had its chance to come back.
      const atA = next(a, (n) => n.kind === 'run_events');
      b.publish({ kind: 'run_events', runId: 'run_1', lastSeq: 7 });
      await atA;
      expect(seenByA).toEqual([
        { kind: 'run_cancel', runId: 'run_1' },
        { kind: 'run_events', runId: 'run_1', lastSeq: 7 },
      ]);
    } finally {
      await a.close();
      await b.close();
      await b.close();
    }
  });

  it('listen again after the database terminates the listening connection', async () => {
    const url = await database.newDatabase();
    const a = await createPostgresNotices({ databaseUrl: url, logger });
    const b = await createPostgresNotices({ databaseUrl: url, logger });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const terminated = await admin.query<{ n: string }>(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
      );
      expect(Number(terminated.rows[0]?.n)).toBe(2);
      // Until both have listened again a notice can be lost (notices are hints); publish until one arrives.
      const arrived = next(b, (n) => n.kind === 'run_queued');
      let delivered = false;
      void arrived.then(() => (delivered = true));
      const deadline = Date.now() + 60_000;
      while (!delivered && Date.now() < deadline) {
        a.publish({ kind: 'run_queued', runId: 'run_2', teamId: 'team_1' });
        await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 200))]);
      }
      expect(await arrived).toEqual({ kind: 'run_queued', runId: 'run_2', teamId: 'team_1' });
    } finally {
      await admin.end();
      await a.close();
      await b.close();
    }
  });
});
