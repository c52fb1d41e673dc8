/**
 * Serves the `llm_query` / `llm_query_batched` / `rlm_query` / `rlm_query_batched` calls a run's
 * cells make. Every failure becomes an error string in its slot — a batch goes on — and nothing
 * falls back silently: a model a cell names must be configured.
 *
 * What a cell sends is hostile: a model name is looked up among the configured names only (never
 * on an object's prototype), prompts count against the per-cell and per-run byte caps, and what is
 * recorded of each call is bounded (see `recorded-text.ts`), whatever its size.
 *
 * Cancellation: a call's signal fires when its cell ends (the sandbox aborts what the cell left
 * running), when the run is cancelled, or when the tree stops (a limit, a fatal error). A running
 * model call is then aborted — its HTTP request closed — and recorded once, as cancelled, in the
 * cell that made it; the slots of a batch not yet started are never sent, only counted. A model
 * error no retry can fix (`ModelCallError.fatal`: a refused key, an unknown model, an unreachable
 * provider) stops the whole tree at once instead of answering the cell.
 */
import { randomBytes } from 'node:crypto';
import type { SubcallOutcome, SubcallParams, SubcallResult } from '@rlm/shared';
import { RlmError, errorMessage } from '../errors.js';
import { ModelCallError, type TokenUsage } from '../models/model-backend.js';
import { contextWindowOf, estimateTokens } from '../models/model-table.js';
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
  /** False: every call is refused with {@link subcallsOff} and no model is called (`RlmOptions.subcalls: false`). */
  subcalls?: boolean;
  budget: RunBudget;
  /** The run's signal (the caller's and the tree's budget): a call cancelled by it says the run stopped. */
  runSignal: AbortSignal;
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
  /** Prompts of batches never sent because the cell ended or the run stopped first. */
  notStarted: number;
}

/** A call in progress: its id and start time, the cell it belongs to, and a note for its record. */
interface CallContext {
  callId: string;
  started: number;
  cell: CellLog;
  note?: string;
}

/** One cell's record of its sub-calls, and the prompt bytes it passed (for `maxSubcallPromptBytesPerCell`). */
interface CellLog extends CellSubcalls {
  promptBytes: number;
}

const newCellLog = (): CellLog => ({ subcalls: [], notRecorded: 0, notStarted: 0, promptBytes: 0 });

const NO_USAGE: TokenUsage = { inputTokens: 0, outputTokens: 0 };
/** Configured names listed at most in an unknown-model error (the error must stay short). */
const MAX_LISTED_MODELS = 20;

export class SubcallRouter {
  readonly #init: SubcallRouterInit;
  /** The model names cells may use, own properties of `roles.named` only. */
  readonly #named: ReadonlyMap<string, ModelRole>;
  /** The current cell's log; a call keeps the one current when it started, so it is recorded in its own cell. */
  #cell: CellLog = newCellLog();

  constructor(init: SubcallRouterInit) {
    this.#init = init;
    this.#named = new Map(Object.entries(init.roles.named));
  }

  /**
   * The sub-calls made since the last call; the loop takes them after each cell, which also starts
   * the next cell's allowance of prompt bytes (`maxSubcallPromptBytesPerCell`).
   */
  takeRecords(): CellSubcalls {
    const { subcalls, notRecorded, notStarted } = this.#cell;
    this.#cell = newCellLog();
    return { subcalls, notRecorded, notStarted };
  }

