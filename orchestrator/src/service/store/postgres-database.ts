/**
 * PostgreSQL through node-postgres (`pg`): a pool of connections, a transaction on one of them.
 */
import type { DatabaseError, Pool, PoolClient, QueryResultRow } from 'pg';
import { AbortedError, errorMessage } from '../../errors.js';
import { ServiceError } from '../service-types.js';
import type { SqlDatabase, SqlExecutor, SqlParam } from './sql-database.js';

/** How long opening waits for the first connection before it fails. */
const CONNECT_TIMEOUT_MS = 10_000;
/** PostgreSQL type oids whose text form is an integer or a decimal the store reads as a number. */
const INT8_OID = 20;
const NUMERIC_OID = 1700;

export interface PostgresDatabaseOptions {
  /** `postgres://user:password@host:port/database` (or `postgresql://`); pg's query parameters (`sslmode`…) work. */
  url: string;
  /** Connections at most in the pool (default 10). */
  maxConnections?: number;
  signal?: AbortSignal;
}

/**
 * Connects to PostgreSQL and answers once a first query succeeded.
 * @throws {ServiceError} `unavailable` when the server cannot be reached or refuses the connection
 *   (the message names the URL without its password); {@link AbortedError} when `signal` fired.
 */
export async function openPostgresDatabase(options: PostgresDatabaseOptions): Promise<SqlDatabase> {
  const { url, signal } = options;
  const shownUrl = redactDatabaseUrl(url);
  if (signal?.aborted) throw new AbortedError('connecting to PostgreSQL was aborted', { cause: signal.reason });
  // Loaded here, not at the top: a server on the embedded database never needs it.
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'rlm serve',
    // BIGINT (epoch milliseconds, counts) and NUMERIC (sums) as numbers, for this pool only: pg's
    // default is strings, and its global type table belongs to whoever else uses pg in the process.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID || oid === NUMERIC_OID ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle connection that drops emits 'error' on the pool, which would crash the process if
  // nobody listened; the next query that needs a connection reports the problem.
  pool.on('error', () => undefined);
  const database = new PostgresDatabase(pool, shownUrl, pg.DatabaseError);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new AbortedError('connecting to PostgreSQL was aborted', { cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    await Promise.race([database.query('SELECT 1'), aborted]);
  } catch (error) {
    // Not awaited when aborted: ending the pool waits for the connection attempt (up to its timeout).
    const closed = database.close().catch(() => undefined);
    if (!AbortedError.isInstance(error)) await closed;
    if (ServiceError.isInstance(error) && error.kind === 'unavailable') {
      throw new ServiceError(
        'unavailable',
        `cannot connect to PostgreSQL at ${shownUrl}: ${describeError(error.cause)}. Check that the server runs and accepts this user, and the URL given with --database or DATABASE_URL`,
        { cause: error.cause },
      );
    }
    throw error;
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
  return database;
}

/** The URL as it may be shown: without its password (`postgres://rlm@db:5432/rlm`). */
export function redactDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = '';
    parsed.searchParams.delete('password');
    return parsed.toString();
  } catch {
    // Not a URL we can take apart: show none of it rather than a password.
    return 'the PostgreSQL URL given (not a valid URL)';
  }
}

class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  readonly #pool: Pool;
  readonly #shownUrl: string;
  readonly #databaseError: typeof DatabaseError;
  #closing: Promise<void> | undefined;

  constructor(pool: Pool, shownUrl: string, databaseError: typeof DatabaseError) {
    this.#pool = pool;
    this.#shownUrl = shownUrl;
    this.#databaseError = databaseError;
  }

  async query<T extends object>(sql: string, params: readonly SqlParam[] = []): Promise<T[]> {
    this.#checkOpen();
    try {
      const result = await this.#pool.query<T & QueryResultRow>(sql, params as SqlParam[]);
      return result.rows;
    } catch (error) {
      throw this.#mapError(error);
    }
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.#checkOpen();
    let client: PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (error) {
      throw this.#mapError(error);
    }
    let open = true;
    const tx: SqlExecutor = {
      dialect: this.dialect,
      query: async <R extends object>(sql: string, params: readonly SqlParam[] = []) => {
        if (!open) throw new Error('a statement of a transaction that has ended (use the database, not the transaction, after it)');
        try {
          return (await client.query<R & QueryResultRow>(sql, params as SqlParam[])).rows;
        } catch (error) {
          throw this.#mapError(error);
        }
      },
    };
    try {
      await client.query('BEGIN');
      const result = await fn(tx);
      open = false;
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      open = false;
      try {
        await client.query('ROLLBACK');
        client.release();
      } catch (rollbackError) {
        // The connection is broken: destroy it rather than hand it to the next caller.
        client.release(rollbackError instanceof Error ? rollbackError : true);
      }
      throw this.#mapError(error);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }

  #checkOpen(): void {
    if (this.#closing !== undefined) throw new ServiceError('unavailable', `the connection to PostgreSQL at ${this.#shownUrl} is closed`);
  }

  /**
   * An error of the connection (refused, dropped, the server shutting down or out of connections)
   * becomes a ServiceError `unavailable` naming the server; an error of the statement (a constraint,
   * a syntax error) stays as pg threw it, for the store to read its SQLSTATE.
   */
  #mapError(error: unknown): unknown {
    if (ServiceError.isInstance(error)) return error;
    if (error instanceof this.#databaseError) {
      const code = error.code ?? '';
      const connectionClass =
        code.startsWith('08') || code.startsWith('57P') || code.startsWith('53') || code === '28P01' || code === '28000' || code === '3D000';
      if (!connectionClass) return error;
    } else if (!(error instanceof Error) || !isConnectionError(error)) {
      return error;
    }
    return new ServiceError('unavailable', `cannot use PostgreSQL at ${this.#shownUrl}: ${describeError(error)}`, { cause: error });
  }
}

/**
 * A connection error in words. Node reports a refused connection to a name with several addresses
 * (`localhost`: ::1 and 127.0.0.1) as an AggregateError with an empty message: its parts say it.
 */
function describeError(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') return error.errors.map(describeError).join('; ');
  const message = errorMessage(error);
  const code = (error as { code?: unknown } | null)?.code;
  return message !== '' ? message : typeof code === 'string' ? code : 'unknown error';
}

/** Errors of the socket or of pg's connection handling, as opposed to a bug in a statement. */
function isConnectionError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true; // ECONNREFUSED, ECONNRESET, ENOTFOUND, ETIMEDOUT…
  return /connection|terminated|timeout|closed/i.test(error.message);
}
