/**
 * The service's {@link RunEngine}: one RLM per run, configured from the server's settings (the
 * config file and environment, as `rlm` reads them) and the run's request, with every sandbox taken
 * from the server's pool. The engine is used exactly as a user's program would use it.
 */
import type { Language } from '@rlm/shared';
import { RLM, type RlmResult } from '../engine/rlm.js';
import type { ModelRole, RlmOptions } from '../engine/rlm-options.js';
import type { RlmLimits } from '../engine/run-budget.js';
import type { RunEvent } from '../engine/run-events.js';
import type { ContextValue } from '../sandbox/context-files.js';
import type { SandboxPool } from '../sandbox/pool/sandbox-pool.js';
import { type RunEngine, type RunInput, type RunLimits, ServiceError, type ServedModel } from './service-types.js';

/** What the engine is built from: the roles and run options `rlm` would use, and the pool. */
export interface RunEngineOptions {
  /** Root, sub and named models (`createModelRoles` of the resolved settings). */
  roles: Pick<RlmOptions, 'root' | 'sub' | 'models'>;
  /** The server's engine limits (`limitsOf` of the config): what a run's own limits refine. */
  limits: Partial<RlmLimits>;
  prices?: RlmOptions['prices'];
  pool: SandboxPool;
}

/** The served models: `rlm` (the root model) first, then `rlm:<name>` for each configured named model. */
export function servedModels(roles: Pick<RlmOptions, 'root' | 'models'>): ServedModel[] {
  return [
    { id: 'rlm', name: null, providerModel: roles.root.model },
    ...Object.entries(roles.models ?? {}).map(([name, role]) => ({ id: `rlm:${name}`, name, providerModel: role.model })),
  ];
}

export function createRunEngine(options: RunEngineOptions): RunEngine {
  const { roles, pool } = options;
  return {
    async start(run): Promise<RlmResult> {
      const root = rootRole(roles, run.model);
      const rlm = new RLM({
        ...roles,
        root,
        language: run.language satisfies Language,
        limits: engineLimits(options.limits, run.limits),
        ...(options.prices ? { prices: options.prices } : {}),
        pool,
        logDir: run.logDir,
        onEvent: run.onEvent satisfies (event: RunEvent) => void,
      });
      return await rlm.completion({ context: contextOf(run.input), query: run.input.query, signal: run.signal });
    },
  };
}

function rootRole(roles: Pick<RlmOptions, 'root' | 'models'>, model: string | null): ModelRole {
  if (model === null) return roles.root;
  const role = roles.models?.[model];
  if (!role) throw new ServiceError('model_not_allowed', `model "rlm:${model}" is not configured on this server`);
  return role;
}

/** The run's limits over the server's: seconds become milliseconds; what the run leaves unset keeps the server's value. */
export function engineLimits(server: Partial<RlmLimits>, run: RunLimits): Partial<RlmLimits> {
  const limits: Partial<RlmLimits> = { ...server };
  if (run.maxIterations !== undefined) limits.maxIterations = run.maxIterations;
  if (run.maxDepth !== undefined) limits.maxDepth = run.maxDepth;
  if (run.timeoutSeconds !== undefined) limits.timeoutMs = Math.round(run.timeoutSeconds * 1000);
  if (run.cellTimeoutSeconds !== undefined) limits.cellTimeoutMs = Math.round(run.cellTimeoutSeconds * 1000);
  if (run.maxCostUsd !== undefined) limits.maxCostUsd = run.maxCostUsd;
  if (run.maxTokens !== undefined) limits.maxTokens = run.maxTokens;
  return limits;
}

/** The REPL's `context`: the one given, the list given, or both as one list (the single one first); an empty string when none. */
export function contextOf(input: RunInput): ContextValue {
  const { context, contexts } = input;
  if (contexts === undefined || contexts.length === 0) return (context ?? '') as ContextValue;
  return (context === undefined ? contexts : [context, ...contexts]) as ContextValue;
}
