/**
 * The contract between the parts of `rlm serve` (../../../shared/architecture.md, "Many runs at
 * once"): the store (store/: schema, migrations, one query layer over the embedded database and
 * PostgreSQL), the queue and worker (worker/: claims with leases, runs through the engine), the HTTP
 * layer (http/: REST, SSE, OpenAI-compatible, the web page) and the command (cli/commands/
 * serve-command.ts). Each part depends on these types, never on another part's internals.
 *
 * Units: times are milliseconds since the Unix epoch (`…At`) or milliseconds (`…Ms`); money is USD.
 */
import type { Language } from '@rlm/shared';
import type { RlmResult } from '../engine/rlm.js';
import type { RunEvent } from '../engine/run-events.js';
import { RlmError, type RlmErrorOptions } from '../errors.js';
import type { UsageByModel } from '../usage/usage-ledger.js';

// ---------------------------------------------------------------------------------------------
// Records

/** A team: the unit of isolation, limits and spend. */
export interface TeamRecord {
  id: string;
  /** Unique, as `rlm serve teams create NAME` gave it: letters, digits, `-`, `_`, `.`; at most 64. */
  name: string;
  /** Total spend allowed, USD; null = unlimited. */
  budgetUsd: number | null;
  /** Runs of the team running at once, across the whole service. */
  maxConcurrentRuns: number;
  /** Runs of the team waiting at once; one more is refused with 429 `queue_full`. */
  maxQueued: number;
  /** Configured model names (`rlm:<name>`) the team may use; null = every one. The default root model is always allowed. */
  models: string[] | null;
  createdAt: number;
}

/** What `teams create` takes. Defaults: no budget, 4 concurrent runs, 100 queued, every model. */
export interface NewTeam {
  name: string;
  budgetUsd?: number | null;
  maxConcurrentRuns?: number;
  maxQueued?: number;
  models?: string[] | null;
}

export const TEAM_DEFAULTS = { maxConcurrentRuns: 4, maxQueued: 100 } as const;

/**
 * What `teams update` changes: only the fields present (not `undefined`) change. `budgetUsd: null`
 * removes the budget; `models: null` allows every model. The name, id and spend never change here.
 */
export interface TeamUpdate {
  budgetUsd?: number | null;
  maxConcurrentRuns?: number;
  maxQueued?: number;
  models?: string[] | null;
}

/** An API token's record; the token itself is never stored, only its SHA-256. */
export interface TokenRecord {
  id: string;
  teamId: string;
  teamName: string;
  /** The token's first characters (`rlm_ab12…`), to recognise it in a list. */
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** Also reads `/v1/admin/*` (the workers). */
  admin: boolean;
}

/** A worker process as its last heartbeat described it (see {@link ServiceStore.heartbeatWorker}). */
export interface WorkerRecord {
  /** `--worker-id`, default `<hostname>-<pid>`. */
  id: string;
  /** The machine's host name. */
  host: string;
  /** Runs it runs at once. */
  capacity: number;
  /** Runs it was running at its last heartbeat. */
  running: number;
  /** It claims nothing new (SIGTERM). */
  draining: boolean;
  startedAt: number;
  lastHeartbeatAt: number;
}

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export const TERMINAL_STATUSES: readonly RunStatus[] = ['succeeded', 'failed', 'cancelled'];

/** Limits a run asked for, after capping by the server's and the team's (see the http layer). */
export interface RunLimits {
  maxIterations?: number;
  maxDepth?: number;
  timeoutSeconds?: number;
  cellTimeoutSeconds?: number;
  maxCostUsd?: number;
  maxTokens?: number;
}

/** What the submitter sent, kept apart from the run's row so that listings never load it. */
export interface RunInput {
  query: string;
  /** The REPL's `context` (absent: an empty string). */
  context?: unknown;
  /** Several contexts (`context_0`, `context_1`…); with `context`, that one comes first. */
  contexts?: unknown[];
}

/** How the run was submitted: `runs` (POST /v1/runs) or `chat` (POST /v1/chat/completions). */
export type RunSource = 'runs' | 'chat';

