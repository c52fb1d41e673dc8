/**
 * One RLM run — the root or a child — from the first message to an answer: ask the root model,
 * run every code block of its response in order, feed the outputs back, stop at the first FINAL.
 */
import { randomBytes } from 'node:crypto';
import type { ExecuteResult, Language } from '@rlm/shared';
import { AbortedError, RlmError, SandboxPoolExhaustedError, errorMessage } from '../errors.js';
import { ModelCallError, type ChatMessage, type CompletionResponse } from '../models/model-backend.js';
import { contextWindowOf, estimateTokens } from '../models/model-table.js';
import type { ContextValue, JsonValue } from '../sandbox/context-files.js';
import type { Repl, ReplFactory, ReplRequest } from '../sandbox/repl.js';
import { openPooledRepl, poolTicketOf } from '../sandbox/pool/pooled-repl.js';
import { reservePooledSandbox, type SandboxPool, type SandboxTicket } from '../sandbox/pool/sandbox-pool.js';
import type { SandboxTool } from '../sandbox/tools.js';
import type { PriceOverrides } from '../usage/pricing.js';
import { UsageLedger } from '../usage/usage-ledger.js';
import { extractCodeBlocks, findFinalInText, proseOutsideCode } from './code-blocks.js';
import { describeContext, formatContextDescription } from './context-description.js';
import type { EventStream } from './event-stream.js';
import {
  NO_CODE_NUDGE,
  buildCompactionRequest,
  buildCompactedContinuation,
  buildFinalAnswerRequest,
  buildFirstUserMessage,
  buildSystemPrompt,
  buildTurnMessage,
} from './prompts.js';
import { RunLimitError, type LimitName, type RunBudget } from './run-budget.js';
import type { CallUsage, RunEvent, RunEventInput } from './run-events.js';
import type { BlockRecord, ChildRunRecord, TurnRecord } from './run-records.js';
import type { SandboxSlots, SlotGrant, SlotHolder } from './sandbox-slots.js';
import { PendingRepl } from './pending-repl.js';
import { SubcallRouter, type ModelRoles } from './subcall-router.js';
import { isFunctionTool, type ModelRole, type RlmTool } from './rlm-options.js';

/** Everything a run shares with the rest of its tree. */
export interface RunTree {
  roles: ModelRoles;
  language: Language;
  budget: RunBudget;
  /** This run's usage (a child run gets its own, merged into its parent's when it ends). */
  ledger: UsageLedger;
  prices?: PriceOverrides;
  events: EventStream<RunEvent>;
  tools: Readonly<Record<string, RlmTool>>;
  /** Where the tree's REPLs come from: sandboxes made with the run's sandbox options. */
  createRepl: ReplFactory;
  /** The tree's sandbox slots (`maxSandboxes`): a child RLM takes one before its REPL is made. */
  sandboxes: SandboxSlots;
  /** The process-wide pool the tree's sandboxes come from (`RlmOptions.pool`): a child takes room in it after its slot. */
  pool?: SandboxPool;
  outputLimitChars: number;
  /** False: cells' sub-calls are refused and the system prompt leaves them out (`RlmOptions.subcalls`). */
  subcalls: boolean;
  /** Share of the root model's window at which the conversation is summarised; undefined: never. */
  compactionThreshold: number | undefined;
  /** The caller's signal. */
  signal: AbortSignal;
  /** Called after each turn of the root run (depth 0), e.g. to append it to the trajectory file. */
  onRootTurn?: (turn: TurnRecord) => void;
}

export interface RunRequest {
  query: string;
  depth: number;
  /** The run's id; a fresh one when absent. */
  runId?: string;
  /** The sandbox slot this run holds (the root's, or the one its parent's call was granted). */
  slot: SlotHolder;
  /** With a pool: a child's room in it, reserved with its slot (see {@link acquireChildSandbox}). */
  poolTicket?: SandboxTicket;
  parentRunId?: string;
  /** The root model of this run (a child may run on another model than its parent). */
  root: ModelRole;
  /** A fresh sandbox is made with this context… */
  context?: ContextValue;
  /** …unless a session lends its REPL, whose context variables are already loaded. */
  sandbox?: Repl;
  /** Names of the context variables the model should know about (`context`, `context_1`…). */
  contextVariables?: string[];
  /** Description of the context for the first message; computed from `context` when absent. */
  contextDescription?: string;
  historyCount?: number;
}

