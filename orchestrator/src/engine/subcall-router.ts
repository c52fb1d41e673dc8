/**
 * Serves the `llm_query` / `llm_query_batched` / `rlm_query` / `rlm_query_batched` calls a run's
 * cells make. Every failure becomes an error string in its slot — a batch goes on — and nothing
 * falls back silently: a model a cell names must be configured.
 *
 * What a cell sends is hostile: a model name is looked up among the configured names only (never
 * on an object's prototype), prompts count against the per-cell and per-run byte caps, and what is
 * recorded of each call is bounded (see `recorded-text.ts`), whatever its size.
 */
import { randomBytes } from 'node:crypto';
import type { SubcallOutcome, SubcallParams, SubcallResult } from '@rlm/shared';
import type { TokenUsage } from '../models/model-backend.js';
import { contextWindowOf, estimateTokens } from '../models/context-windows.js';
import type { UsageLedger } from '../usage/usage-ledger.js';
import { mapWithConcurrency } from './concurrency.js';
import { MAX_RECORDED_SUBCALLS_PER_CELL, clipForRecord, prefixForRecord } from './recorded-text.js';
import type { RunBudget } from './run-budget.js';
import type { RunEventInput } from './run-events.js';
import type { ChildRunRecord, SubcallRecord } from './run-records.js';
import type { ModelRole } from './rlm-options.js';
import type { SlotGrant, SlotHolder } from './sandbox-slots.js';

export interface ModelRoles {
  root: ModelRole;
  sub: ModelRole;
  /** Models cells may name, by the name they use. Only own properties count. */
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
  /** A sandbox slot for a child of this run (see `SandboxSlots.acquire`); rejects when `signal` fires. */
  acquireSandbox: (signal: AbortSignal) => Promise<SlotGrant>;
  /** Runs a child RLM over `prompt` with `role` as its root model in the slot `slot`; resolves with its record or rejects. */
  runChild: (prompt: string, role: ModelRole, slot: SlotHolder, signal: AbortSignal) => Promise<ChildRunRecord>;
}

/** What a cell's sub-calls left on record: the first ones, and how many more there were. */
export interface CellSubcalls {
  subcalls: SubcallRecord[];
  /** Sub-calls past `MAX_RECORDED_SUBCALLS_PER_CELL`, counted only. */
  notRecorded: number;
}

/** A call in progress: its id and start time, and a note for its record. */
interface CallContext {
  callId: string;
  started: number;
  note?: string;
}

const NO_USAGE: TokenUsage = { inputTokens: 0, outputTokens: 0 };
/** Configured names listed at most in an unknown-model error (the error must stay short). */
const MAX_LISTED_MODELS = 20;

export class SubcallRouter {
  readonly #init: SubcallRouterInit;
  /** The model names cells may use, own properties of `roles.named` only. */
  readonly #named: ReadonlyMap<string, ModelRole>;
  #records: SubcallRecord[] = [];
  #notRecorded = 0;
  /** UTF-8 bytes of prompts the current cell has passed (reset when its records are taken). */
  #cellPromptBytes = 0;

  constructor(init: SubcallRouterInit) {
    this.#init = init;
    this.#named = new Map(Object.entries(init.roles.named));
  }

