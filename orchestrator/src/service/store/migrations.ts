/**
 * The store's schema as versioned migrations, applied in order when the store opens, each once, in
 * a transaction of its own, recorded in `schema_migrations`. One SQL text serves both databases:
 * times are BIGINT epoch milliseconds, JSON is TEXT, flags are INTEGER 0/1, money is DOUBLE
 * PRECISION (SQLite reads these type names with the right affinity). The one difference is how
 * `runs.seq` counts itself ({@link autoIncrementKey}).
 *
 * A migration, once released, never changes: a change of schema is a new migration.
 */
import { ServiceError } from '../service-types.js';
import type { SqlDatabase, SqlDialect, SqlExecutor } from './sql-database.js';

export interface Migration {
  /** 1, 2, 3…: applied in this order; gaps are not allowed. */
  version: number;
  /** What it does, in a few words (stored alongside the version). */
  name: string;
  /** Its statements, one per entry, for the database at hand. */
  statements(dialect: SqlDialect): string[];
}

/** A primary key that numbers rows in insertion order, never reusing a number. */
function autoIncrementKey(dialect: SqlDialect): string {
  return dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY';
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'teams, tokens, runs and their inputs, events and trajectories',
    statements: (dialect) => [
      `CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        budget_usd DOUBLE PRECISION,
        -- The sum of the recorded costs of its runs, kept with each finished run, so that admission reads
        -- one row instead of summing every run the team ever had.
        spent_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        max_concurrent_runs INTEGER NOT NULL,
        max_queued INTEGER NOT NULL,
        -- JSON array of configured model names; NULL: every model.
        models TEXT,
        created_at BIGINT NOT NULL,
        -- When a run of the team last started: the round-robin across teams picks the oldest (NULL first).
        last_started_at BIGINT
      )`,
      `CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        team_id TEXT NOT NULL REFERENCES teams (id),
        prefix TEXT NOT NULL,
        -- SHA-256 of the token, hex; the token itself is never stored.
        token_hash TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT,
        last_used_at BIGINT
      )`,
      'CREATE INDEX tokens_by_prefix ON tokens (prefix)',
      'CREATE INDEX tokens_by_team ON tokens (team_id, created_at)',
      `CREATE TABLE runs (
        -- Submission order: FIFO within a team, and the order and cursor of listings.
        seq ${autoIncrementKey(dialect)},
        id TEXT NOT NULL UNIQUE,
        team_id TEXT NOT NULL REFERENCES teams (id),
        status TEXT NOT NULL,
        query TEXT NOT NULL,
        model TEXT,
        language TEXT NOT NULL,
        limits TEXT NOT NULL,
        source TEXT NOT NULL,
        answer TEXT,
        error TEXT,
        usage TEXT NOT NULL,
        cost_usd DOUBLE PRECISION,
        iterations INTEGER NOT NULL DEFAULT 0,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        attempts INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_expires_at BIGINT,
        -- The seq of the last event of the run: appending reserves the next numbers by updating it,
        -- which also serializes concurrent appenders on the row.
        last_event_seq INTEGER NOT NULL DEFAULT 0
      )`,
      // Claims (queued runs of a team, oldest first), running counts per team, counts by status.
      'CREATE INDEX runs_by_status_team ON runs (status, team_id, seq)',
      // A team's runs, newest first.
      'CREATE INDEX runs_by_team ON runs (team_id, seq DESC)',
      `CREATE TABLE run_inputs (
        run_id TEXT PRIMARY KEY REFERENCES runs (id),
        input TEXT NOT NULL
      )`,
      // The primary key is the index of a run's events in order.
      `CREATE TABLE run_events (
        run_id TEXT NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (run_id, seq)
      )`,
      `CREATE TABLE run_trajectories (
        run_id TEXT PRIMARY KEY REFERENCES runs (id),
        trajectory TEXT NOT NULL
      )`,
    ],
  },
  {
    version: 2,
    name: 'admin tokens and the workers table',
    statements: () => [
      // An admin token reads /v1/admin/* (the workers) besides its team's API.
      'ALTER TABLE tokens ADD COLUMN admin INTEGER NOT NULL DEFAULT 0',
      `CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        -- Runs it runs at once, and how many it ran at its last heartbeat.
        capacity INTEGER NOT NULL,
        running INTEGER NOT NULL,
        draining INTEGER NOT NULL DEFAULT 0,
        started_at BIGINT NOT NULL,
        last_heartbeat_at BIGINT NOT NULL
      )`,
    ],
  },
  {
    version: 3,
    name: 'finished runs by finish time, for pruning',
    statements: () => [
      // pruneRuns selects runs finished before a cutoff, oldest first: a range of this index, where the
      // others would read every finished run. Queued and running runs (finished_at NULL) sit apart in it.
      'CREATE INDEX runs_by_finished ON runs (finished_at)',
    ],
  },
];

/**
 * Serializes migrating processes on PostgreSQL (two servers starting at once on one database): a
 * transaction-scoped advisory lock on a fixed key. SQLite's write transaction already excludes
 * every other writer.
 */
async function lockSchema(tx: SqlExecutor): Promise<void> {
  // The key: 'rlm.serve.migrations' hashed once, written out so it never changes with a PostgreSQL version.
  if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(7254137701920811367)');
}

/**
 * Brings the database's schema to the newest version: applies, in order, every migration not yet
 * recorded, each in its own transaction (a failure rolls it back and leaves the earlier ones
 * applied). Safe to run concurrently from several processes on one PostgreSQL, and again on a
 * database already up to date (it then only reads `schema_migrations`).
 * @returns the versions it applied (none when up to date).
 * @throws {ServiceError} `unavailable` when the database has a version newer than this rlm knows
 *   (an older rlm must not write to a schema it does not understand).
 */
export async function applyMigrations(
  db: SqlDatabase,
  options: { migrations?: readonly Migration[]; now?: () => number } = {},
): Promise<{ applied: number[] }> {
  const migrations = options.migrations ?? MIGRATIONS;
  const now = options.now ?? Date.now;
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) throw new Error(`migration ${migration.name}: version ${migration.version} where ${index + 1} was expected`);
  });
  const readVersions = () => db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  // Read first: on a database already set up (every start but the first) opening then writes nothing.
  let recorded = await readVersions().catch(() => null);
  if (recorded === null) {
    await db.transaction(async (tx) => {
      await lockSchema(tx);
      await tx.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    });
    recorded = await readVersions();
  }
  const newest = recorded.at(-1)?.version ?? 0;
  if (newest > migrations.length) {
    throw new ServiceError(
      'unavailable',
      `the database's schema is at version ${newest}, newer than this rlm knows (${migrations.length}): a newer rlm serve used it. Upgrade rlm to use this database`,
    );
  }
  const done = new Set(recorded.map((row) => row.version));
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    const ran = await db.transaction(async (tx) => {
      await lockSchema(tx);
      // Another process may have applied it since the read above.
      const already = await tx.query('SELECT version FROM schema_migrations WHERE version = $1', [migration.version]);
      if (already.length > 0) return false;
      for (const statement of migration.statements(tx.dialect)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, now()]);
      return true;
    });
    if (ran) applied.push(migration.version);
  }
  return { applied };
}
