/**
 * The embedded database: node:sqlite (Node ≥ 22.13) on one file, `<dataDir>/rlm.db`, held by one
 * process. Why node:sqlite and not PGlite: see ../../../../shared/architecture.md and the serve
 * brief (4 ms to open and ~45 MB of memory, against PGlite's 0.5–4 s and 530–740 MB).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { AbortedError, errorMessage } from '../../errors.js';
import { ServiceError } from '../service-types.js';
import { type SqlDatabase, type SqlExecutor, type SqlParam, toSqliteStatement } from './sql-database.js';

/** The database file's name inside the data directory. */
export const EMBEDDED_DATABASE_FILE = 'rlm.db';

/** Prepared statements kept per connection; the store's SQL texts are a few dozen, IN-lists add some. */
const STATEMENT_CACHE_SIZE = 256;

/** SQLite's result code when another connection holds the lock it needs. */
const SQLITE_BUSY = 5;

/** The file a serving process holds locked while it serves from the data directory. */
export const SERVE_LOCK_FILE = 'serve.lock';

/** How long a statement waits for another process's transaction (an admin command's) before it fails. */
const BUSY_TIMEOUT_MS = 5_000;

export interface SqliteDatabaseOptions {
  /** The data directory; created when missing. */
  dataDir: string;
  /**
   * `serve` (the default): this process serves from the directory and holds it until it closes or
   * dies; opening it to serve again, from any process, fails. `admin`: a short-lived open beside a
   * serving process (`rlm serve teams create`, `tokens revoke`…): it takes no hold, and its
   * transactions and the server's wait for each other.
   */
  access?: 'serve' | 'admin';
  signal?: AbortSignal;
}

/**
 * Opens (creating it and the directory when missing) the embedded database of a data directory,
 * `<dataDir>/rlm.db`, durable at each commit:
 * - `journal_mode=WAL` and `synchronous=FULL`: a committed transaction is in the WAL file, synced,
 *   before its promise resolves, so neither `kill -9` nor a power loss loses it.
 * - Serving holds the directory: `<dataDir>/serve.lock` is opened with `locking_mode=EXCLUSIVE`
 *   and written, so its file lock is taken now and kept until close. The operating system drops it
 *   when the process dies, so a crash leaves no stale lock. A second server — in another process
 *   or in this one — fails at once instead of sharing a queue with a process it cannot see. The
 *   lock is on a file of its own, not on rlm.db, so that admin commands can open rlm.db beside the
 *   server (`access: 'admin'`).
 * Statements are serialized by an async mutex, so a transaction's callback may await between
 * statements without another query running inside its transaction.
 * @throws {ServiceError} `unavailable` when Node has no node:sqlite (older than 22.13), when another
 *   `rlm serve` holds the directory, or when the file cannot be opened; {@link AbortedError} when
 *   `signal` fired.
 */
export async function openSqliteDatabase(options: SqliteDatabaseOptions): Promise<SqlDatabase> {
  const { dataDir, signal } = options;
  const throwIfAborted = () => {
    if (signal?.aborted) throw new AbortedError('opening the embedded database was aborted', { cause: signal.reason });
  };
  throwIfAborted();
  const sqlite = await loadNodeSqlite();
  throwIfAborted();
  const file = path.join(dataDir, EMBEDDED_DATABASE_FILE);
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw new ServiceError('unavailable', `cannot create the data directory ${dataDir}: ${errorMessage(error)}`, { cause: error });
  }
  const hold = (options.access ?? 'serve') === 'serve' ? holdDataDir(sqlite, dataDir) : undefined;
  let db: DatabaseSync | undefined;
  try {
    db = new sqlite.DatabaseSync(file);
    // Before anything that writes: the first statement may have to wait for another process.
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA foreign_keys = ON');
  } catch (error) {
    db?.close();
    hold?.close();
    throw new ServiceError('unavailable', `cannot open the embedded database ${file}: ${errorMessage(error)}`, { cause: error });
  }
  return new SqliteDatabase(db, file, hold);
}

/**
 * Takes the serving hold on a data directory: its lock file, opened in EXCLUSIVE locking mode and
 * written, so the lock is held until the connection closes.
 */
function holdDataDir(sqlite: typeof import('node:sqlite'), dataDir: string): DatabaseSync {
  const lockFile = path.join(dataDir, SERVE_LOCK_FILE);
  let lock: DatabaseSync | undefined;
  try {
    lock = new sqlite.DatabaseSync(lockFile);
    lock.exec('PRAGMA locking_mode = EXCLUSIVE');
    lock.exec('BEGIN IMMEDIATE; CREATE TABLE IF NOT EXISTS held (pid INTEGER, since INTEGER); DELETE FROM held');
    lock.prepare('INSERT INTO held (pid, since) VALUES (?, ?)').run(process.pid, Date.now());
    lock.exec('COMMIT');
    return lock;
  } catch (error) {
    lock?.close();
    if (sqliteErrcode(error) === SQLITE_BUSY) {
      throw new ServiceError(
        'unavailable',
        `the data directory ${path.resolve(dataDir)} is in use by another rlm serve process (it holds ${SERVE_LOCK_FILE}): ` +
          'stop that process, or start this one with another data directory',
        { cause: error },
      );
    }
    throw new ServiceError('unavailable', `cannot lock the data directory ${path.resolve(dataDir)} (${lockFile}): ${errorMessage(error)}`, { cause: error });
  }
}

