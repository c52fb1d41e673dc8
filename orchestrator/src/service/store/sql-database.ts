/**
 * One small query layer over the two databases `rlm serve` stores its state in: the embedded one
 * (node:sqlite, sqlite-database.ts) and PostgreSQL (pg, postgres-database.ts). The store writes one
 * SQL text for both, with PostgreSQL's `$1` placeholders; the few places where the dialects differ
 * are the helpers at the end of this file.
 */

/** The databases behind a {@link SqlDatabase}. */
export type SqlDialect = 'sqlite' | 'postgres';

/** A value bound to a placeholder. Booleans are stored as 0/1 (neither schema uses a boolean type). */
export type SqlParam = string | number | bigint | boolean | null;

/** Runs statements: the database itself, or one transaction of it. */
export interface SqlExecutor {
  readonly dialect: SqlDialect;
  /**
   * Runs one statement with `$1`, `$2`… placeholders bound to `params` and answers its rows
   * (none for a statement without `RETURNING`). Integers come back as numbers (PostgreSQL's
   * BIGINT and NUMERIC included), text as strings, NULL as null.
   */
  query<T extends object = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
}

/** A database connection (or pool) with transactions. */
export interface SqlDatabase extends SqlExecutor {
  /**
   * Runs `fn` in a transaction: committed when its promise resolves, rolled back when it rejects
   * (the rejection is rethrown). Statements of the transaction go through `tx`; using the database
   * itself inside `fn` waits for the transaction to end (the embedded database) or runs outside it
   * (PostgreSQL), so don't.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Closes the connection(s) once every statement in progress has ended. Safe to call twice. */
  close(): Promise<void>;
}

/** A statement in SQLite's form: anonymous `?` placeholders, and which parameter each one takes. */
export interface SqliteStatement {
  sql: string;
  /** For the n-th `?` of `sql`, the index in the `$N` parameter list (0 for `$1`). */
  order: number[];
}

/**
 * Rewrites PostgreSQL's `$1` placeholders for SQLite. Not to SQLite's `$1` (a *named* parameter,
 * numbered by first appearance, so `$2 … $1` would bind the wrong values), nor to `?1` (node:sqlite
 * before nodejs/node#59350, Node 22.13 among them, skips `?NNN` when binding positionally), but to
 * anonymous `?`, one per occurrence, with the order in which to pass the parameters: this binds
 * the same on every Node that has node:sqlite. Quoted strings and identifiers, and `--` comments,
 * are left as they are.
 */
export function toSqliteStatement(sql: string): SqliteStatement {
  let out = '';
  const order: number[] = [];
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const char = sql[i] as string;
    if (quote !== null) {
      if (char === quote) quote = null;
      out += char;
    } else if (char === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop - 1;
    } else if (char === "'" || char === '"') {
      quote = char;
      out += char;
    } else if (char === '$' && /[0-9]/.test(sql[i + 1] ?? '')) {
      let digits = '';
      while (/[0-9]/.test(sql[i + 1] ?? '')) digits += sql[++i];
      order.push(Number(digits) - 1);
      out += '?';
    } else {
      out += char;
    }
  }
  return { sql: out, order };
}

/**
 * The row-locking clause that ends a `SELECT`: `FOR UPDATE [SKIP LOCKED]` on PostgreSQL, nothing on
 * SQLite, where a write transaction already holds the whole database (BEGIN IMMEDIATE).
 */
export function lockRows(dialect: SqlDialect, options: { skipLocked?: boolean } = {}): string {
  if (dialect === 'sqlite') return '';
  return options.skipLocked ? ' FOR UPDATE SKIP LOCKED' : ' FOR UPDATE';
}

/** True when `error` is a UNIQUE (or PRIMARY KEY) constraint violation of either database. */
export function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, errcode } = error as { code?: unknown; errcode?: unknown };
  // PostgreSQL: SQLSTATE 23505. SQLite: extended codes SQLITE_CONSTRAINT_UNIQUE (2067) and _PRIMARYKEY (1555).
  return code === '23505' || errcode === 2067 || errcode === 1555;
}

/** `$first, $first+1, …` for `count` values: the placeholders of an `IN (…)` list. */
export function placeholders(first: number, count: number): string {
  return Array.from({ length: count }, (_, i) => `$${first + i}`).join(', ');
}
