/**
 * What the store checks of its callers' input before touching the database: team names and limits,
 * runs, leases, and the listing's opaque cursor. Each failure is a ServiceError `invalid_request`
 * whose message starts with the field at fault.
 */
import { Language } from '@rlm/shared';
import { type NewRun, ServiceError } from '../service-types.js';

/** A team name: what `rlm serve teams create NAME` accepts. */
const TEAM_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** The listing's cursor: the `seq` of the page's last run, wrapped so clients treat it as opaque. */
export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`, 'utf8').toString('base64url');
}

/** The `seq` a cursor of {@link encodeCursor} holds. @throws {ServiceError} `invalid_request` for anything else. */
export function decodeCursor(cursor: string): number {
  const match = /^s:(\d{1,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw new ServiceError('invalid_request', 'cursor: not a cursor of this listing; pass the nextCursor of the previous page, or none for the first page');
  }
  return Number(match[1]);
}

/** The name, when it is one `rlm serve teams create` accepts. */
export function validTeamName(name: unknown): string {
  if (typeof name !== 'string' || !TEAM_NAME.test(name)) {
    throw new ServiceError('invalid_request', `team name ${JSON.stringify(name)}: use 1 to 64 letters, digits, '-', '_' or '.'`);
  }
  return name;
}

/** A budget in USD (≥ 0), or null for none. */
export function validBudget(budget: number | null | undefined): number | null {
  if (budget === undefined || budget === null) return null;
  if (typeof budget !== 'number' || !Number.isFinite(budget) || budget < 0)
    throw new ServiceError('invalid_request', `budgetUsd: must be a number ≥ 0 (got ${budget})`);
  return budget;
}

/** A limit that counts runs: an integer from 1 to `max`. */
export function validCount(field: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new ServiceError('invalid_request', `${field}: must be an integer from 1 to ${max} (got ${value})`);
  return value;
}

/** Configured model names, trimmed and without repeats, or null for every model. */
export function validModels(models: string[] | null | undefined): string[] | null {
  if (models === undefined || models === null) return null;
  if (!Array.isArray(models) || models.some((model) => typeof model !== 'string' || model.trim() === '' || model.length > 200)) {
    throw new ServiceError('invalid_request', 'models: must be a list of configured model names');
  }
  return [...new Set(models.map((model) => model.trim()))];
}

/** A lease's length: milliseconds > 0. */
export function validLeaseMs(leaseMs: number): void {
  if (!Number.isFinite(leaseMs) || leaseMs <= 0) throw new ServiceError('invalid_request', `leaseMs: must be a number of milliseconds > 0 (got ${leaseMs})`);
}

/** A worker's id: a non-empty string. */
export function validWorkerId(workerId: string): void {
  if (typeof workerId !== 'string' || workerId === '') throw new ServiceError('invalid_request', 'workerId: must be a non-empty string');
}

/** A run's query, language and source checked, and its input as the JSON the store keeps. */
export function validRunInput(run: NewRun): { query: string; json: string } {
  if (typeof run.input?.query !== 'string') throw new ServiceError('invalid_request', 'input.query: must be a string');
  if (!Language.safeParse(run.language).success)
    throw new ServiceError('invalid_request', `language: must be javascript or python (got ${String(run.language)})`);
  if (run.source !== 'runs' && run.source !== 'chat') throw new ServiceError('invalid_request', `source: must be runs or chat (got ${String(run.source)})`);
  let json: string;
  try {
    json = JSON.stringify(run.input);
  } catch (error) {
    throw new ServiceError('invalid_request', 'input: must be JSON-serializable', { cause: error });
  }
  return { query: run.input.query, json };
}
