/**
 * A run as the API shows it: snake_case fields (as issue 16 lists them), times as ISO 8601 UTC
 * strings, the model as the id clients send (`rlm`, `rlm:<name>`), usage per model with snake_case
 * counters. `limits` keeps the request's field names (request-schemas.ts). The team, the worker,
 * the lease and the input (beyond the query) are never shown.
 */
import type { RunLimits, RunRecord, RunSource, RunStatus, RunUsage } from '../service-types.js';
import { modelId } from './run-submission.js';

export interface PublicModelUsage {
  calls: number;
  cancelled_calls?: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  /** USD; null when a call of the model had no known price. */
  cost_usd: number | null;
}

export interface PublicRun {
  id: string;
  object: 'run';
  status: RunStatus;
  query: string;
  model: string;
  language: string;
  source: RunSource;
  limits: RunLimits;
  answer: string | null;
  /** Why it failed or was cancelled, as the worker recorded it. */
  error: string | null;
  /** Per model id as the provider calls it. */
  usage: Record<string, PublicModelUsage>;
  /** USD; null when some call's price is unknown (or the run has not finished). */
  cost_usd: number | null;
  iterations: number;
  /** A cancel was asked while it ran; its worker is stopping it. */
  cancel_requested: boolean;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface PublicRunPage {
  object: 'list';
  data: PublicRun[];
  /** Pass as `cursor` for the next page; null on the last one. */
  next_cursor: string | null;
}

function isoTime(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function publicUsage(usage: RunUsage): Record<string, PublicModelUsage> {
  const out: Record<string, PublicModelUsage> = {};
  for (const [model, u] of Object.entries(usage)) {
    const shown: PublicModelUsage = {
      calls: u.calls,
      input_tokens: u.inputTokens,
      output_tokens: u.outputTokens,
      cache_read_tokens: u.cacheReadTokens,
      cache_write_tokens: u.cacheWriteTokens,
      cost_usd: u.costUsd,
    };
    if (u.cancelledCalls !== undefined) shown.cancelled_calls = u.cancelledCalls;
    // Defined, not assigned: a model named `__proto__` is an entry, not the object's prototype.
    Object.defineProperty(out, model, { value: shown, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

export function publicRun(run: RunRecord): PublicRun {
  return {
    id: run.id,
    object: 'run',
    status: run.status,
    query: run.query,
    model: modelId(run.model),
    language: run.language,
    source: run.source,
    limits: run.limits,
    answer: run.answer,
    error: run.error,
    usage: publicUsage(run.usage),
    cost_usd: run.costUsd,
    iterations: run.iterations,
    cancel_requested: run.cancelRequested,
    created_at: new Date(run.createdAt).toISOString(),
    started_at: isoTime(run.startedAt),
    finished_at: isoTime(run.finishedAt),
  };
}

/** Input and output tokens summed over the run's models (the Chat Completions `usage`). */
export function totalTokens(usage: RunUsage): { input: number; output: number } {
  let input = 0;
  let output = 0;
  for (const u of Object.values(usage)) {
    input += u.inputTokens;
    output += u.outputTokens;
  }
  return { input, output };
}
