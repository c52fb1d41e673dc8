/**
 * Serves the `llm_query` / `llm_query_batched` / `rlm_query` / `rlm_query_batched` calls a run's
 * cells make. Every failure becomes an error string in its slot — a batch goes on — and nothing
 * falls back silently: a model a cell names must be configured.
 */
import { randomBytes } from 'node:crypto';
import type { SubcallOutcome, SubcallParams, SubcallResult } from '@rlm/shared';
import type { TokenUsage } from '../models/model-backend.js';
import { contextWindowOf, estimateTokens } from '../models/context-windows.js';
import type { UsageLedger } from '../usage/usage-ledger.js';
import { mapWithConcurrency } from './concurrency.js';
import type { RunBudget } from './run-budget.js';
import type { RunEventInput } from './run-events.js';
import type { ChildRunRecord, SubcallRecord } from './run-records.js';
import type { ModelRole } from './rlm-options.js';

export interface ModelRoles {
  root: ModelRole;
  sub: ModelRole;
  /** Models cells may name, by the name they use. */
  named: Readonly<Record<string, ModelRole>>;
}

export interface SubcallRouterInit {
  roles: ModelRoles;
  /** Depth of the run whose cells call in (0 for the root). */
  depth: number;
  maxDepth: number;
  budget: RunBudget;
  ledger: UsageLedger;
  emit: (event: RunEventInput) => void;
  /** Runs a child RLM over `prompt` with `role` as its root model; resolves with its record or rejects. */
  runChild: (prompt: string, role: ModelRole, signal: AbortSignal) => Promise<ChildRunRecord>;
}

const NO_USAGE: TokenUsage = { inputTokens: 0, outputTokens: 0 };

export class SubcallRouter {
  readonly #init: SubcallRouterInit;
  #records: SubcallRecord[] = [];

  constructor(init: SubcallRouterInit) {
    this.#init = init;
  }

  /** The sub-calls made since the last call (the loop takes them after each cell). */
  takeRecords(): SubcallRecord[] {
    const records = this.#records;
    this.#records = [];
    return records;
  }

  /** The sandbox's sub-call handler: one outcome per prompt, in order. Never rejects. */
  readonly handle = async (params: SubcallParams, options: { signal: AbortSignal }): Promise<SubcallResult> => {
    const signal = AbortSignal.any([options.signal, this.#init.budget.signal]);
    // At the maximum depth an rlm_query is exactly an llm_query: same default model, same path.
    const asChild = params.kind === 'rlm_query' && this.#init.depth + 1 <= this.#init.maxDepth;
    const resolved = this.#resolve(params.model, asChild);
    if (typeof resolved === 'string') return { outcomes: params.prompts.map(() => ({ ok: false, error: resolved })) };
    const outcomes = await mapWithConcurrency(params.prompts, this.#init.budget.limits.subcallConcurrency, (prompt) =>
      asChild ? this.#child(prompt, resolved, signal) : this.#complete(params.kind, prompt, resolved, signal),
    );
    return { outcomes };
  };

  /** The role a call targets, or an error message. */
  #resolve(model: string | undefined, asChild: boolean): ModelRole | string {
    const { roles } = this.#init;
    if (model === undefined) return asChild ? roles.root : roles.sub;
    const named = roles.named[model];
    if (named) return named;
    for (const role of [roles.sub, roles.root, ...Object.values(roles.named)]) if (role.model === model) return role;
    const configured = [...new Set([roles.root.model, roles.sub.model, ...Object.keys(roles.named)])];
    return `model ${JSON.stringify(model)} is not configured for this run; configured models: ${configured.join(', ')}`;
  }

  async #complete(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole, signal: AbortSignal): Promise<SubcallOutcome> {
    const started = performance.now();
    const callId = randomBytes(4).toString('hex');
    const { emit, budget, ledger } = this.#init;
    const record = (response: string | null, error: string | null, usage: TokenUsage, costUsd?: number | null) => {
      const durationMs = performance.now() - started;
      this.#records.push({ kind, model: role.model, prompt, response, error, usage, durationMs });
      emit({
        type: 'subcall_end',
        callId,
        kind,
        model: role.model,
        ok: error === null,
        durationMs,
        ...(error === null ? {} : { error }),
        ...(costUsd === undefined ? {} : { usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costUsd } }),
      });
    };
    emit({ type: 'subcall_start', callId, kind, model: role.model, promptChars: prompt.length });
    const refusal = windowRefusal(prompt, role);
    if (refusal) {
      record(null, refusal, NO_USAGE);
      return { ok: false, error: refusal };
    }
    try {
      budget.assertWithinLimits();
      const response = await role.backend.complete(
        {
          model: role.model,
          messages: [{ role: 'user', content: prompt }],
          ...(role.maxOutputTokens === undefined ? {} : { maxOutputTokens: role.maxOutputTokens }),
        },
        { signal },
      );
      ledger.record(role.model, response.usage);
      const costUsd = budget.charge(role.model, response.usage);
      record(response.text, null, response.usage, costUsd);
      return { ok: true, text: response.text };
    } catch (error) {
      const message = describeFailure(error, budget);
      record(null, message, NO_USAGE);
      return { ok: false, error: message };
    }
  }

  async #child(prompt: string, role: ModelRole, signal: AbortSignal): Promise<SubcallOutcome> {
    const started = performance.now();
    const callId = randomBytes(4).toString('hex');
    const { emit, budget } = this.#init;
    emit({ type: 'subcall_start', callId, kind: 'rlm_query', model: role.model, promptChars: prompt.length });
    let child: ChildRunRecord | undefined;
    let error: string | null = null;
    try {
      budget.assertWithinLimits();
      child = await this.#init.runChild(prompt, role, signal);
      if (child.answer === null) error = 'the child RLM ended without an answer';
    } catch (failure) {
      error = describeFailure(failure, budget);
    }
    const durationMs = performance.now() - started;
    const usage = child ? sumUsage(child.usage) : NO_USAGE;
    this.#records.push({
      kind: 'rlm_query',
      model: role.model,
      prompt,
      response: child?.answer ?? null,
      error,
      usage,
      durationMs,
      ...(child ? { child } : {}),
    });
    emit({ type: 'subcall_end', callId, kind: 'rlm_query', model: role.model, ok: error === null, durationMs, ...(error === null ? {} : { error }) });
    return error === null && child?.answer != null ? { ok: true, text: child.answer } : { ok: false, error: error ?? 'no answer' };
  }
}

/** Why a prompt cannot be sent to `role`, or undefined when it fits. */
function windowRefusal(prompt: string, role: ModelRole): string | undefined {
  const window = role.contextWindowTokens ?? contextWindowOf(role.model);
  const tokens = estimateTokens(prompt);
  if (tokens <= window) return undefined;
  return (
    `prompt of ${prompt.length.toLocaleString('en-US')} characters (about ${tokens.toLocaleString('en-US')} tokens) ` +
    `exceeds the context window of ${role.model} (${window.toLocaleString('en-US')} tokens); split it into smaller pieces`
  );
}

function describeFailure(error: unknown, budget: RunBudget): string {
  if (budget.exceeded) return `the run stopped: ${budget.exceeded.message}`;
  return error instanceof Error ? error.message : String(error);
}

function sumUsage(usage: ChildRunRecord['usage']): TokenUsage {
  let inputTokens = 0;
  let outputTokens = 0;
  for (const entry of Object.values(usage)) {
    inputTokens += entry.inputTokens;
    outputTokens += entry.outputTokens;
  }
  return { inputTokens, outputTokens };
}