/** Tokens and cost per model, as the engine reports them (JSON-safe). */
export type RunUsage = UsageByModel;

/** A run as the store holds it (without its input). */
export interface RunRecord {
  id: string;
  teamId: string;
  status: RunStatus;
  query: string;
  /** The configured model name, or null for the server's default root model. */
  model: string | null;
  language: Language;
  limits: RunLimits;
  source: RunSource;
  answer: string | null;
  /** Why it failed or was cancelled: a short code-like message (`interrupted`, `cancelled`, the engine's error). */
  error: string | null;
  usage: RunUsage;
  costUsd: number | null;
  iterations: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** How many times a worker claimed it. */
  attempts: number;
  /** A cancel was asked while it ran; the worker holding it stops it. */
  cancelRequested: boolean;
  /** The worker holding it (running only). */
  workerId: string | null;
  leaseExpiresAt: number | null;
}

/** One stored event of a run; `seq` counts from 1 per run and is the SSE event id. */
export interface StoredRunEvent {
  runId: string;
  seq: number;
  /** A `RunEvent` type of the engine (`run_start`, `turn_start`…), or the service's own: `queued`, `started`, `finished` (the last one, carrying the run's final fields). */
  type: string;
  data: Record<string, unknown>;
  createdAt: number;
}

/** What a worker reports when a run ends. */
export interface RunOutcome {
  status: Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'>;
  answer: string | null;
  error: string | null;
  usage: RunUsage;
  costUsd: number | null;
  iterations: number;
  /** The run's JSONL trajectory, when one was written. */
  trajectory: string | null;
}

export interface NewRun {
  teamId: string;
  input: RunInput;
  model: string | null;
  language: Language;
  limits: RunLimits;
  source: RunSource;
}

export interface ListRunsQuery {
  status?: RunStatus;
  /** 1–100; default 20. */
  limit?: number;
  /** The `nextCursor` of the previous page. */
  cursor?: string;
}

export interface RunPage {
  runs: RunRecord[];
  /** Null on the last page. */
  nextCursor: string | null;
}

/** What {@link ServiceStore.pruneRuns} deletes: finished runs older than a cutoff. */
export interface PruneRunsOptions {
  /** Epoch milliseconds: runs whose `finishedAt` is before it (strictly) go. */
  finishedBefore: number;
  /** Only this team's runs (its id); default every team's. */
  teamId?: string;
  /** Count what would go, delete nothing. */
  dryRun?: boolean;
  /** Stops the prune between two batches; the batches committed before it stay deleted. */
  signal?: AbortSignal;
}

/** What a prune deleted (or, dry, would delete). */
export interface PruneRunsResult {
  runs: number;
  /** The events of those runs (each run has at least its `queued` and `finished` ones). */
  events: number;
}

/** Counts for /metrics and readiness. */
export interface StoreStats {
  runsByStatus: Record<RunStatus, number>;
  /** Queued runs per team name. */
  queuedByTeam: Record<string, number>;
  /** Seconds the oldest queued run has waited; 0 when none. */
  oldestQueuedSeconds: number;
}

// ---------------------------------------------------------------------------------------------
// The store

/**
 * The service's persistent state: one schema, applied by versioned migrations when opened, on the
 * embedded database (node:sqlite, `./rlm-data/`) or PostgreSQL. Every method that accepts or
 * changes something has committed it when its promise resolves. Team-scoped reads take the team id
 * and answer null for another team's run, exactly as for an unknown one.
 */
export interface ServiceStore extends AsyncDisposable {
  readonly kind: 'embedded' | 'postgres';