export interface RunOutcome {
  runId: string;
  answer: string | null;
  /** How the answer came: a FINAL call or text, or the last call after the iterations ran out. */
  via: 'FINAL' | 'FINAL_VAR' | 'text' | 'last_call' | null;
  /** Turns this run took (its children's not included). */
  iterations: number;
  turns: TurnRecord[];
  /** Set when a limit stopped the run (with the iteration limit the run still answers). */
  limitReached: LimitName | null;
  error: RlmError | null;
  /** The root conversation, for a session's `history_N`. */
  messages: ChatMessage[];
}

/**
 * Runs one RLM to its end. Resolves with the outcome — limits and failures included in it — and
 * rejects only with {@link AbortedError} when the caller's signal fires.
 */
export async function runRlm(tree: RunTree, request: RunRequest): Promise<RunOutcome> {
  const runId = request.runId ?? randomBytes(6).toString('hex');
  const emit = (event: RunEventInput) =>
    tree.events.emit({
      ...event,
      runId,
      depth: request.depth,
      time: Date.now(),
      ...(request.parentRunId ? { parentRunId: request.parentRunId } : {}),
    } as RunEvent);
  const started = performance.now();
  const signal = AbortSignal.any([tree.signal, tree.budget.signal]);
  // With a pool, the run's room in it: a child's was reserved with its slot, a session lends its
  // REPL's, a root run's is taken while its first model call runs.
  let ticket = request.poolTicket ?? poolTicketOf(request.sandbox);
  const router = new SubcallRouter({
    roles: tree.roles,
    depth: request.depth,
    maxDepth: tree.budget.limits.maxDepth,
    subcalls: tree.subcalls,
    budget: tree.budget,
    runSignal: signal,
    ledger: tree.ledger,
    emit,
    acquireSandbox: (childSignal) => acquireChildSandbox(tree, request, () => ticket, childSignal),
    runChild: (prompt, role, slot, childSignal) => runChild(tree, { prompt, role, slot, parentRunId: runId, depth: request.depth + 1, signal: childSignal }),
  });

  const contextDescription =
    request.contextDescription ?? (request.context === undefined ? 'no context was given' : formatContextDescription(describeContext(request.context)));
  emit({ type: 'run_start', query: request.query, rootModel: request.root.model, contextDescription });

  const turns: TurnRecord[] = [];
  const messages: ChatMessage[] = [];
  let answer: string | null = null;
  let via: RunOutcome['via'] = null;
  let limitReached: LimitName | null = null;
  let error: RlmError | null = null;
  let partial: string | null = null;
  // A session lends its REPL; otherwise one is made for this run, while the root model's first call runs.
  const lent = request.sandbox;
  let owned: PendingRepl | undefined;
  const repl = (): Promise<Repl> => (lent ? Promise.resolve(lent) : (owned as PendingRepl).get());

  const finish = (outcome: Omit<RunOutcome, 'runId' | 'turns' | 'messages'>): RunOutcome => {
    const durationMs = performance.now() - started;
    if (outcome.answer !== null && outcome.via) emit({ type: 'final', answer: outcome.answer, via: outcome.via });
    emit({
      type: 'run_end',
      success: outcome.answer !== null && outcome.error === null,
      error: outcome.error?.message ?? null,
      iterations: outcome.iterations,
      usage: tree.ledger.snapshot(),
      costUsd: tree.ledger.totalCostUsd(),
      durationMs,
    });
    return { runId, turns, messages, ...outcome };
  };

  try {
    const { functionTools, dataTools } = splitTools(tree.tools);
    if (lent) {
      lent.setSubcallHandler(router.handle);
    } else {
      owned = new PendingRepl(async (making) => {
        const replRequest: ReplRequest = {
          language: tree.language,
          ...(request.context === undefined ? {} : { context: request.context }),
          cellTimeoutMs: tree.budget.limits.cellTimeoutMs,
          onSubcall: router.handle,
          tools: functionTools,
          signal: making,
        };
        const made = tree.pool
          ? await openPooledRepl(tree.pool, replRequest, {
              ...(ticket ? { ticket } : {}),
              onLeased: (leased) => {
                ticket = leased;
                emit({
                  type: 'sandbox_acquired',
                  language: leased.key,
                  waitedMs: Math.round(leased.waitedMs),
                  warm: leased.warm,
                  readyMs: Math.round(performance.now() - leased.requestedAt),
                });
              },
            })
          : await tree.createRepl(replRequest);
        try {
          for (const [name, value] of Object.entries(dataTools)) await made.loadContext(value, { variable: name, signal: making });
        } catch (error) {
          await made.close();
          throw error;
        }
        return made;
      }, signal);
    }
    // A REPL that could not be made stops the model call in flight: its error is the run's.
    const callSignal = owned ? AbortSignal.any([signal, owned.failed]) : signal;

    const system = buildSystemPrompt({
      language: tree.language,
      tools: Object.entries(tree.tools).map(([name, tool]) => ({
        name,
        description: tool.description ?? '',
        kind: isFunctionTool(tool) ? 'function' : 'data',
      })),
      maxDepth: tree.budget.limits.maxDepth,
      depth: request.depth,
      // The names cells may pass as `model`; without them the prompt tells the model to leave it out.
      models: Object.keys(tree.roles.named),
      subcalls: tree.subcalls,
    });
    const first: ChatMessage = {
      role: 'user',
      content: buildFirstUserMessage({
        query: request.query,
        contextDescription,
        contextVariables: request.contextVariables ?? ['context'],
        historyCount: request.historyCount ?? 0,
      }),
    };
    messages.push(first);
    const fullHistory: ChatMessage[] = [first];
    const window = request.root.contextWindowTokens ?? contextWindowOf(request.root.model);
    let consecutiveFailures = 0;
    let turn = 0;

    for (;;) {
      tree.budget.takeTurn();
      turn += 1;
      const turnStarted = performance.now();
      emit({ type: 'turn_start', turn });

      if (tree.compactionThreshold !== undefined && request.depth === 0 && estimateConversationTokens(system, messages) > tree.compactionThreshold * window) {
        await compact(tree, request.root, system, messages, fullHistory, await repl(), turn, emit, callSignal);
      }

      const sent = [...messages];
      let response: PricedResponse;
      try {
        response = await callRoot(tree, request.root, system, messages, callSignal);
      } catch (failure) {
        if (owned?.failed.aborted) throw owned.failed.reason;
        // A refused key, an unknown model, an unreachable provider: no later turn can do better.
        if (!ModelCallError.isInstance(failure) || signal.aborted || failure.fatal) throw failure;
        consecutiveFailures += 1;
        if (consecutiveFailures >= tree.budget.limits.maxConsecutiveFailures) {
          // The failure is the cause: a caller can tell a provider that kept failing from a model whose cells did.
          throw new RunLimitError('consecutive_failures', `${consecutiveFailures} turns in a row failed; the last: ${failure.message}`, null, {
            cause: failure,
          });
        }
        continue;
      }
      emit({
        type: 'model_response',
        turn,
        model: request.root.model,
        text: response.text,
        ...usageOf(response),
        durationMs: performance.now() - turnStarted,
      });
      // The model's words, not its code: what a run stopped by a limit offers as its partial answer.
      partial = proseOutsideCode(response.text) || null;
      const assistant: ChatMessage = { role: 'assistant', content: response.text };
      messages.push(assistant);
      fullHistory.push(assistant);

      const blocks = extractCodeBlocks(response.text, tree.language);
      const records: BlockRecord[] = [];
      let final: { answer: string; via: 'FINAL' | 'FINAL_VAR' | 'text' } | null = null;
      const recordTurn = (finalAnswer: string | null): TurnRecord => {
        const turnRecord: TurnRecord = {
          turn,
          prompt: sent,
          system,
          response: response.text,
          blocks: records,
          finalAnswer,
          durationMs: performance.now() - turnStarted,
          model: request.root.model,
          usage: response.usage,
        };
        turns.push(turnRecord);
        if (request.depth === 0) tree.onRootTurn?.(turnRecord);
        return turnRecord;
      };
      const sandbox = blocks.length > 0 || findFinalInText(response.text)?.kind === 'FINAL_VAR' ? await repl() : undefined;
      for (const [index, code] of blocks.entries()) {
        emit({ type: 'cell_start', turn, block: index + 1, code });
        let result: ExecuteResult;
        try {
          result = await (sandbox as Repl).execute(code, {
            language: tree.language,
            timeoutMs: tree.budget.cellTimeoutMs(),
            outputLimitChars: tree.outputLimitChars,
            signal,
          });
        } catch (failure) {
          // Cancelled or stopped mid-cell: the sandbox aborted the cell's calls and waited for them,
          // so the turn goes on record with them before the run ends.
          if (signal.aborted) {
            records.push({ code, result: stoppedCellResult(tree, signal), ...cellRecords(router) });
            recordTurn(null);
          }
          throw failure;
        }
        emit({ type: 'cell_end', turn, block: index + 1, result });
        records.push({ code, result, ...cellRecords(router) });
        if (result.final) {
          final = { answer: result.final.value, via: result.final.via };
          break;
        }
      }

      const failedCells = records.length > 0 && records.every((r) => r.result.status !== 'ok');
      consecutiveFailures = failedCells ? consecutiveFailures + 1 : 0;

      let note: string | undefined;
      if (!final) {
        const textual = findFinalInText(response.text);
        if (textual?.kind === 'FINAL') final = { answer: textual.value, via: 'text' };
        else if (textual?.kind === 'FINAL_VAR') {
          const lookup = await (sandbox as Repl).execute(`FINAL_VAR(${JSON.stringify(textual.name)})`, { language: tree.language, timeoutMs: 10_000, signal });
          if (lookup.final) final = { answer: lookup.final.value, via: 'FINAL_VAR' };
          else note = lookup.stderr.text.trim() || `FINAL_VAR: no variable named ${textual.name}`;
        }
      }

      recordTurn(final?.answer ?? null);
      if (final) {
        answer = final.answer;
        via = final.via;
        break;
      }
      if (consecutiveFailures >= tree.budget.limits.maxConsecutiveFailures) {
        throw new RunLimitError('consecutive_failures', `${consecutiveFailures} turns in a row had only failing cells`);
      }
      const next: ChatMessage = {
        role: 'user',
        content:
          records.length === 0 && !note
            ? NO_CODE_NUDGE
            : buildTurnMessage({
                turn: turn + 1,
                query: request.query,
                outputs: records.map((r) => ({ code: r.code, result: r.result })),
                outputLimitChars: tree.outputLimitChars,
                note,
                subcalls: tree.subcalls,
              }),
      };
      messages.push(next);
      fullHistory.push(next);
    }
  } catch (failure) {
    if (tree.signal.aborted) {
      await owned?.close();
      throw new AbortedError('the run was cancelled', { cause: failure });
    }
    if (failure instanceof RunLimitError && failure.limit === 'iterations' && !owned?.failed.aborted && !tree.budget.exceeded) {
      // Out of turns: one last call asks for the best answer now.
      limitReached = 'iterations';
      try {
        const lastStarted = performance.now();
        const last = await callRoot(tree, request.root, undefined, [...messages, { role: 'user', content: buildFinalAnswerRequest() }], signal);
        emit({
          type: 'model_response',
          turn: turns.length + 1,
          model: request.root.model,
          text: last.text,
          ...usageOf(last),
          durationMs: performance.now() - lastStarted,
        });
        const textual = findFinalInText(last.text);
        answer = textual?.kind === 'FINAL' ? textual.value : last.text;
        via = 'last_call';
      } catch (lastFailure) {
        error = toRlmError(lastFailure);
      }
    } else if (failure instanceof RunLimitError) {
      limitReached = failure.limit;
      error = failure.withPartialAnswer(partial);
    } else if (tree.budget.exceeded) {
      limitReached = tree.budget.exceeded.limit;
      error = tree.budget.exceeded.withPartialAnswer(partial);
    } else if (tree.budget.failure) {
      error = tree.budget.failure;
    } else {
      error = toRlmError(failure);
    }
  }
  await owned?.close();
  if (answer === null && error === null) error = new RlmError('the run ended without an answer');
  return finish({ answer: answer ?? (error instanceof RunLimitError ? error.partialAnswer : null), via, iterations: turns.length, limitReached, error });
}

