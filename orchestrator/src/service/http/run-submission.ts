/**
 * Accepting a run, shared by `POST /v1/runs` and `POST /v1/chat/completions`: which served model
 * it names and whether the team may use it, its limits after the server's ceilings and the team's
 * remaining budget, then the store's atomic accept (queue and budget checks) and the `run_queued`
 * notice that wakes the workers.
 *
 * Model names: a client sends a served model's id — `rlm` (the server's default root model) or
 * `rlm:<name>` (a configured model) — or, for convenience, the bare configured `<name>`.
 */
import type { Language } from '@rlm/shared';
import {
  type RunInput,
  type RunLimits,
  type RunRecord,
  type RunSource,
  type ServedModel,
  ServiceError,
  type ServiceNotices,
  type ServiceStore,
  type ServeSettings,
  type TeamRecord,
} from '../service-types.js';

/** The id clients use for a stored run's model (null: the default). */
export function modelId(name: string | null): string {
  return name === null ? 'rlm' : `rlm:${name}`;
}

/** Whether the team may use the model: the default always; others when the team's list is open or names it (as `<name>` or `rlm:<name>`). */
export function teamMayUse(team: TeamRecord, model: ServedModel): boolean {
  if (model.name === null || team.models === null) return true;
  return team.models.includes(model.name) || team.models.includes(model.id);
}

/**
 * The served model a request names (absent: the default, `rlm`).
 * @throws {ServiceError} `invalid_request` for a name the server does not serve; `model_not_allowed` for one the team may not use.
 */
export function resolveModel(models: readonly ServedModel[], team: TeamRecord, requested: string | undefined): ServedModel {
  const model = requested === undefined ? models[0] : (models.find((m) => m.id === requested) ?? models.find((m) => m.name !== null && m.name === requested));
  if (model === undefined) {
    const served = models.map((m) => m.id).join(', ') || 'none';
    throw new ServiceError('invalid_request', `model: "${requested ?? 'rlm'}" is not served here; use one of ${served}`);
  }
  if (!teamMayUse(team, model)) {
    const allowed = models
      .filter((m) => teamMayUse(team, m))
      .map((m) => m.id)
      .join(', ');
    throw new ServiceError('model_not_allowed', `model: team "${team.name}" may not use ${model.id}; it may use ${allowed}`);
  }
  return model;
}

// Shared with the store, which applies the team's budget under its lock.
export { effectiveLimits } from '../run-limits.js';
import { effectiveLimits } from '../run-limits.js';

export interface RunRequest {
  input: RunInput;
  model?: string | undefined;
  language?: Language | undefined;
  limits?: RunLimits | undefined;
  source: RunSource;
}

export interface SubmissionDeps {
  store: ServiceStore;
  notices: ServiceNotices;
  settings: ServeSettings;
}

/**
 * Accepts a run for the team: committed to the store (status `queued`) when this resolves, and the
 * workers told.
 * @throws {ServiceError} `invalid_request`/`model_not_allowed` (the model), `queue_full`/`budget_exhausted` (429, from the store).
 */
export async function submitRun(deps: SubmissionDeps, team: TeamRecord, request: RunRequest): Promise<{ run: RunRecord; model: ServedModel }> {
  const model = resolveModel(deps.settings.models, team, request.model);
  const run = await deps.store.submitRun({
    teamId: team.id,
    input: request.input,
    model: model.name,
    language: request.language ?? deps.settings.defaultLanguage,
    // The store caps maxCostUsd by what is left of the team's budget, read under the team's lock.
    limits: effectiveLimits(deps.settings.limits, request.limits, null),
    source: request.source,
  });
  deps.notices.publish({ kind: 'run_queued', runId: run.id, teamId: team.id });
  return { run, model };
}

/**
 * Asks the team's run to stop and tells whoever holds it; answers the run as it is now, or null
 * when it is not the team's. A run cancelled while queued got its `finished` event from the
 * store: its followers are told too.
 */
export async function cancelRun(deps: Omit<SubmissionDeps, 'settings'>, teamId: string, runId: string): Promise<RunRecord | null> {
  const run = await deps.store.requestCancel(teamId, runId);
  if (run === null) return null;
  if (run.status === 'running') deps.notices.publish({ kind: 'run_cancel', runId });
  else if (run.status === 'cancelled' && run.startedAt === null) {
    // Cancelled while queued, by this call or an earlier one: a handful of events (queued, finished).
    const events = await deps.store.readEvents(runId, 0);
    const lastSeq = events.at(-1)?.seq;
    if (lastSeq !== undefined) deps.notices.publish({ kind: 'run_events', runId, lastSeq });
  }
  return run;
}