  /**
   * The sub-calls made since the last call; the loop takes them after each cell, which also starts
   * the next cell's allowance of prompt bytes (`maxSubcallPromptBytesPerCell`).
   */
  takeRecords(): CellSubcalls {
    const taken = { subcalls: this.#records, notRecorded: this.#notRecorded };
    this.#records = [];
    this.#notRecorded = 0;
    this.#cellPromptBytes = 0;
    return taken;
  }

  /** The sandbox's sub-call handler: one outcome per prompt, in order. Never rejects. */
  readonly handle = async (params: SubcallParams, options: { signal: AbortSignal }): Promise<SubcallResult> => {
    const signal = AbortSignal.any([options.signal, this.#init.budget.signal]);
    // At the maximum depth an rlm_query is exactly an llm_query: same default model, same path.
    const asChild = params.kind === 'rlm_query' && this.#init.depth + 1 <= this.#init.maxDepth;
    const resolved = this.#resolve(params.model, asChild);
    if (typeof resolved === 'string') return { outcomes: params.prompts.map(() => ({ ok: false, error: resolved })) };
    // The role of a child refused a sandbox, answered as a plain llm_query (as at the maximum depth).
    const plainRole = asChild ? this.#resolve(params.model, false) : resolved;
    // Admitted in input order before anything runs, so which prompts a cap refuses never depends on timing.
    const refusals = params.prompts.map((prompt) => this.#admit(prompt));
    const outcomes = await mapWithConcurrency(params.prompts, this.#init.budget.limits.subcallConcurrency, (prompt, index) => {
      const refusal = refusals[index];
      if (refusal !== undefined) return Promise.resolve(this.#refuse(params.kind, prompt, resolved, refusal));
      return asChild && typeof plainRole !== 'string'
        ? this.#child(prompt, resolved, plainRole, signal)
        : this.#complete(params.kind, prompt, resolved, signal);
    });
    return { outcomes };
  };

  /** The role a call targets, or an error message. */
  #resolve(model: string | undefined, asChild: boolean): ModelRole | string {
    const { roles } = this.#init;
    if (model === undefined) return asChild ? roles.root : roles.sub;
    // A Map, not `named[model]`: a cell's `__proto__` or `constructor` must be an unknown name.
    const named = this.#named.get(model);
    if (named) return named;
    for (const role of [roles.sub, roles.root, ...this.#named.values()]) if (role.model === model) return role;
    const configured = [...new Set([roles.root.model, roles.sub.model, ...this.#named.keys()])];
    const listed = configured.slice(0, MAX_LISTED_MODELS).join(', ');
    const more = configured.length > MAX_LISTED_MODELS ? ` and ${configured.length - MAX_LISTED_MODELS} more` : '';
    return `model ${JSON.stringify(model)} is not configured for this run; configured models: ${listed}${more}`;
  }

  /** Counts `prompt` against the cell's and the run's prompt-byte caps; the refusal when it would pass one. */
  #admit(prompt: string): string | undefined {
    const { limits } = this.#init.budget;
    const bytes = Buffer.byteLength(prompt, 'utf8');
    if (this.#cellPromptBytes + bytes > limits.maxSubcallPromptBytesPerCell) {
      return (
        `prompt of ${formatBytes(bytes)} refused: this cell already passed ${formatBytes(this.#cellPromptBytes)} of prompts to sub-calls, ` +
        `and maxSubcallPromptBytesPerCell allows ${formatBytes(limits.maxSubcallPromptBytesPerCell)} per cell; send less per cell, or raise ` +
        'limits.maxSubcallPromptBytesPerCell (limits.maxSubcallPromptMbPerCell in the config file)'
      );
    }
    if (!this.#init.budget.takePromptBytes(bytes)) {
      return (
        `prompt of ${formatBytes(bytes)} refused: the run's cells already passed ${formatBytes(this.#init.budget.promptBytesUsed)} of prompts to sub-calls, ` +
        `and maxSubcallPromptBytesPerRun allows ${formatBytes(limits.maxSubcallPromptBytesPerRun)} per run; raise ` +
        'limits.maxSubcallPromptBytesPerRun (limits.maxSubcallPromptMbPerRun in the config file)'
      );
    }
    this.#cellPromptBytes += bytes;
    return undefined;
  }

  /** A prompt refused before any model saw it: recorded by its length and first characters. */
  #refuse(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole, error: string): SubcallOutcome {
    const call = this.#start(kind, prompt, role);
    this.#finish(call, kind, role, prompt, { response: null, error, usage: NO_USAGE, refused: true });
    return { ok: false, error };
  }

  async #complete(
    kind: 'llm_query' | 'rlm_query',
    prompt: string,
    role: ModelRole,
    signal: AbortSignal,
    call: CallContext = this.#start(kind, prompt, role),
  ): Promise<SubcallOutcome> {
    const { budget, ledger } = this.#init;
    const refusal = windowRefusal(prompt, role);
    if (refusal) {
      this.#finish(call, kind, role, prompt, { response: null, error: refusal, usage: NO_USAGE, refused: true });
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
      this.#finish(call, kind, role, prompt, { response: response.text, error: null, usage: response.usage, costUsd });
      return { ok: true, text: response.text };
    } catch (error) {
      const message = describeFailure(error, budget);
      this.#finish(call, kind, role, prompt, { response: null, error: message, usage: NO_USAGE });
      return { ok: false, error: message };
    }
  }

  /** An rlm_query served by a child RLM in a sandbox of its own — or, refused a sandbox slot, by `plainRole` as an llm_query. */
  async #child(prompt: string, role: ModelRole, plainRole: ModelRole, signal: AbortSignal): Promise<SubcallOutcome> {
    const call = this.#start('rlm_query', prompt, role);
    const { budget, emit } = this.#init;
    let slot: SlotGrant;
    try {
      budget.assertWithinLimits();
      slot = await this.#init.acquireSandbox(signal);
    } catch (failure) {
      const error = describeFailure(failure, budget);
      this.#finish(call, 'rlm_query', role, prompt, { response: null, error, usage: NO_USAGE });
      return { ok: false, error };
    }
    if (!slot.granted) {
      emit({ type: 'warning', code: 'sandbox_cap', message: slot.message });
      return this.#complete('rlm_query', prompt, plainRole, signal, { ...call, note: slot.message });
    }
    let child: ChildRunRecord | undefined;
    let error: string | null = null;
    try {
      child = await this.#init.runChild(prompt, role, slot.holder, signal);
      if (child.answer === null) error = 'the child RLM ended without an answer';
    } catch (failure) {
      error = describeFailure(failure, budget);
    } finally {
      slot.release();
    }
    this.#finish(call, 'rlm_query', role, prompt, {
      response: child?.answer ?? null,
      error,
      usage: child ? sumUsage(child.usage) : NO_USAGE,
      ...(child ? { child } : {}),
    });
    return error === null && child?.answer != null ? { ok: true, text: child.answer } : { ok: false, error: error ?? 'no answer' };
  }

  #start(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole): CallContext {
    const call = { callId: randomBytes(4).toString('hex'), started: performance.now() };
    this.#init.emit({ type: 'subcall_start', callId: call.callId, kind, model: role.model, promptChars: prompt.length });
    return call;
  }

  /** Records the call — its texts bounded (see `recorded-text.ts`) — and emits its end. */
  #finish(
    call: CallContext,
    kind: 'llm_query' | 'rlm_query',
    role: ModelRole,
    prompt: string,
    outcome: {
      response: string | null;
      error: string | null;
      usage: TokenUsage;
      costUsd?: number | null;
      child?: ChildRunRecord;
      /** Refused before any model saw it (too large for the window, or past a prompt-bytes cap). */
      refused?: boolean;
    },
  ): void {
    const durationMs = performance.now() - call.started;
    const { response, error, usage, costUsd, child, refused } = outcome;
    if (this.#records.length < MAX_RECORDED_SUBCALLS_PER_CELL) {
      this.#records.push({
        kind,
        model: role.model,
        // A refused prompt is kept only by its beginning: the cell chose its size, not the run.
        prompt: refused ? prefixForRecord(prompt) : clipForRecord(prompt),
        promptChars: prompt.length,
        response: response === null ? null : clipForRecord(response),
        error,
        usage,
        durationMs,
        ...(call.note === undefined ? {} : { note: call.note }),
        ...(child ? { child } : {}),
      });
    } else {
      this.#notRecorded += 1;
    }
    this.#init.emit({
      type: 'subcall_end',
      callId: call.callId,
      kind,
      model: role.model,
      ok: error === null,
      durationMs,
      ...(error === null ? {} : { error }),
      ...(costUsd === undefined ? {} : { usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costUsd } }),
    });
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

/** `1.5 MiB`, `64 MiB`, `512 KiB`, `12 bytes`. */
function formatBytes(bytes: number): string {
  const units = [
    [1024 * 1024 * 1024, 'GiB'],
    [1024 * 1024, 'MiB'],
    [1024, 'KiB'],
  ] as const;
  for (const [size, unit] of units) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${Number.isInteger(value) ? value : value.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} byte${bytes === 1 ? '' : 's'}`;
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