/** What the router kept of the cell that just ended, as a block record's fields. */
function cellRecords(router: SubcallRouter): Pick<BlockRecord, 'subcalls' | 'subcallsNotRecorded' | 'subcallsNotStarted'> {
  const { subcalls, notRecorded, notStarted } = router.takeRecords();
  return { subcalls, ...(notRecorded > 0 ? { subcallsNotRecorded: notRecorded } : {}), ...(notStarted > 0 ? { subcallsNotStarted: notStarted } : {}) };
}

/** The result recorded for a cell the run's signal stopped (the sandbox is closed; no result came). */
function stoppedCellResult(tree: RunTree, signal: AbortSignal): ExecuteResult {
  const stop = tree.budget.stopped;
  const message = stop ? `the run stopped: ${stop.message}` : tree.signal.aborted ? 'the run was cancelled' : errorMessage(signal.reason);
  return {
    status: 'error',
    stdout: { text: '', truncatedChars: 0 },
    stderr: { text: '', truncatedChars: 0 },
    error: { type: 'Cancelled', message, stack: [] },
    final: null,
    stateLost: true,
    variables: [],
    durationMs: 0,
  };
}

/** The pool ticket reserved with each child's slot, for the child's run to lease. */
const childTickets = new WeakMap<SlotHolder, SandboxTicket>();