  /** @throws {ServiceError} `conflict` when the name is taken; `invalid_request` for a bad name or limit. */
  createTeam(team: NewTeam): Promise<TeamRecord>;
  /**
   * Changes a team's limits, budget or models: only the fields `update` holds change (one
   * statement, so a concurrent admission or claim sees either the old values or the new). Answers
   * the team as it now is.
   *
   * The new values govern the next admission ({@link submitRun}) and the next claim
   * ({@link claimRun}); nothing already admitted is touched: running runs keep running (a lowered
   * `maxConcurrentRuns` only holds back the next claims until fewer run), queued runs stay queued
   * (a `maxQueued` below the current queue only refuses new runs), and a run keeps the `maxCostUsd`
   * its admission capped by the budget then left. A raised budget lets a team whose spend reached
   * the old one submit again.
   * @throws {ServiceError} `invalid_request` for a bad value (as {@link createTeam} refuses it, the
   *   message naming the field), or for an update holding none of `budgetUsd`, `maxConcurrentRuns`,
   *   `maxQueued`, `models`; nothing is changed then. `not_found` naming the team when there is none
   *   of that name.
   */
  updateTeam(name: string, update: TeamUpdate): Promise<TeamRecord>;
  listTeams(): Promise<TeamRecord[]>;
  teamByName(name: string): Promise<TeamRecord | null>;
  teamById(id: string): Promise<TeamRecord | null>;
  /** USD spent by the team's runs (finished and running ones' recorded cost). */
  teamSpendUsd(teamId: string): Promise<number>;

  /** A new token for the team (`admin`: it also reads `/v1/admin/*`): the secret (shown once) and its record. @throws {ServiceError} `not_found` for an unknown team. */
  createToken(teamName: string, options?: { admin?: boolean }): Promise<{ token: string; record: TokenRecord }>;
  listTokens(teamName?: string): Promise<TokenRecord[]>;
  /** Revokes by id or by prefix; false when none matched. */
  revokeToken(idOrPrefix: string): Promise<boolean>;
  /** The team a valid, unrevoked token belongs to; null otherwise. Compares hashes only. */
  authenticate(token: string): Promise<TeamRecord | null>;
  /** Whether `token` is a valid, unrevoked admin token. */
  isAdminToken(token: string): Promise<boolean>;

  /** Records a worker's heartbeat (inserting it the first time). */
  heartbeatWorker(worker: Omit<WorkerRecord, 'lastHeartbeatAt'>): Promise<void>;
  /** Workers whose last heartbeat is at most `staleMs` old (default: all), by id. */
  listWorkers(options?: { staleMs?: number }): Promise<WorkerRecord[]>;
  /** Forgets a worker (it stopped). */
  removeWorker(id: string): Promise<void>;

  /**
   * Accepts a run: checks the team's queue and budget and inserts the run (status `queued`) with its
   * input and a `queued` event, atomically; the run's `maxCostUsd` is capped by what is left of the
   * team's budget, read under the same lock.
   * @throws {ServiceError} `queue_full` (429) when the team has `maxQueued` runs waiting; `budget_exhausted` (429) when its spend reached its budget.
   */
  submitRun(run: NewRun): Promise<RunRecord>;
  /** The run if it belongs to the team (any team when `teamId` is null: workers, admin). */
  getRun(teamId: string | null, runId: string): Promise<RunRecord | null>;
  getRunInput(runId: string): Promise<RunInput | null>;
  /** The team's runs, newest first. @throws {ServiceError} `invalid_request` for a bad cursor. */
  listRuns(teamId: string, query: ListRunsQuery): Promise<RunPage>;

  /**
   * Asks a run to stop. A queued run becomes `cancelled` at once (with a `finished` event); a running
   * one gets `cancelRequested` (its worker stops it); a finished one is left as it is. Idempotent.
   * Null when the run is not the team's.
   */
  requestCancel(teamId: string, runId: string): Promise<RunRecord | null>;

