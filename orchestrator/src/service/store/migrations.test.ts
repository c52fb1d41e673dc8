import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyMigrations, MIGRATIONS, type Migration } from './migrations.js';
import type { SqlDatabase } from './sql-database.js';
import { openSqliteDatabase } from './sqlite-database.js';

let dataDir: string;
let db: SqlDatabase;

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-migrations-'));
  db = await openSqliteDatabase({ dataDir });
});

afterEach(async () => {
  await db.close();
  await rm(dataDir, { recursive: true, force: true });
});

const tables = async () =>
  (await db.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")).map((row) => row.name);

describe('applyMigrations', () => {
  it('creates the schema once and records each version; a second run applies nothing', async () => {
    expect(await applyMigrations(db, { now: () => 1234 })).toEqual({ applied: MIGRATIONS.map((m) => m.version) });
    expect(await tables()).toEqual(['run_events', 'run_inputs', 'run_trajectories', 'runs', 'schema_migrations', 'teams', 'tokens', 'workers']);
    expect(await db.query('SELECT version, applied_at FROM schema_migrations')).toEqual(MIGRATIONS.map((m) => ({ version: m.version, applied_at: 1234 })));

    expect(await applyMigrations(db)).toEqual({ applied: [] });
    expect(await db.query('SELECT COUNT(*) AS n FROM schema_migrations')).toEqual([{ n: MIGRATIONS.length }]);
  });

  it('creates the indexes the queue, the listings and pruning read', async () => {
    await applyMigrations(db);
    const indexes = (await db.query<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' ORDER BY name")).map(
      (row) => row.name,
    );
    expect(indexes).toEqual(['runs_by_finished', 'runs_by_status_team', 'runs_by_team', 'tokens_by_prefix', 'tokens_by_team']);
  });

  it('applies only the migrations added since the last run, in order', async () => {
    const first = MIGRATIONS.slice(0, 1);
    await applyMigrations(db, { migrations: first });
    const second: Migration = { version: 2, name: 'a test table', statements: () => ['CREATE TABLE later (x INTEGER)'] };
    expect(await applyMigrations(db, { migrations: [...first, second] })).toEqual({ applied: [2] });
    expect(await tables()).toContain('later');
  });

  it('rolls a failing migration back entirely and leaves the earlier ones applied', async () => {
    const broken: Migration = { version: 2, name: 'broken', statements: () => ['CREATE TABLE half (x INTEGER)', 'THIS IS NOT SQL'] };
    await expect(applyMigrations(db, { migrations: [MIGRATIONS[0] as Migration, broken] })).rejects.toThrow();
    expect(await tables()).not.toContain('half');
    expect(await db.query('SELECT version FROM schema_migrations')).toEqual([{ version: 1 }]);
  });

  it('refuses a database whose schema is newer than this rlm knows', async () => {
    await applyMigrations(db);
    await db.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)");
    await expect(applyMigrations(db)).rejects.toMatchObject({
      kind: 'unavailable',
      message: expect.stringMatching(/schema is at version 99, newer than this rlm knows .*Upgrade rlm/),
    });
  });
});