/**
 * A sandbox for a child of `parent`: a slot of the tree (`maxSandboxes`), then — with a pool — room
 * in the pool, waiting at most half the time the run has left. While the child waits and runs, the
 * parent's own pool ticket is marked as waiting for it, so the pool can tell when every sandbox is
 * held by runs waiting for children. Refused by the pool, the slot is given back and the refusal
 * is the answer: the router answers the call as a plain `llm_query` with its message as the note.
 *
 * @throws {AbortedError} `signal` fired while waiting.
 */
async function acquireChildSandbox(tree: RunTree, parent: RunRequest, parentTicket: () => SandboxTicket | undefined, signal: AbortSignal): Promise<SlotGrant> {
  const waitingForChild = tree.pool ? parentTicket()?.childPending() : undefined;
  const done = () => waitingForChild?.();
  let slot: SlotGrant;
  try {
    slot = await tree.sandboxes.acquire(parent.slot, signal);
  } catch (error) {
    done();
    throw error;
  }
  if (!slot.granted || !tree.pool) {
    if (!slot.granted) done();
    return slot;
  }
  const remaining = tree.budget.remainingMs();
  let ticket: SandboxTicket;
  try {
    ticket = await reservePooledSandbox(tree.pool, {
      language: tree.language,
      depth: parent.depth + 1,
      signal,
      ...(Number.isFinite(remaining) ? { timeoutMs: Math.floor(remaining / 2) } : {}),
      ...(waitingForChild ? { parentMark: waitingForChild } : {}),
    });
  } catch (error) {
    slot.release();
    done();
    if (!SandboxPoolExhaustedError.isInstance(error)) throw error;
    return {
      granted: false,
      reason: error.reason === 'deadlock' ? 'deadlock' : 'deadline',
      message: `rlm_query at depth ${parent.depth + 1} was answered as a plain llm_query: ${error.message}`,
    };
  }
  childTickets.set(slot.holder, ticket);
  const release = slot.release;
  return {
    granted: true,
    holder: slot.holder,
    release: () => {
      void ticket.release();
      release();
      done();
    },
  };
}