  /**
   * Claims the next run for a worker, or null: FIFO within a team, round-robin across teams (the
   * team whose last start is oldest goes first), never above a team's `maxConcurrentRuns` running.
   * The run becomes `running` with `workerId`, a lease until now + `leaseMs`, `attempts` + 1, and a
   * `started` event. Safe with several workers on one PostgreSQL (row locks, SKIP LOCKED).
   */
  claimRun(workerId: string, leaseMs: number): Promise<RunRecord | null>;
  /** Extends the leases of the worker's runs; answers the ids it still holds, with their `cancelRequested`. */
  renewLeases(workerId: string, runIds: readonly string[], leaseMs: number): Promise<{ runId: string; cancelRequested: boolean }[]>;
  /**
   * Records the end of a run the worker holds: the outcome, the trajectory, and a `finished` event.
   * False (nothing written) when the worker no longer holds it (lease lost).
   */
  finishRun(workerId: string, runId: string, outcome: RunOutcome): Promise<boolean>;
  /** Hands a held run back to the queue (drain without grace): status `queued`, lease cleared. */
  releaseRun(workerId: string, runId: string): Promise<boolean>;
  /**
   * Runs whose lease expired (their worker died): with `retry`, back to `queued` while
   * `attempts < maxAttempts`, then `failed` with error `worker_lost`; without, `failed` with error
   * `interrupted`. With `everyRunning`, every
   * `running` run counts as expired (the embedded database: one process, so none is alive at start).
   * Answers the runs changed.
   */
  recoverExpired(options: { retry: boolean; maxAttempts: number; everyRunning?: boolean }): Promise<RunRecord[]>;

  /**
   * Appends events to a run; they get the next `seq` numbers. Answers them as stored. With
   * `workerId`, only while that worker holds the run: a worker that lost its lease writes nothing
   * more (ServiceError `conflict`).
   */
  appendEvents(runId: string, events: readonly { type: string; data: Record<string, unknown> }[], options?: { workerId?: string }): Promise<StoredRunEvent[]>;
  /** The run's events after `afterSeq` (0: all), oldest first, at most `limit` (default 1000). */
  readEvents(runId: string, afterSeq: number, limit?: number): Promise<StoredRunEvent[]>;
  /** The JSONL trajectory of a finished run; null when none was written. */
  getTrajectory(runId: string): Promise<string | null>;

  /**
   * Deletes finished runs (status `succeeded`, `failed` or `cancelled`) whose `finishedAt` is before
   * `finishedBefore`, with everything stored for them: events, input and trajectory. A queued or
   * running run is never touched, whatever its age. Spend is not: a team's spend is a ledger added
   * to as runs finish, so deleting runs changes neither spend nor what a budget allows.
   *
   * Works in batches (a few hundred runs, fewer when they hold many events), each its own
   * transaction, so that a prune of millions of rows never holds long locks on PostgreSQL nor the
   * embedded database's write lock for long; other statements run between batches. Every batch
   * committed stays deleted whatever happens to the next. Safe beside a running server and beside
   * another prune (on PostgreSQL a run another transaction holds is passed over, for the next prune).
   * With `dryRun`, counts what would go in one read, deleting nothing.
   * @returns the runs and events deleted (or that would be).
   * @throws {ServiceError} `invalid_request` for a `finishedBefore` that is not a finite number.
   *   {@link AbortedError} when `signal` fired (before the first batch or between two), naming how
   *   many runs were deleted until then.
   */
  pruneRuns(options: PruneRunsOptions): Promise<PruneRunsResult>;