class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  readonly #db: DatabaseSync;
  readonly #file: string;
  readonly #hold: DatabaseSync | undefined;
  readonly #statements = new Map<string, { statement: StatementSync; order: number[] }>();
  readonly #mutex = new AsyncMutex();
  #closing: Promise<void> | undefined;
  #closed = false;

  constructor(db: DatabaseSync, file: string, hold: DatabaseSync | undefined) {
    this.#db = db;
    this.#file = file;
    this.#hold = hold;
  }

  query<T extends object>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError());
    return this.#mutex.run(() => this.#run<T>(sql, params));
  }

  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) return Promise.reject(this.#closedError());
    return this.#mutex.run(async () => {
      let open = true;
      const tx: SqlExecutor = {
        dialect: this.dialect,
        query: async <R extends object>(sql: string, params: readonly SqlParam[] = []) => {
          if (!open) throw new Error('a statement of a transaction that has ended (use the database, not the transaction, after it)');
          return this.#run<R>(sql, params);
        },
      };
      // IMMEDIATE: take the write lock at BEGIN, so a transaction never fails half-way to upgrade it.
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(tx);
        open = false;
        this.#db.exec('COMMIT');
        return result;
      } catch (error) {
        open = false;
        try {
          this.#db.exec('ROLLBACK');
        } catch {
          // SQLite already rolled back (some errors end the transaction themselves).
        }
        throw error;
      }
    });
  }

  close(): Promise<void> {
    // Statements queued before the call still run; later ones are refused.
    this.#closing ??= this.#mutex.run(() => {
      this.#closed = true;
      this.#statements.clear();
      this.#db.close();
      this.#hold?.close();
    });
    return this.#closing;
  }

  #run<T extends object>(sql: string, params: readonly SqlParam[]): T[] {
    if (this.#closed) throw this.#closedError();
    let prepared = this.#statements.get(sql);
    if (prepared === undefined) {
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) this.#statements.clear();
      const { sql: text, order } = toSqliteStatement(sql);
      prepared = { statement: this.#db.prepare(text), order };
      this.#statements.set(sql, prepared);
    }
    const values = prepared.order.map((index) => {
      if (index < 0 || index >= params.length) throw new RangeError(`$${index + 1} has no parameter (${params.length} given)`);
      return toSqliteValue(params[index] as SqlParam);
    });
    return prepared.statement.all(...values) as T[];
  }

  #closedError(): ServiceError {
    return new ServiceError('unavailable', `the embedded database ${this.#file} is closed`);
  }
}

function toSqliteValue(value: SqlParam): string | number | bigint | null {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

function sqliteErrcode(error: unknown): number | undefined {
  const errcode = typeof error === 'object' && error !== null ? (error as { errcode?: unknown }).errcode : undefined;
  return typeof errcode === 'number' ? errcode & 0xff : undefined;
}

/**
 * `node:sqlite`, imported on first use (the CLI's other commands never load it), without the
 * ExperimentalWarning some Node versions print when it loads: the service's logs are JSON lines, and
 * a warning on stderr at every start says nothing an operator can act on.
 * @throws {ServiceError} `unavailable` on a Node without it.
 */
async function loadNodeSqlite(): Promise<typeof import('node:sqlite')> {
  const emitWarning = process.emitWarning;
  process.emitWarning = function filtered(this: NodeJS.Process, warning: string | Error, ...rest: unknown[]) {
    const message = typeof warning === 'string' ? warning : warning.message;
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: unknown } | undefined)?.type;
    const name = typeof warning === 'string' ? type : warning.name;
    if (name === 'ExperimentalWarning' && /SQLite/i.test(message)) return;
    return (emitWarning as (...args: unknown[]) => void).call(this, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return await import('node:sqlite');
  } catch (error) {
    throw new ServiceError(
      'unavailable',
      `the embedded database needs Node.js 22.13 or later (its node:sqlite module); this is Node.js ${process.versions.node}. ` +
        'Upgrade Node.js, or give a PostgreSQL URL (postgres://…) with --database or DATABASE_URL',
      { cause: error },
    );
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** Runs callbacks one at a time, in call order, each to the end of its promise. */
class AsyncMutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => T | Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    // The next caller waits for this one to settle, whether it resolved or rejected.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