/** A child RLM: the prompt is its context; it answers the task that prompt describes. */
async function runChild(
  tree: RunTree,
  child: { prompt: string; role: ModelRole; slot: SlotHolder; parentRunId: string; depth: number; signal: AbortSignal },
): Promise<ChildRunRecord> {
  // The child keeps its own ledger, so its record shows its own usage; the parent's ledger gets it
  // when the child ends, however it ends.
  const ledger = new UsageLedger(tree.prices ? { priceOverrides: tree.prices } : {});
  let outcome: RunOutcome;
  try {
    outcome = await runRlm(
      { ...tree, ledger, signal: AbortSignal.any([tree.signal, child.signal]) },
      {
        query: 'Your context is a task given to you by a parent RLM. Read it in full from the `context` variable, do what it asks, and answer with FINAL(...).',
        depth: child.depth,
        slot: child.slot,
        ...(childTickets.has(child.slot) ? { poolTicket: childTickets.get(child.slot) } : {}),
        parentRunId: child.parentRunId,
        root: child.role,
        context: child.prompt,
      },
    );
  } finally {
    tree.ledger.merge(ledger);
  }
  if (outcome.error && outcome.answer === null) throw outcome.error;
  return {
    runId: outcome.runId,
    depth: child.depth,
    rootModel: child.role.model,
    turns: outcome.turns,
    answer: outcome.answer,
    usage: ledger.snapshot(),
  };
}