  stats(): Promise<StoreStats>;
  /** Answers when the database answers a trivial query; throws otherwise. */
  ping(signal?: AbortSignal): Promise<void>;
  /** Safe to call twice. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Live notifications inside one process (PostgreSQL LISTEN/NOTIFY carries them across processes later)

export type ServiceNotice =
  /** A run was queued: workers look for work. */
  | { kind: 'run_queued'; runId: string; teamId: string }
  /** Events were appended to a run: SSE streams read them. */
  | { kind: 'run_events'; runId: string; lastSeq: number }
  /** Somebody asked a running run to stop: its worker aborts it. */
  | { kind: 'run_cancel'; runId: string };

/** Fan-out of {@link ServiceNotice}s. A listener's throw is caught and logged, never the publisher's problem. */
export interface ServiceNotices {
  publish(notice: ServiceNotice): void;
  /** Returns the unsubscribe function. */
  subscribe(listener: (notice: ServiceNotice) => void): () => void;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The `error.code` of an API error response. */
export type ServiceErrorCode =
  | 'invalid_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'model_not_allowed'
  | 'queue_full'
  | 'budget_exhausted'
  | 'shutting_down'
  | 'unavailable'
  | 'internal';

export const HTTP_STATUS_OF: Record<ServiceErrorCode, number> = {
  invalid_request: 400,
  model_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  queue_full: 429,
  budget_exhausted: 429,
  internal: 500,
  shutting_down: 503,
  unavailable: 503,
};

/** An error the API answers as `{ "error": { "code", "message" } }` with the code's HTTP status. `kind` is the code. */
export class ServiceError extends RlmError {
  static override readonly brand: string = 'rlm.ServiceError';
  override name = 'ServiceError';
  declare readonly kind: ServiceErrorCode;
  /** Seconds a client should wait before trying again (429, 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ServiceErrorCode, message: string, options: RlmErrorOptions & { retryAfterSeconds?: number } = {}) {
    super(message, { ...options, kind: code });
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get status(): number {
    return HTTP_STATUS_OF[this.kind];
  }
}

// ---------------------------------------------------------------------------------------------
// Settings, the engine and the worker

/** A model a run may name: `rlm` (the default root model) or `rlm:<name>` (a configured model). */
export interface ServedModel {
  /** What clients send: `rlm` or `rlm:<name>`. */
  id: string;
  /** The configured name (null for `rlm`). */
  name: string | null;
  /** The provider's model id behind it. */
  providerModel: string;
}

/** The settings of one `rlm serve` process, resolved from flags, the config file and the environment. */
export interface ServeSettings {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Largest request body, bytes (`--max-body-mb`, default 64 MiB). */
  maxBodyBytes: number;
  /** Seconds running runs get to finish on SIGTERM before they are cancelled. */
  graceSeconds: number;
  /** The models runs may name; the first is `rlm`. */
  models: ServedModel[];
  /** The REPL language of runs that name none. */
  defaultLanguage: Language;
  /** The server's limits: the defaults of a run that asks for none, and the ceilings of one that asks for more. */
  limits: RunLimits;
  /** Runs this process runs at once (its pool's `maxSandboxes` bounds their sandboxes). */
  maxRunningRuns: number;
  /** Lease of a claimed run, renewed every third of it. */
  leaseMs: number;
  /** Requeue runs interrupted by a crash instead of failing them (`serve.retryInterrupted`). */
  retryInterrupted: boolean;
  /** Claims of one run before it fails for good. */
  maxAttempts: number;
  /**
   * Keep finished runs this long after they finished, milliseconds: a serving process (roles `all`
   * and `api`) prunes older ones at start and then every hour. Absent: keep every run.
   */
  retainMs?: number;
}

/** What a worker needs from the engine side: an RLM configured for one run. Built by the serve command from the config. */
export interface RunEngine {
  /**
   * Starts the run and returns the engine's run (its events and result). `onEvent` gets every event
   * of the tree. `logDir` is where its trajectory goes (the worker reads it back into the store).
   * @throws {ServiceError} `model_not_allowed` for an unknown model name.
   */
  start(run: {
    model: string | null;
    language: Language;
    limits: RunLimits;
    input: RunInput;
    logDir: string;
    signal: AbortSignal;
    onEvent: (event: RunEvent) => void;
  }): Promise<RlmResult>;
}

/** Claims runs from the store and runs them through a {@link RunEngine}. */
export interface RunWorker {
  readonly id: string;
  /** Starts claiming (recovering expired leases first). */
  start(): Promise<void>;
  /** Runs in progress in this worker. */
  running(): number;
  /**
   * Stops claiming; running runs get `graceMs` to finish, then are cancelled (status `cancelled`,
   * error `shutdown`) or, with `handBack`, returned to the queue. Resolves when none is left.
   */
  drain(graceMs: number, options?: { handBack?: boolean }): Promise<void>;
  /** drain(0). Safe to call twice. */
  close(): Promise<void>;
}
