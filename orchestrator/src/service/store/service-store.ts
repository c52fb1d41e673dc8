/**
 * The {@link ServiceStore} of `rlm serve` on either database: the embedded one (node:sqlite in a
 * data directory) or PostgreSQL. One implementation over {@link SqlDatabase}; the SQL is the same
 * for both but for the row locks of sql-database.ts's `lockRows` (PostgreSQL's `FOR UPDATE [SKIP
 * LOCKED]`, which SQLite needs not: its write transactions hold the whole database).
 *
 * Times are the store's clock (`now`, epoch milliseconds), so that leases compare across the
 * workers of one database as far as their clocks agree.
 */
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { AbortedError } from '../../errors.js';
import {
  type ListRunsQuery,
  type NewRun,
  type NewTeam,
  type PruneRunsOptions,
  type PruneRunsResult,
  RUN_STATUSES,
  type RunInput,
  type RunOutcome,
  type RunPage,
  type RunRecord,
  type RunStatus,
  ServiceError,
  type ServiceStore,
  type StoredRunEvent,
  type StoreStats,
  TEAM_DEFAULTS,
  TERMINAL_STATUSES,
  type TeamRecord,
  type TeamUpdate,
  type TokenRecord,
  type WorkerRecord,
} from '../service-types.js';
import { hashToken, looksLikeToken, newId, newToken, TOKEN_PREFIX_LENGTH } from './ids-and-tokens.js';
import { effectiveLimits } from '../run-limits.js';
import { applyMigrations } from './migrations.js';
import { openPostgresDatabase, redactDatabaseUrl } from './postgres-database.js';
import { EMBEDDED_DATABASE_FILE, openSqliteDatabase } from './sqlite-database.js';
import { decodeCursor, encodeCursor, validBudget, validCount, validLeaseMs, validModels, validRunInput, validTeamName, validWorkerId } from './store-inputs.js';
import { isUniqueViolation, lockRows, placeholders, type SqlDatabase, type SqlExecutor, type SqlParam } from './sql-database.js';
import {
  EVENT_COLUMNS,
  RUN_COLUMNS,
  TEAM_COLUMNS,
  TOKEN_COLUMNS,
  toRunInput,
  toRunRecord,
  toStoredEvent,
  toTeamRecord,
  toTokenRecord,
  toWorkerRecord,
  WORKER_COLUMNS,
  withoutSeq,
} from './store-rows.js';

/** The data directory of the embedded database when none is given. */
export const DEFAULT_DATA_DIR = './rlm-data';

/** `authenticate` writes a token's `last_used_at` at most this often (a write per request would make every read a write). */
const LAST_USED_RESOLUTION_MS = 60_000;
/** Runs of a team whose durations estimate `Retry-After` when its queue is full. */
const RETRY_AFTER_SAMPLE = 20;
/** Events per INSERT: 5 parameters each, well under both databases' limit on parameters. */
const EVENTS_PER_INSERT = 500;
/** Teams a claim looks at before giving up for now (each one full or emptied by a concurrent claim). */
const CLAIM_TEAM_TRIES = 50;
/** Runs a prune deletes per transaction at most: one IN-list of ids, well under both databases' limit on parameters. */
const PRUNE_BATCH_RUNS = 500;
/**
 * Events a prune deletes per transaction, about: a batch takes no further run once its runs' events
 * would pass this (a run alone may, and goes alone), so that runs with many events (up to 64 KiB each)
 * make smaller batches and no transaction runs long.
 */
const PRUNE_BATCH_EVENTS = 5_000;
/**
 * The statuses that are not terminal, as an SQL list (constants, not input). A prune selects
 * `status NOT IN (…)`: the same runs as `status IN (<terminal>)`, but a condition no index serves,
 * so that SQLite (which has no statistics) ranges over runs_by_finished instead of reading every
 * finished run through runs_by_status_team.
 */
const UNFINISHED_SQL = RUN_STATUSES.filter((status) => !TERMINAL_STATUSES.includes(status))
  .map((status) => `'${status}'`)
  .join(', ');

export interface ServiceStoreOptions {
  /**
   * `postgres://…` or `postgresql://…`: that PostgreSQL database. Absent or empty: the embedded
   * database in `dataDir`.
   */
  databaseUrl?: string;
  /** The embedded database's directory, created when missing (default `./rlm-data`). Ignored with a `databaseUrl`. */
  dataDir?: string;
  /**
   * The embedded database: `serve` (the default) holds the data directory for this process, so a
   * second server on it fails; `admin` opens it beside a running server, for commands such as
   * `rlm serve teams create`. Ignored with a `databaseUrl` (PostgreSQL serves many processes).
   */
  access?: 'serve' | 'admin';
  /** PostgreSQL: connections at most in the pool (default 10). */
  maxConnections?: number;
  /** The clock, epoch milliseconds (default `Date.now`); tests move it to expire leases. */
  now?: () => number;
  signal?: AbortSignal;
}

/** A store, and where it keeps its data (the file, or the URL without its password), for logs. */
export type OpenedServiceStore = ServiceStore & { readonly location: string };