/** A root model's answer and what the call cost in USD (null when the model's price is unknown). */
type PricedResponse = CompletionResponse & { costUsd: number | null };

async function callRoot(
  tree: RunTree,
  root: ModelRole,
  system: string | undefined,
  messages: readonly ChatMessage[],
  signal: AbortSignal,
): Promise<PricedResponse> {
  tree.budget.assertWithinLimits();
  let response: CompletionResponse;
  try {
    response = await root.backend.complete(
      {
        model: root.model,
        ...(system === undefined ? {} : { system }),
        messages,
        ...(root.maxOutputTokens === undefined ? {} : { maxOutputTokens: root.maxOutputTokens }),
      },
      { signal },
    );
  } catch (error) {
    if (signal.aborted) tree.ledger.recordCancelled(root.model);
    throw error;
  }
  tree.ledger.record(root.model, response.usage);
  return { ...response, costUsd: tree.budget.charge(root.model, response.usage) };
}

/** The tokens and cost of a root call, as events report them. */
function usageOf(response: PricedResponse): CallUsage {
  return { inputTokens: response.usage.inputTokens, outputTokens: response.usage.outputTokens, costUsd: response.costUsd };
}

/**
 * Summarises the conversation so far with the root model, keeps the first message and the
 * summary, and makes the full history readable in the REPL as `history`.
 */
async function compact(
  tree: RunTree,
  root: ModelRole,
  system: string,
  messages: ChatMessage[],
  fullHistory: ChatMessage[],
  sandbox: Repl,
  turn: number,
  emit: (event: RunEventInput) => void,
  signal: AbortSignal,
): Promise<void> {
  const summary = await callRoot(tree, root, system, [...messages, { role: 'user', content: buildCompactionRequest() }], signal);
  await sandbox.loadContext(
    fullHistory.map((m) => ({ role: m.role, content: m.content })),
    { variable: 'history', signal },
  );
  const before = messages.length;
  const first = messages[0];
  messages.length = 0;
  if (first) messages.push(first);
  messages.push({ role: 'assistant', content: summary.text }, { role: 'user', content: buildCompactedContinuation({ turn }) });
  emit({ type: 'compaction', turn, messagesBefore: before, summaryChars: summary.text.length, usage: usageOf(summary) });
}

function estimateConversationTokens(system: string, messages: readonly ChatMessage[]): number {
  let tokens = estimateTokens(system);
  for (const message of messages) tokens += estimateTokens(message.content) + 4;
  return tokens;
}

function splitTools(tools: Readonly<Record<string, RlmTool>>): { functionTools: Record<string, SandboxTool>; dataTools: Record<string, JsonValue> } {
  const functionTools: Record<string, SandboxTool> = {};
  const dataTools: Record<string, JsonValue> = {};
  for (const [name, tool] of Object.entries(tools)) {
    if (isFunctionTool(tool)) functionTools[name] = { ...(tool.description ? { description: tool.description } : {}), handler: tool.handler };
    else dataTools[name] = tool.value;
  }
  return { functionTools, dataTools };
}

function toRlmError(error: unknown): RlmError {
  if (RlmError.isInstance(error)) return error;
  return new RlmError(errorMessage(error), { cause: error });
}

export type { ExecuteResult };
