/**
 * The rows the store reads, parsed into the records of service-types.ts. A row that does not parse
 * (a database edited by hand, a bug) is an `internal` error naming the table and the field, never a
 * record with a wrong shape.
 */
import { Language } from '@rlm/shared';
import { z } from 'zod';
import {
  RUN_STATUSES,
  type RunInput,
  type RunRecord,
  ServiceError,
  type StoredRunEvent,
  type TeamRecord,
  type TokenRecord,
  type WorkerRecord,
} from '../service-types.js';

const Int = z.number().int();
const Ms = z.number().int();

/** A TEXT column holding JSON of the given shape. */
function jsonText<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

const RunLimitsJson = z.looseObject({
  maxIterations: z.number().optional(),
  maxDepth: z.number().optional(),
  timeoutSeconds: z.number().optional(),
  cellTimeoutSeconds: z.number().optional(),
  maxCostUsd: z.number().optional(),
  maxTokens: z.number().optional(),
});

const ModelUsageJson = z.looseObject({
  calls: z.number(),
  cancelledCalls: z.number().optional(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheReadTokens: z.number(),
  cacheWriteTokens: z.number(),
  costUsd: z.number().nullable(),
});

const TeamRow = z.object({
  id: z.string(),
  name: z.string(),
  budget_usd: z.number().nullable(),
  max_concurrent_runs: Int,
  max_queued: Int,
  models: jsonText(z.array(z.string())).nullable(),
  created_at: Ms,
});

/** The team columns {@link toTeamRecord} reads. */
export const TEAM_COLUMNS = 'id, name, budget_usd, max_concurrent_runs, max_queued, models, created_at';

export function toTeamRecord(row: unknown): TeamRecord {
  const team = parseRow('teams', TeamRow, row);
  return {
    id: team.id,
    name: team.name,
    budgetUsd: team.budget_usd,
    maxConcurrentRuns: team.max_concurrent_runs,
    maxQueued: team.max_queued,
    models: team.models,
    createdAt: team.created_at,
  };
}

const TokenRow = z.object({
  id: z.string(),
  team_id: z.string(),
  team_name: z.string(),
  prefix: z.string(),
  created_at: Ms,
  revoked_at: Ms.nullable(),
  last_used_at: Ms.nullable(),
  admin: Int,
});

/** The token columns {@link toTokenRecord} reads, from `tokens k JOIN teams t`. */
export const TOKEN_COLUMNS = 'k.id, k.team_id, t.name AS team_name, k.prefix, k.created_at, k.revoked_at, k.last_used_at, k.admin';

export function toTokenRecord(row: unknown): TokenRecord {
  const token = parseRow('tokens', TokenRow, row);
  return {
    id: token.id,
    teamId: token.team_id,
    teamName: token.team_name,
    prefix: token.prefix,
    createdAt: token.created_at,
    revokedAt: token.revoked_at,
    lastUsedAt: token.last_used_at,
    admin: token.admin === 1,
  };
}

const WorkerRow = z.object({
  id: z.string(),
  host: z.string(),
  capacity: Int,
  running: Int,
  draining: Int,
  started_at: Ms,
  last_heartbeat_at: Ms,
});

export const WORKER_COLUMNS = 'id, host, capacity, running, draining, started_at, last_heartbeat_at';

export function toWorkerRecord(row: unknown): WorkerRecord {
  const worker = parseRow('workers', WorkerRow, row);
  return {
    id: worker.id,
    host: worker.host,
    capacity: worker.capacity,
    running: worker.running,
    draining: worker.draining === 1,
    startedAt: worker.started_at,
    lastHeartbeatAt: worker.last_heartbeat_at,
  };
}

const RunRow = z.object({
  seq: Int,
  id: z.string(),
  team_id: z.string(),
  status: z.enum(RUN_STATUSES),
  query: z.string(),
  model: z.string().nullable(),
  language: Language,
  limits: jsonText(RunLimitsJson),
  source: z.enum(['runs', 'chat']),
  answer: z.string().nullable(),
  error: z.string().nullable(),
  usage: jsonText(z.record(z.string(), ModelUsageJson)),
  cost_usd: z.number().nullable(),
  iterations: Int,
  created_at: Ms,
  started_at: Ms.nullable(),
  finished_at: Ms.nullable(),
  attempts: Int,
  cancel_requested: Int,
  worker_id: z.string().nullable(),
  lease_expires_at: Ms.nullable(),
});

/** The run columns {@link toRunRecord} reads (and `seq`, the listing's cursor). */
export const RUN_COLUMNS =
  'seq, id, team_id, status, query, model, language, limits, source, answer, error, usage, cost_usd, iterations, ' +
  'created_at, started_at, finished_at, attempts, cancel_requested, worker_id, lease_expires_at';

/** A run row as a record, and its `seq`. */
export function toRunRecord(row: unknown): RunRecord & { seq: number } {
  const run = parseRow('runs', RunRow, row);
  return {
    seq: run.seq,
    id: run.id,
    teamId: run.team_id,
    status: run.status,
    query: run.query,
    model: run.model,
    language: run.language,
    limits: run.limits,
    source: run.source,
    answer: run.answer,
    error: run.error,
    usage: run.usage,
    costUsd: run.cost_usd,
    iterations: run.iterations,
    createdAt: run.created_at,
    startedAt: run.started_at,
    finishedAt: run.finished_at,
    attempts: run.attempts,
    cancelRequested: run.cancel_requested !== 0,
    workerId: run.worker_id,
    leaseExpiresAt: run.lease_expires_at,
  };
}

/** The record without the `seq` {@link toRunRecord} adds: what the store's callers get. */
export function withoutSeq(run: RunRecord & { seq: number }): RunRecord {
  const { seq: _seq, ...record } = run;
  return record;
}

const RunInputJson = z.looseObject({
  query: z.string(),
  context: z.unknown().optional(),
  contexts: z.array(z.unknown()).optional(),
});

export function toRunInput(text: unknown): RunInput {
  return parseRow('run_inputs', jsonText(RunInputJson), text);
}

const EventRow = z.object({
  run_id: z.string(),
  seq: Int,
  type: z.string(),
  data: jsonText(z.record(z.string(), z.unknown())),
  created_at: Ms,
});

export const EVENT_COLUMNS = 'run_id, seq, type, data, created_at';

export function toStoredEvent(row: unknown): StoredRunEvent {
  const event = parseRow('run_events', EventRow, row);
  return { runId: event.run_id, seq: event.seq, type: event.type, data: event.data, createdAt: event.created_at };
}

function parseRow<T extends z.ZodType>(table: string, schema: T, row: unknown): z.output<T> {
  const parsed = schema.safeParse(row);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || '(row)';
  throw new ServiceError('internal', `a row of ${table} in the database does not parse: ${field}: ${issue?.message ?? 'invalid'}`, { cause: parsed.error });
}
