import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ServiceError } from '../service-types.js';
import type { SqlDatabase } from './sql-database.js';
import { openSqliteDatabase } from './sqlite-database.js';

let dataDir: string;
const opened: SqlDatabase[] = [];

async function open(dir = dataDir): Promise<SqlDatabase> {
  const db = await openSqliteDatabase({ dataDir: dir });
  opened.push(db);
  return db;
}

beforeEach(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-sqlite-'));
});

afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.close()));
  await rm(dataDir, { recursive: true, force: true });
});

describe('the embedded database', () => {
  it('creates the data directory and opens rlm.db in it, in WAL mode with synchronous=FULL', async () => {
    const dir = path.join(dataDir, 'nested', 'data');
    const db = await open(dir);
    expect(await db.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    expect(await db.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
    expect(await db.query('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
    expect((await db.query<{ file: string }>('PRAGMA database_list')).map((row) => row.file)).toEqual([path.join(dir, 'rlm.db')]);
  });

  it('binds $N placeholders by their number', async () => {
    const db = await open();
    expect(await db.query('SELECT $2 AS b, $1 AS a, $1 AS again', ['one', 'two'])).toEqual([{ b: 'two', a: 'one', again: 'one' }]);
    expect(await db.query('SELECT $1 AS yes, $2 AS no', [true, false])).toEqual([{ yes: 1, no: 0 }]);
  });

  it('refuses a second open of the same data directory, naming it and the other rlm serve', async () => {
    await open();
    const second = openSqliteDatabase({ dataDir });
    await expect(second).rejects.toThrow(ServiceError);
    await expect(second).rejects.toThrow(new RegExp(`data directory ${dataDir.replaceAll('/', '\\/')} is in use by another rlm serve process`));
  });

  it('opens beside a server for admin commands, each seeing what the other committed', async () => {
    const server = await open();
    const admin = await openSqliteDatabase({ dataDir, access: 'admin' });
    opened.push(admin);
    await server.query('CREATE TABLE t (x INTEGER)');
    await admin.query('INSERT INTO t (x) VALUES (1)');
    await server.transaction(async (tx) => tx.query('INSERT INTO t (x) VALUES (2)'));
    expect(await server.query('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }]);
    expect(await admin.query('SELECT x FROM t ORDER BY x')).toEqual([{ x: 1 }, { x: 2 }]);
    // An admin open takes no hold: the directory can still be served only once.
    await expect(openSqliteDatabase({ dataDir })).rejects.toThrow(/in use by another rlm serve process/);
  });

  it('can be opened again once the holder closed it', async () => {
    const first = await open();
    await first.query('CREATE TABLE t (x INTEGER)');
    await first.query('INSERT INTO t (x) VALUES ($1)', [7]);
    await first.close();
    const again = await open();
    expect(await again.query('SELECT x FROM t')).toEqual([{ x: 7 }]);
  });

  it('runs a query issued during a transaction after the transaction, even when the transaction awaits', async () => {
    const db = await open();
    await db.query('CREATE TABLE t (x INTEGER)');
    let resume!: () => void;
    const paused = new Promise<void>((resolve) => (resume = resolve));
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    const transaction = db.transaction(async (tx) => {
      await tx.query('INSERT INTO t (x) VALUES (1)');
      inside();
      await paused;
      await tx.query('INSERT INTO t (x) VALUES (2)');
      return 'done';
    });
    await entered;
    // Issued while the transaction waits between its statements: it must not see (or join) it half-done.
    const count = db.query<{ n: number }>('SELECT COUNT(*) AS n FROM t');
    resume();
    expect(await transaction).toBe('done');
    expect(await count).toEqual([{ n: 2 }]);
  });

  it('rolls a transaction back when its callback throws, and goes on serving', async () => {
    const db = await open();
    await db.query('CREATE TABLE t (x INTEGER)');
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t (x) VALUES (1)');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await db.query('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 0 }]);
    await db.transaction(async (tx) => tx.query('INSERT INTO t (x) VALUES (2)'));
    expect(await db.query('SELECT x FROM t')).toEqual([{ x: 2 }]);
  });

  it('refuses a statement of a transaction that has ended', async () => {
    const db = await open();
    const leaked = await db.transaction(async (tx) => tx);
    await expect(leaked.query('SELECT 1')).rejects.toThrow(/transaction that has ended/);
  });

  it('finishes the statements queued before close, refuses later ones, and closes twice without error', async () => {
    const db = await open();
    const before = db.query('SELECT 1 AS one');
    const closed = db.close();
    expect(await before).toEqual([{ one: 1 }]);
    await closed;
    await db.close();
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ kind: 'unavailable', message: expect.stringMatching(/is closed/) });
  });
});