/**
 * Opens the service's store and brings its schema up to date (migrations.ts).
 * @throws {ServiceError} `invalid_request` for a `databaseUrl` that is not PostgreSQL's;
 *   `unavailable` when the database cannot be opened or reached: the embedded one on a Node older
 *   than 22.13 or held by another `rlm serve`, PostgreSQL down or refusing the login (the message
 *   says which, and names the URL without its password). {@link AbortedError} when `signal` fired.
 */
export async function openServiceStore(options: ServiceStoreOptions = {}): Promise<OpenedServiceStore> {
  const url = options.databaseUrl?.trim() ?? '';
  let db: SqlDatabase;
  let location: string;
  if (url === '') {
    const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
    db = await openSqliteDatabase({ dataDir, access: options.access ?? 'serve', ...(options.signal ? { signal: options.signal } : {}) });
    location = path.resolve(dataDir, EMBEDDED_DATABASE_FILE);
  } else if (/^postgres(ql)?:\/\//i.test(url)) {
    db = await openPostgresDatabase({
      url,
      ...(options.maxConnections !== undefined ? { maxConnections: options.maxConnections } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    location = redactDatabaseUrl(url);
  } else {
    throw new ServiceError(
      'invalid_request',
      `database URL ${redactDatabaseUrl(url)}: only PostgreSQL (postgres://user:password@host:5432/database) is supported; leave it unset for the embedded database`,
    );
  }
  try {
    if (options.signal?.aborted) throw new AbortedError('opening the store was aborted', { cause: options.signal.reason });
    await applyMigrations(db, options.now ? { now: options.now } : {});
  } catch (error) {
    await db.close().catch(() => undefined);
    throw error;
  }
  return new SqlServiceStore(db, location, options.now ?? Date.now);
}

type RunRow = RunRecord & { seq: number };

class SqlServiceStore implements ServiceStore {
  readonly kind: 'embedded' | 'postgres';
  readonly location: string;
  readonly #db: SqlDatabase;
  readonly #now: () => number;
  #closing: Promise<void> | undefined;

  constructor(db: SqlDatabase, location: string, now: () => number) {
    this.#db = db;
    this.kind = db.dialect === 'sqlite' ? 'embedded' : 'postgres';
    this.location = location;
    this.#now = now;
  }

  // -------------------------------------------------------------------------------------------
  // Teams

  async createTeam(team: NewTeam): Promise<TeamRecord> {
    const record: TeamRecord = {
      id: newId('team'),
      name: validTeamName(team.name),
      budgetUsd: validBudget(team.budgetUsd),
      maxConcurrentRuns: validMaxConcurrentRuns(team.maxConcurrentRuns ?? TEAM_DEFAULTS.maxConcurrentRuns),
      maxQueued: validMaxQueued(team.maxQueued ?? TEAM_DEFAULTS.maxQueued),
      models: validModels(team.models),
      createdAt: this.#now(),
    };
    try {
      await this.#db.query(
        'INSERT INTO teams (id, name, budget_usd, max_concurrent_runs, max_queued, models, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [
          record.id,
          record.name,
          record.budgetUsd,
          record.maxConcurrentRuns,
          record.maxQueued,
          record.models === null ? null : JSON.stringify(record.models),
          record.createdAt,
        ],
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw new ServiceError('conflict', `a team named ${record.name} exists already; choose another name`, { cause: error });
      throw error;
    }
    return record;
  }

  async updateTeam(name: string, update: TeamUpdate): Promise<TeamRecord> {
    // Checked in full before the database is touched: a bad field changes nothing.
    const columns: [column: string, value: SqlParam][] = [];
    if (update.budgetUsd !== undefined) columns.push(['budget_usd', validBudget(update.budgetUsd)]);
    if (update.maxConcurrentRuns !== undefined) columns.push(['max_concurrent_runs', validMaxConcurrentRuns(update.maxConcurrentRuns)]);
    if (update.maxQueued !== undefined) columns.push(['max_queued', validMaxQueued(update.maxQueued)]);
    if (update.models !== undefined) {
      const models = validModels(update.models);
      columns.push(['models', models === null ? null : JSON.stringify(models)]);
    }
    if (columns.length === 0) {
      throw new ServiceError('invalid_request', `nothing to change in team ${name}: give at least one of ${TEAM_UPDATE_FIELDS.join(', ')}`);
    }
    // One statement: an admission or claim running beside it reads the row before or after, never half.
    const set = columns.map(([column], i) => `${column} = $${i + 2}`).join(', ');
    const [row] = await this.#db.query(`UPDATE teams SET ${set} WHERE name = $1 RETURNING ${TEAM_COLUMNS}`, [name, ...columns.map(([, value]) => value)]);
    if (!row) throw noSuchTeam(name);
    return toTeamRecord(row);
  }

  async listTeams(): Promise<TeamRecord[]> {
    return (await this.#db.query(`SELECT ${TEAM_COLUMNS} FROM teams ORDER BY name`)).map(toTeamRecord);
  }

  async teamByName(name: string): Promise<TeamRecord | null> {
    const [row] = await this.#db.query(`SELECT ${TEAM_COLUMNS} FROM teams WHERE name = $1`, [name]);
    return row ? toTeamRecord(row) : null;
  }

  async teamById(id: string): Promise<TeamRecord | null> {
    const [row] = await this.#db.query(`SELECT ${TEAM_COLUMNS} FROM teams WHERE id = $1`, [id]);
    return row ? toTeamRecord(row) : null;
  }

  /** 0 for an unknown team. The sum is kept on the team's row as runs finish (see the schema). */
  async teamSpendUsd(teamId: string): Promise<number> {
    const [row] = await this.#db.query<{ spent_usd: number }>('SELECT spent_usd FROM teams WHERE id = $1', [teamId]);
    return row?.spent_usd ?? 0;
  }

  // -------------------------------------------------------------------------------------------
  // Tokens

  async createToken(teamName: string, options: { admin?: boolean } = {}): Promise<{ token: string; record: TokenRecord }> {
    const team = await this.#requireTeam(teamName);
    const token = newToken();
    const record: TokenRecord = {
      id: newId('tok'),
      teamId: team.id,
      teamName: team.name,
      prefix: token.slice(0, TOKEN_PREFIX_LENGTH),
      createdAt: this.#now(),
      revokedAt: null,
      lastUsedAt: null,
      admin: options.admin === true,
    };
    await this.#db.query('INSERT INTO tokens (id, team_id, prefix, token_hash, created_at, admin) VALUES ($1, $2, $3, $4, $5, $6)', [
      record.id,
      record.teamId,
      record.prefix,
      hashToken(token),
      record.createdAt,
      record.admin ? 1 : 0,
    ]);
    return { token, record };
  }

  /** Oldest first. @throws {ServiceError} `not_found` for an unknown team name. */
  async listTokens(teamName?: string): Promise<TokenRecord[]> {
    const from = `SELECT ${TOKEN_COLUMNS} FROM tokens k JOIN teams t ON t.id = k.team_id`;
    if (teamName === undefined) return (await this.#db.query(`${from} ORDER BY k.created_at, k.id`)).map(toTokenRecord);
    const team = await this.#requireTeam(teamName);
    return (await this.#db.query(`${from} WHERE k.team_id = $1 ORDER BY k.created_at, k.id`, [team.id])).map(toTokenRecord);
  }

  /**
   * Revokes the token whose id or prefix is `idOrPrefix` (the whole token works too). Revoking a
   * revoked token is true and keeps its first revocation time.
   * @throws {ServiceError} `conflict` when a prefix names several tokens (revoke by id).
   */
  async revokeToken(idOrPrefix: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const matches = await tx.query<{ id: string }>(`SELECT id FROM tokens WHERE id = $1 OR prefix = $1 OR token_hash = $2${lockRows(tx.dialect)}`, [
        idOrPrefix,
        hashToken(idOrPrefix),
      ]);
      if (matches.length === 0) return false;
      if (matches.length > 1) {
        throw new ServiceError(
          'conflict',
          `${idOrPrefix} is the prefix of ${matches.length} tokens (${matches.map((m) => m.id).join(', ')}); revoke one by its id`,
        );
      }
      await tx.query('UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1', [(matches[0] as { id: string }).id, this.#now()]);
      return true;
    });
  }

  async isAdminToken(token: string): Promise<boolean> {
    if (!looksLikeToken(token)) return false;
    const rows = await this.#db.query('SELECT id FROM tokens WHERE token_hash = $1 AND revoked_at IS NULL AND admin = 1', [hashToken(token)]);
    return rows.length > 0;
  }

  // -------------------------------------------------------------------------------------------
  // Workers

  async heartbeatWorker(worker: Omit<WorkerRecord, 'lastHeartbeatAt'>): Promise<void> {
    await this.#db.query(
      `INSERT INTO workers (id, host, capacity, running, draining, started_at, last_heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET host = $2, capacity = $3, running = $4, draining = $5, started_at = $6, last_heartbeat_at = $7`,
      [worker.id, worker.host, worker.capacity, worker.running, worker.draining ? 1 : 0, worker.startedAt, this.#now()],
    );
  }

  async listWorkers(options: { staleMs?: number } = {}): Promise<WorkerRecord[]> {
    const since = options.staleMs === undefined ? 0 : this.#now() - options.staleMs;
    return (await this.#db.query(`SELECT ${WORKER_COLUMNS} FROM workers WHERE last_heartbeat_at >= $1 ORDER BY id`, [since])).map(toWorkerRecord);
  }

  async removeWorker(id: string): Promise<void> {
    await this.#db.query('DELETE FROM workers WHERE id = $1', [id]);
  }

  async authenticate(token: string): Promise<TeamRecord | null> {
    if (!looksLikeToken(token)) return null;
    const [row] = await this.#db.query<{ token_id: string; last_used_at: number | null }>(
      `SELECT k.id AS token_id, k.last_used_at, ${prefixed('t', TEAM_COLUMNS)} FROM tokens k JOIN teams t ON t.id = k.team_id
       WHERE k.token_hash = $1 AND k.revoked_at IS NULL`,
      [hashToken(token)],
    );
    if (!row) return null;
    const now = this.#now();
    if (row.last_used_at === null || now - row.last_used_at >= LAST_USED_RESOLUTION_MS) {
      // Conditional, so that concurrent requests with one token write it once.
      await this.#db.query('UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $3)', [
        row.token_id,
        now,
        now - LAST_USED_RESOLUTION_MS,
      ]);
    }
    return toTeamRecord(row);
  }

  // -------------------------------------------------------------------------------------------
  // Runs: admission and reading

  async submitRun(run: NewRun): Promise<RunRecord> {
    const input = validRunInput(run);
    return this.#db.transaction(async (tx) => {
      // The team's row lock (PostgreSQL) serializes its admissions: two submits cannot both see
      // one free place in the queue.
      const [team] = await tx.query<{ name: string; budget_usd: number | null; spent_usd: number; max_queued: number; max_concurrent_runs: number }>(
        `SELECT name, budget_usd, spent_usd, max_queued, max_concurrent_runs FROM teams WHERE id = $1${lockRows(tx.dialect)}`,
        [run.teamId],
      );
      if (!team) throw new ServiceError('not_found', `no team with id ${run.teamId}`);
      if (team.budget_usd !== null && team.spent_usd >= team.budget_usd) {
        throw new ServiceError(
          'budget_exhausted',
          `team ${team.name} has spent $${team.spent_usd.toFixed(4)} of its $${team.budget_usd} budget; an administrator can raise the budget`,
        );
      }
      const [queued] = await tx.query<{ count: number }>("SELECT COUNT(*) AS count FROM runs WHERE status = 'queued' AND team_id = $1", [run.teamId]);
      if ((queued?.count ?? 0) >= team.max_queued) {
        const retryAfterSeconds = await this.#retryAfterSeconds(tx, run.teamId, team.max_concurrent_runs);
        throw new ServiceError('queue_full', `team ${team.name} has ${team.max_queued} runs waiting, its maximum; try again in ${retryAfterSeconds} s`, {
          retryAfterSeconds,
        });
      }
      const limits = effectiveLimits({}, run.limits, team.budget_usd === null ? null : team.budget_usd - team.spent_usd);
      const now = this.#now();
      const id = newId('run');
      const [inserted] = await tx.query<{ seq: number }>(
        `INSERT INTO runs (id, team_id, status, query, model, language, limits, source, usage, created_at, last_event_seq)
         VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, '{}', $8, 1) RETURNING seq`,
        [id, run.teamId, input.query, run.model, run.language, JSON.stringify(limits), run.source, now],
      );
      if (!inserted) throw new Error('INSERT … RETURNING answered no row');
      await tx.query('INSERT INTO run_inputs (run_id, input) VALUES ($1, $2)', [id, input.json]);
      await insertEvents(tx, id, 1, [{ type: 'queued', data: { status: 'queued' } }], now);
      return {
        id,
        teamId: run.teamId,
        status: 'queued',
        query: input.query,
        model: run.model,
        language: run.language,
        limits,
        source: run.source,
        answer: null,
        error: null,
        usage: {},
        costUsd: null,
        iterations: 0,
        createdAt: now,
        startedAt: null,
        finishedAt: null,
        attempts: 0,
        cancelRequested: false,
        workerId: null,
        leaseExpiresAt: null,
      };
    });
  }

  async getRun(teamId: string | null, runId: string): Promise<RunRecord | null> {
    const [row] =
      teamId === null
        ? await this.#db.query(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1`, [runId])
        : await this.#db.query(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1 AND team_id = $2`, [runId, teamId]);
    return row ? withoutSeq(toRunRecord(row)) : null;
  }

  async getRunInput(runId: string): Promise<RunInput | null> {
    const [row] = await this.#db.query<{ input: string }>('SELECT input FROM run_inputs WHERE run_id = $1', [runId]);
    return row ? toRunInput(row.input) : null;
  }

  async listRuns(teamId: string, query: ListRunsQuery): Promise<RunPage> {
    const limit = query.limit ?? 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new ServiceError('invalid_request', `limit: must be an integer from 1 to 100 (got ${limit})`);
    const params: SqlParam[] = [teamId];
    let where = 'team_id = $1';
    if (query.status !== undefined) {
      if (!RUN_STATUSES.includes(query.status))
        throw new ServiceError('invalid_request', `status: must be one of ${RUN_STATUSES.join(', ')} (got ${query.status})`);
      params.push(query.status);
      where += ` AND status = $${params.length}`;
    }
    if (query.cursor !== undefined) {
      params.push(decodeCursor(query.cursor));
      where += ` AND seq < $${params.length}`;
    }
    params.push(limit + 1);
    const rows = (await this.#db.query(`SELECT ${RUN_COLUMNS} FROM runs WHERE ${where} ORDER BY seq DESC LIMIT $${params.length}`, params)).map(toRunRecord);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { runs: page.map(withoutSeq), nextCursor: rows.length > limit && last ? encodeCursor(last.seq) : null };
  }

  async requestCancel(teamId: string, runId: string): Promise<RunRecord | null> {
    return this.#db.transaction(async (tx) => {
      const [row] = await tx.query(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1 AND team_id = $2${lockRows(tx.dialect)}`, [runId, teamId]);
      if (!row) return null;
      const run = toRunRecord(row);
      if (run.status === 'queued') return withoutSeq(await this.#finish(tx, run.id, { status: 'cancelled', error: 'cancelled' }));
      if (run.status === 'running' && !run.cancelRequested) {
        const [updated] = await tx.query(`UPDATE runs SET cancel_requested = 1 WHERE id = $1 RETURNING ${RUN_COLUMNS}`, [run.id]);
        return withoutSeq(toRunRecord(updated));
      }
      return withoutSeq(run);
    });
  }

  // -------------------------------------------------------------------------------------------
  // Runs: the queue

  async claimRun(workerId: string, leaseMs: number): Promise<RunRecord | null> {
    validWorkerId(workerId);
    validLeaseMs(leaseMs);
    return this.#db.transaction(async (tx) => {
      const passed: string[] = [];
      for (let tries = 0; tries < CLAIM_TEAM_TRIES; tries++) {
        // The team whose last start is oldest (never started: first; a tie: whose oldest queued run
        // came first) among those with a queued run and a free place. On PostgreSQL, SKIP LOCKED
        // passes over a team another claim (or submit) holds, to the next one.
        const notPassed = passed.length > 0 ? ` AND t.id NOT IN (${placeholders(1, passed.length)})` : '';
        const [team] = await tx.query<{ id: string; max_concurrent_runs: number }>(
          `SELECT t.id, t.max_concurrent_runs FROM teams t
           WHERE EXISTS (SELECT 1 FROM runs q WHERE q.status = 'queued' AND q.team_id = t.id)
             AND (SELECT COUNT(*) FROM runs r WHERE r.status = 'running' AND r.team_id = t.id) < t.max_concurrent_runs${notPassed}
           ORDER BY t.last_started_at NULLS FIRST, (SELECT MIN(q.seq) FROM runs q WHERE q.status = 'queued' AND q.team_id = t.id), t.id
           LIMIT 1${lockRows(tx.dialect, { skipLocked: true })}`,
          passed,
        );
        if (!team) return null;
        // Counted again now that the team's row is ours: the first count read a snapshot from
        // before the lock, which may miss a claim another worker committed since.
        const [running] = await tx.query<{ count: number }>("SELECT COUNT(*) AS count FROM runs WHERE status = 'running' AND team_id = $1", [team.id]);
        const [oldest] =
          (running?.count ?? 0) < team.max_concurrent_runs
            ? await tx.query<{ id: string }>(`SELECT id FROM runs WHERE status = 'queued' AND team_id = $1 ORDER BY seq LIMIT 1${lockRows(tx.dialect)}`, [
                team.id,
              ])
            : [];
        if (!oldest) {
          passed.push(team.id);
          continue;
        }
        const now = this.#now();
        const [row] = await tx.query(
          `UPDATE runs SET status = 'running', worker_id = $2, lease_expires_at = $3, started_at = $4, attempts = attempts + 1,
             last_event_seq = last_event_seq + 1
           WHERE id = $1 RETURNING ${RUN_COLUMNS}, last_event_seq`,
          [oldest.id, workerId, Math.round(now + leaseMs), now],
        );
        await tx.query('UPDATE teams SET last_started_at = $2 WHERE id = $1', [team.id, now]);
        const run = toRunRecord(row);
        await insertEvents(tx, run.id, lastEventSeq(row), [{ type: 'started', data: { attempt: run.attempts, startedAt: now } }], now);
        return withoutSeq(run);
      }
      return null;
    });
  }

  async renewLeases(workerId: string, runIds: readonly string[], leaseMs: number): Promise<{ runId: string; cancelRequested: boolean }[]> {
    validLeaseMs(leaseMs);
    if (runIds.length === 0) return [];
    const rows = await this.#db.query<{ id: string; cancel_requested: number }>(
      `UPDATE runs SET lease_expires_at = $1 WHERE worker_id = $2 AND status = 'running' AND id IN (${placeholders(3, runIds.length)})
       RETURNING id, cancel_requested`,
      [Math.round(this.#now() + leaseMs), workerId, ...runIds],
    );
    return rows.map((row) => ({ runId: row.id, cancelRequested: row.cancel_requested !== 0 }));
  }

  /** A run whose lease expired but that nobody recovered yet is still the worker's: its outcome is recorded. */
  async finishRun(workerId: string, runId: string, outcome: RunOutcome): Promise<boolean> {
    if (!TERMINAL_STATUSES.includes(outcome.status))
      throw new ServiceError('invalid_request', `outcome.status: must be one of ${TERMINAL_STATUSES.join(', ')}`);
    return this.#db.transaction(async (tx) => {
      const [held] = await tx.query<{ id: string }>(`SELECT id FROM runs WHERE id = $1 AND worker_id = $2 AND status = 'running'${lockRows(tx.dialect)}`, [
        runId,
        workerId,
      ]);
      if (!held) return false;
      const run = await this.#finish(tx, runId, outcome);
      if (outcome.trajectory !== null) await tx.query('INSERT INTO run_trajectories (run_id, trajectory) VALUES ($1, $2)', [runId, outcome.trajectory]);
      if (outcome.costUsd !== null && outcome.costUsd > 0) {
        await tx.query('UPDATE teams SET spent_usd = spent_usd + $2 WHERE id = $1', [run.teamId, outcome.costUsd]);
      }
      return true;
    });
  }

  /** A run handed back with a cancel pending is cancelled instead. `attempts` keeps counting the claim. */
  async releaseRun(workerId: string, runId: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const [row] = await tx.query(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = $1 AND worker_id = $2 AND status = 'running'${lockRows(tx.dialect)}`, [
        runId,
        workerId,
      ]);
      if (!row) return false;
      const run = toRunRecord(row);
      if (run.cancelRequested) await this.#finish(tx, run.id, { status: 'cancelled', error: 'cancelled' });
      else await this.#requeue(tx, run.id, 'released');
      return true;
    });
  }

  /** A run whose cancel was asked is `cancelled`, not retried. Runs are handled oldest first. */
  async recoverExpired(options: { retry: boolean; maxAttempts: number; everyRunning?: boolean }): Promise<RunRecord[]> {
    return this.#db.transaction(async (tx) => {
      const expired = options.everyRunning ? '' : ' AND (lease_expires_at IS NULL OR lease_expires_at < $1)';
      const rows = await tx.query(
        `SELECT ${RUN_COLUMNS} FROM runs WHERE status = 'running'${expired} ORDER BY seq${lockRows(tx.dialect, { skipLocked: true })}`,
        options.everyRunning ? [] : [this.#now()],
      );
      const changed: RunRecord[] = [];
      for (const run of rows.map(toRunRecord)) {
        if (run.cancelRequested) changed.push(withoutSeq(await this.#finish(tx, run.id, { status: 'cancelled', error: 'cancelled' })));
        else if (options.retry && run.attempts < options.maxAttempts) changed.push(withoutSeq(await this.#requeue(tx, run.id, 'interrupted')));
        else changed.push(withoutSeq(await this.#finish(tx, run.id, { status: 'failed', error: options.retry ? 'worker_lost' : 'interrupted' })));
      }
      return changed;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Events and trajectories

  /** @throws {ServiceError} `not_found` for an unknown run; `invalid_request` for data that is not JSON. */
  async appendEvents(
    runId: string,
    events: readonly { type: string; data: Record<string, unknown> }[],
    options: { workerId?: string } = {},
  ): Promise<StoredRunEvent[]> {
    if (events.length === 0) return [];
    const encoded = events.map((event, index) => {
      try {
        return { type: event.type, data: JSON.stringify(event.data) };
      } catch (error) {
        throw new ServiceError('invalid_request', `events[${index}] (${event.type}): its data is not JSON-serializable`, { cause: error });
      }
    });
    return this.#db.transaction(async (tx) => {
      // Reserving the numbers on the run's row makes concurrent appenders wait for each other.
      const holder = options.workerId === undefined ? '' : " AND worker_id = $3 AND status = 'running'";
      const [row] = await tx.query<{ last_event_seq: number }>(
        `UPDATE runs SET last_event_seq = last_event_seq + $2 WHERE id = $1${holder} RETURNING last_event_seq`,
        options.workerId === undefined ? [runId, events.length] : [runId, events.length, options.workerId],
      );
      if (!row) {
        if (options.workerId !== undefined && (await tx.query('SELECT id FROM runs WHERE id = $1', [runId])).length > 0)
          throw new ServiceError('conflict', `run ${runId} is no longer held by worker ${options.workerId} (its lease was lost); its events are not stored`);
        throw new ServiceError('not_found', `no run with id ${runId}`);
      }
      const first = row.last_event_seq - events.length + 1;
      const now = this.#now();
      await insertEncodedEvents(tx, runId, first, encoded, now);
      return events.map((event, index) => ({ runId, seq: first + index, type: event.type, data: event.data, createdAt: now }));
    });
  }

  async readEvents(runId: string, afterSeq: number, limit = 1000): Promise<StoredRunEvent[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000)
      throw new ServiceError('invalid_request', `limit: must be an integer from 1 to 10000 (got ${limit})`);
    if (!Number.isInteger(afterSeq) || afterSeq < 0) throw new ServiceError('invalid_request', `afterSeq: must be an integer ≥ 0 (got ${afterSeq})`);
    const rows = await this.#db.query(`SELECT ${EVENT_COLUMNS} FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [runId, afterSeq, limit]);
    return rows.map(toStoredEvent);
  }

  async getTrajectory(runId: string): Promise<string | null> {
    const [row] = await this.#db.query<{ trajectory: string }>('SELECT trajectory FROM run_trajectories WHERE run_id = $1', [runId]);
    return row?.trajectory ?? null;
  }

  // -------------------------------------------------------------------------------------------
  // Retention

  async pruneRuns(options: PruneRunsOptions): Promise<PruneRunsResult> {
    const { finishedBefore, teamId, dryRun, signal } = options;
    if (typeof finishedBefore !== 'number' || !Number.isFinite(finishedBefore))
      throw new ServiceError('invalid_request', `finishedBefore: must be a time in epoch milliseconds (got ${String(finishedBefore)})`);
    // finished_at holds whole milliseconds: before x is before ⌈x⌉ (and a BIGINT parameter takes no fraction).
    const params: SqlParam[] = [Math.ceil(finishedBefore)];
    let where = `status NOT IN (${UNFINISHED_SQL}) AND finished_at < $1`;
    if (teamId !== undefined) {
      params.push(teamId);
      where += ' AND team_id = $2';
    }
    // A run's last_event_seq is the number of its events: they are numbered from 1 without gaps, the
    // number reserved in the transaction that inserts them. Counting with it reads no event.
    if (dryRun) {
      throwIfPruneAborted(signal, 0, 0);
      const [row] = await this.#db.query<{ runs: number; events: number | null }>(
        `SELECT COUNT(*) AS runs, SUM(last_event_seq) AS events FROM runs WHERE ${where}`,
        params,
      );
      return { runs: row?.runs ?? 0, events: row?.events ?? 0 };
    }
    const pruned: PruneRunsResult = { runs: 0, events: 0 };
    // Every team's runs: oldest first, through runs_by_finished (a batch's runs are gone when the
    // next one reads). One team's: the database may read them through runs_by_team instead, so they
    // go in submission order, each batch after the last one's seq, never reading a run twice.
    let afterSeq = 0;
    const order = teamId === undefined ? 'ORDER BY finished_at' : `AND seq > $${params.length + 1} ORDER BY seq`;
    for (;;) {
      throwIfPruneAborted(signal, pruned.runs, pruned.events);
      const batch = await this.#db.transaction(async (tx) => {
        // On PostgreSQL a run another transaction holds (a cancel reading it, another prune) is
        // passed over: the next prune takes it.
        const rows = await tx.query<{ id: string; seq: number; last_event_seq: number }>(
          `SELECT id, seq, last_event_seq FROM runs WHERE ${where} ${order} LIMIT ${PRUNE_BATCH_RUNS}${lockRows(tx.dialect, { skipLocked: true })}`,
          teamId === undefined ? params : [...params, afterSeq],
        );
        let events = 0;
        let taken = 0;
        for (const row of rows) {
          if (taken > 0 && events + row.last_event_seq > PRUNE_BATCH_EVENTS) break;
          events += row.last_event_seq;
          taken++;
        }
        const ids = rows.slice(0, taken).map((row) => row.id);
        afterSeq = rows[taken - 1]?.seq ?? afterSeq;
        if (ids.length > 0) {
          const list = placeholders(1, ids.length);
          // Every table that references runs, before the runs themselves (foreign keys).
          for (const table of ['run_events', 'run_inputs', 'run_trajectories']) await tx.query(`DELETE FROM ${table} WHERE run_id IN (${list})`, ids);
          await tx.query(`DELETE FROM runs WHERE id IN (${list})`, ids);
        }
        return { runs: ids.length, events, more: rows.length === PRUNE_BATCH_RUNS || taken < rows.length };
      });
      pruned.runs += batch.runs;
      pruned.events += batch.events;
      if (!batch.more) return pruned;
      // The embedded database's statements are synchronous: without a turn of the event loop between
      // batches, a long prune inside a server would hold its requests until the last batch.
      await nextTurn();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Operations

  async stats(): Promise<StoreStats> {
    const runsByStatus = Object.fromEntries(RUN_STATUSES.map((status) => [status, 0])) as Record<RunStatus, number>;
    for (const row of await this.#db.query<{ status: RunStatus; count: number }>('SELECT status, COUNT(*) AS count FROM runs GROUP BY status')) {
      if (RUN_STATUSES.includes(row.status)) runsByStatus[row.status] = row.count;
    }
    const queuedByTeam: Record<string, number> = {};
    for (const row of await this.#db.query<{ name: string; count: number }>(
      "SELECT t.name, COUNT(*) AS count FROM runs r JOIN teams t ON t.id = r.team_id WHERE r.status = 'queued' GROUP BY t.name",
    )) {
      queuedByTeam[row.name] = row.count;
    }
    const [oldest] = await this.#db.query<{ created_at: number | null }>("SELECT MIN(created_at) AS created_at FROM runs WHERE status = 'queued'");
    const oldestQueuedSeconds = oldest?.created_at == null ? 0 : Math.max(0, (this.#now() - oldest.created_at) / 1000);
    return { runsByStatus, queuedByTeam, oldestQueuedSeconds };
  }

  async ping(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) throw new AbortedError('the database ping was aborted', { cause: signal.reason });
    const query = this.#db.query('SELECT 1 AS one');
    if (!signal) {
      await query;
      return;
    }
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new AbortedError('the database ping was aborted', { cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    query.catch(() => undefined);
    try {
      await Promise.race([query, aborted]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  close(): Promise<void> {
    this.#closing ??= this.#db.close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // -------------------------------------------------------------------------------------------

  async #requireTeam(name: string): Promise<TeamRecord> {
    const team = await this.teamByName(name);
    if (!team) throw noSuchTeam(name);
    return team;
  }

  /** Ends a run (queued or running) with a `finished` event carrying its final fields. */
  async #finish(
    tx: SqlExecutor,
    runId: string,
    outcome: Pick<RunOutcome, 'status' | 'error'> & Partial<Pick<RunOutcome, 'answer' | 'usage' | 'costUsd' | 'iterations'>>,
  ): Promise<RunRow> {
    const now = this.#now();
    const [row] = await tx.query(
      `UPDATE runs SET status = $2, answer = COALESCE($3, answer), error = $4, usage = COALESCE($5, usage), cost_usd = COALESCE($6, cost_usd),
         iterations = COALESCE($7, iterations), finished_at = $8, worker_id = NULL, lease_expires_at = NULL, last_event_seq = last_event_seq + 1
       WHERE id = $1 RETURNING ${RUN_COLUMNS}, last_event_seq`,
      [
        runId,
        outcome.status,
        outcome.answer ?? null,
        outcome.error,
        outcome.usage === undefined ? null : JSON.stringify(outcome.usage),
        outcome.costUsd ?? null,
        outcome.iterations ?? null,
        now,
      ],
    );
    const run = toRunRecord(row);
    const data = {
      status: run.status,
      answer: run.answer,
      error: run.error,
      usage: run.usage,
      costUsd: run.costUsd,
      iterations: run.iterations,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
    };
    await insertEvents(tx, runId, lastEventSeq(row), [{ type: 'finished', data }], now);
    return run;
  }

  /** Puts a running run back in its team's queue, at its old place (its `seq`), with a `queued` event. */
  async #requeue(tx: SqlExecutor, runId: string, reason: 'released' | 'interrupted'): Promise<RunRow> {
    const now = this.#now();
    const [row] = await tx.query(
      `UPDATE runs SET status = 'queued', worker_id = NULL, lease_expires_at = NULL, started_at = NULL, last_event_seq = last_event_seq + 1
       WHERE id = $1 RETURNING ${RUN_COLUMNS}, last_event_seq`,
      [runId],
    );
    await insertEvents(tx, runId, lastEventSeq(row), [{ type: 'queued', data: { status: 'queued', reason } }], now);
    return toRunRecord(row);
  }

  /**
   * Seconds until a place in a full queue is likely to free up: a run of the team must end for the
   * oldest queued one to start, so its recent runs' mean duration over its concurrency, within 1–300.
   */
  async #retryAfterSeconds(tx: SqlExecutor, teamId: string, maxConcurrentRuns: number): Promise<number> {
    const recent = await tx.query<{ started_at: number; finished_at: number }>(
      `SELECT started_at, finished_at FROM runs
       WHERE team_id = $1 AND status IN ('succeeded', 'failed', 'cancelled') AND started_at IS NOT NULL AND finished_at IS NOT NULL
       ORDER BY seq DESC LIMIT ${RETRY_AFTER_SAMPLE}`,
      [teamId],
    );
    const meanMs = recent.length === 0 ? 10_000 : recent.reduce((sum, run) => sum + (run.finished_at - run.started_at), 0) / recent.length;
    return Math.min(300, Math.max(1, Math.ceil(meanMs / 1000 / maxConcurrentRuns)));
  }
}

// ---------------------------------------------------------------------------------------------

/** The fields of a {@link TeamUpdate}, for the message that refuses an empty one. */
const TEAM_UPDATE_FIELDS = ['budgetUsd', 'maxConcurrentRuns', 'maxQueued', 'models'] as const satisfies readonly (keyof TeamUpdate)[];

/** A team's `maxConcurrentRuns`, as createTeam and updateTeam accept it. */
function validMaxConcurrentRuns(value: number): number {
  return validCount('maxConcurrentRuns', value, 10_000);
}

/** A team's `maxQueued`, as createTeam and updateTeam accept it. */
function validMaxQueued(value: number): number {
  return validCount('maxQueued', value, 1_000_000);
}

function throwIfPruneAborted(signal: AbortSignal | undefined, runs: number, events: number): void {
  if (signal?.aborted)
    throw new AbortedError(`pruning runs was aborted after ${runs} runs (${events} events) were deleted; a later prune takes the rest`, {
      cause: signal.reason,
    });
}

function noSuchTeam(name: string): ServiceError {
  return new ServiceError('not_found', `no team named ${name} (rlm serve teams list shows them)`);
}

async function insertEvents(tx: SqlExecutor, runId: string, firstSeq: number, events: { type: string; data: Record<string, unknown> }[], now: number) {
  await insertEncodedEvents(
    tx,
    runId,
    firstSeq,
    events.map((event) => ({ type: event.type, data: JSON.stringify(event.data) })),
    now,
  );
}

async function insertEncodedEvents(tx: SqlExecutor, runId: string, firstSeq: number, events: { type: string; data: string }[], now: number) {
  for (let start = 0; start < events.length; start += EVENTS_PER_INSERT) {
    const chunk = events.slice(start, start + EVENTS_PER_INSERT);
    const values = chunk.map((_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`).join(', ');
    const params = chunk.flatMap((event, i) => [runId, firstSeq + start + i, event.type, event.data, now]);
    await tx.query(`INSERT INTO run_events (run_id, seq, type, data, created_at) VALUES ${values}`, params);
  }
}

function lastEventSeq(row: object | undefined): number {
  const seq = (row as { last_event_seq?: unknown } | undefined)?.last_event_seq;
  if (typeof seq !== 'number') throw new Error('the run row has no last_event_seq');
  return seq;
}

/** `t.id, t.name…` from `id, name…`. */
function prefixed(alias: string, columns: string): string {
  return columns
    .split(',')
    .map((column) => `${alias}.${column.trim()}`)
    .join(', ');
}