  /** The sandbox's sub-call handler: one outcome per prompt, in order. Never rejects. */
  readonly handle = async (params: SubcallParams, options: { signal: AbortSignal }): Promise<SubcallResult> => {
    if (this.#init.subcalls === false) return { outcomes: params.prompts.map(() => ({ ok: false, error: subcallsOff(params.kind) })) };
    const signal = AbortSignal.any([options.signal, this.#init.runSignal]);
    const cell = this.#cell;
    // At the maximum depth an rlm_query is exactly an llm_query: same default model, same path.
    const asChild = params.kind === 'rlm_query' && this.#init.depth + 1 <= this.#init.maxDepth;
    const resolved = this.#resolve(params.model, asChild);
    if (typeof resolved === 'string') return { outcomes: params.prompts.map(() => ({ ok: false, error: resolved })) };
    // The role of a child refused a sandbox, answered as a plain llm_query (as at the maximum depth).
    const plainRole = asChild ? this.#resolve(params.model, false) : resolved;
    // Admitted in input order before anything runs, so which prompts a cap refuses never depends on timing.
    const refusals = params.prompts.map((prompt) => this.#admit(prompt, cell));
    const outcomes = await mapWithConcurrency(
      params.prompts,
      this.#init.budget.limits.subcallConcurrency,
      (prompt, index) => {
        const refusal = refusals[index];
        if (refusal !== undefined) return Promise.resolve(this.#refuse(params.kind, prompt, resolved, refusal, cell));
        return asChild && typeof plainRole !== 'string'
          ? this.#child(prompt, resolved, plainRole, signal, cell)
          : this.#complete(params.kind, prompt, resolved, signal, this.#start(params.kind, prompt, resolved, cell));
      },
      {
        signal,
        notStarted: (): SubcallOutcome => {
          cell.notStarted += 1;
          return { ok: false, error: `not sent: ${this.#cancelReason(signal)}` };
        },
      },
    );
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
  #admit(prompt: string, cell: CellLog): string | undefined {
    const { limits } = this.#init.budget;
    const bytes = Buffer.byteLength(prompt, 'utf8');
    if (cell.promptBytes + bytes > limits.maxSubcallPromptBytesPerCell) {
      return (
        `prompt of ${formatBytes(bytes)} refused: this cell already passed ${formatBytes(cell.promptBytes)} of prompts to sub-calls, ` +
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
    cell.promptBytes += bytes;
    return undefined;
  }

  /** A prompt refused before any model saw it: recorded by its length and first characters. */
  #refuse(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole, error: string, cell: CellLog): SubcallOutcome {
    const call = this.#start(kind, prompt, role, cell);
    this.#finish(call, kind, role, prompt, { response: null, error, usage: NO_USAGE, refused: true });
    return { ok: false, error };
  }

  async #complete(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole, signal: AbortSignal, call: CallContext): Promise<SubcallOutcome> {
    const { budget, ledger } = this.#init;
    const refusal = windowRefusal(prompt, role);
    if (refusal) {
      this.#finish(call, kind, role, prompt, { response: null, error: refusal, usage: NO_USAGE, refused: true });
      return { ok: false, error: refusal };
    }
    let sent = false;
    try {
      budget.assertWithinLimits();
      sent = true;
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
      if (signal.aborted) {
        // Only a request that went out counts as a cancelled call of its model.
        if (sent) ledger.recordCancelled(role.model);
        return this.#cancelled(call, kind, role, prompt, signal);
      }
      // Every later call would fail the same way: the tree stops now rather than burn its turns.
      if (ModelCallError.isInstance(error) && error.fatal) budget.fail(error);
      const message = this.#describeFailure(error);
      this.#finish(call, kind, role, prompt, { response: null, error: message, usage: NO_USAGE });
      return { ok: false, error: message };
    }
  }

  /** Records a call its signal stopped, once, as cancelled, and answers its slot. */
  #cancelled(call: CallContext, kind: 'llm_query' | 'rlm_query', role: ModelRole, prompt: string, signal: AbortSignal, child?: ChildRunRecord): SubcallOutcome {
    const error = `cancelled: ${this.#cancelReason(signal)}`;
    this.#finish(call, kind, role, prompt, {
      response: null,
      error,
      usage: child ? sumUsage(child.usage) : NO_USAGE,
      cancelled: true,
      ...(child ? { child } : {}),
    });
    return { ok: false, error };
  }

  /** Why `signal` fired, for a cancelled call's record. */
  #cancelReason(signal: AbortSignal): string {
    const { budget, runSignal } = this.#init;
    const stop = budget.stopped;
    if (stop) return `the run stopped: ${stop.message}`;
    if (runSignal.aborted) return 'the run was cancelled';
    return RlmError.isInstance(signal.reason) ? signal.reason.message : 'the cell that made the call ended';
  }

  #describeFailure(error: unknown): string {
    const stop = this.#init.budget.stopped;
    if (stop && stop !== error) return `the run stopped: ${stop.message}`;
    return errorMessage(error);
  }

  /** An rlm_query served by a child RLM in a sandbox of its own — or, refused a sandbox slot, by `plainRole` as an llm_query. */
  async #child(prompt: string, role: ModelRole, plainRole: ModelRole, signal: AbortSignal, cell: CellLog): Promise<SubcallOutcome> {
    const call = this.#start('rlm_query', prompt, role, cell);
    const { budget, emit } = this.#init;
    let slot: SlotGrant;
    try {
      budget.assertWithinLimits();
      slot = await this.#init.acquireSandbox(signal);
    } catch (failure) {
      if (signal.aborted) return this.#cancelled(call, 'rlm_query', role, prompt, signal);
      const error = this.#describeFailure(failure);
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
      // A cancelled child closed its sandbox before its run rejected; what it spent is in the parent's ledger.
      if (signal.aborted) return this.#cancelled(call, 'rlm_query', role, prompt, signal);
      error = this.#describeFailure(failure);
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

  #start(kind: 'llm_query' | 'rlm_query', prompt: string, role: ModelRole, cell: CellLog): CallContext {
    const call = { callId: randomBytes(4).toString('hex'), started: performance.now(), cell };
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
      /** Stopped by its signal while it ran. */
      cancelled?: boolean;
    },
  ): void {
    const durationMs = performance.now() - call.started;
    const { response, error, usage, costUsd, child, refused, cancelled } = outcome;
    const { cell } = call;
    if (cell.subcalls.length < MAX_RECORDED_SUBCALLS_PER_CELL) {
      cell.subcalls.push({
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
        ...(cancelled ? { cancelled: true as const } : {}),
      });
    } else {
      cell.notRecorded += 1;
    }
    this.#init.emit({
      type: 'subcall_end',
      callId: call.callId,
      kind,
      model: role.model,
      ok: error === null,
      durationMs,
      ...(error === null ? {} : { error }),
      ...(cancelled ? { cancelled: true as const } : {}),
      ...(costUsd === undefined ? {} : { usage: { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens, costUsd } }),
    });
  }
}

/** The error every sub-call of a run without sub-calls gets (`RlmOptions.subcalls: false`). */
export function subcallsOff(kind: 'llm_query' | 'rlm_query'): string {
  return `${kind} is not available in this run: sub-calls are turned off (subcalls: false), so no other model can be called; work through the context with code alone`;
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
