/**
 * The public entry point: `new RLM(options).completion({ context, query })`.
 */
import { randomBytes } from 'node:crypto';
import type { Language } from '@rlm/shared';
import { AbortedError, InvalidOptionError, type RlmError } from '../errors.js';
import type { ChatMessage } from '../models/model-backend.js';
import type { ContextValue } from '../sandbox/context-files.js';
import type { Repl, ReplFactory } from '../sandbox/repl.js';
import { Sandbox } from '../sandbox/sandbox.js';
import { openPooledRepl } from '../sandbox/pool/pooled-repl.js';
import { costOf, priceOf } from '../usage/pricing.js';
import { UsageLedger, type UsageByModel } from '../usage/usage-ledger.js';
import { TrajectoryWriter } from '../trajectory/trajectory-writer.js';
import { describeContext, formatContextDescription } from './context-description.js';
import { EventStream } from './event-stream.js';
import { DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS } from './prompts.js';
import { DEFAULT_LIMITS, RunBudget, type LimitName, type RlmLimits } from './run-budget.js';
import type { RunEvent } from './run-events.js';
import type { TurnRecord } from './run-records.js';
import { runRlm, type RunOutcome, type RunTree } from './rlm-run.js';
import { SandboxSlots } from './sandbox-slots.js';
import { isFunctionTool, type RlmOptions } from './rlm-options.js';

/** The input of one {@link RLM.completion}: the context, the question, and an optional signal. */
export interface CompletionInput {
  /** What the REPL's `context` holds: a string, a list of strings, a map of path → content, or JSON. */
  context: ContextValue;
  /** The question to answer over the context. The root model sees it; the context it never sees whole. */
  query: string;
  /** Cancels the run: model calls and cells stop, its sandboxes are removed, and the promise rejects with {@link AbortedError}. */
  signal?: AbortSignal;
}

/** How a run ended: the answer (or the best partial one), success, the error or limit that stopped it, usage and cost across the whole tree, and the trajectory. A run stopped by a limit or a failing model still resolves with a result (see `success` and `error`). */
export interface RlmResult {
  /** The answer; with `success: false` the best partial answer, or null. */
  answer: string | null;
  /** True when the run ended with a final answer (`FINAL`/`FINAL_VAR`) within its limits. */
  success: boolean;
  /** Why the run failed: a {@link RunLimitError} for a limit (carrying the partial answer), else the failure. */
  error: RlmError | null;
  /** The limit that ended the run, if one did (`iterations` still answers, through a last call). */
  limitReached: LimitName | null;
  /** Turns the root model took. */
  iterations: number;
  /** Per model, across the whole recursion tree. */
  usage: UsageByModel;
  /** Total cost in USD; null when any model's price is unknown. */
  costUsd: number | null;
  /** Wall-clock time of the run, in milliseconds. */
  durationMs: number;
  /** The root run's turns, child runs nested under the sub-calls that started them. */
  trajectory: TurnRecord[];
  /** The JSONL file written, when `logDir` is set. */
  trajectoryFile: string | null;
}

/** A run in progress: its events as an async iterator, and its result. */
export interface RlmRun {
  /**
   * The run's events. Holds at most 10,000 unread events: a reader further behind loses
   * `subcall_start`/`subcall_end` events first (other events only when nothing else is held), then
   * gets one `events_dropped` event with their `count` before its next event; `onEvent` receives
   * every event.
   */
  events: AsyncIterable<RunEvent>;
  /**
   * How the run ended. Resolves when a limit or a failing model stops the run too (see
   * `success` and `error`); rejects only with {@link AbortedError} when the input's `signal` fires.
   */
  result: Promise<RlmResult>;
}

/**
 * Where an RLM's REPLs come from when not from sandboxes. Only the engine's own tests set it
 * ({@link useReplFactory}); the package exports neither, so every REPL a user's run gets is a sandbox.
 */
const replFactories = new WeakMap<RLM, ReplFactory>();

/**
 * @internal For the engine's tests: runs `rlm`'s cells in REPLs made by `factory` instead of
 * sandbox containers. Not exported from the package: an in-process REPL is no security boundary.
 */
export function useReplFactory(rlm: RLM, factory: ReplFactory): RLM {
  replFactories.set(rlm, factory);
  return rlm;
}

/** A Recursive Language Model: a root model that answers a query over a context it explores from code in a sandboxed REPL (Docker), with sub-model calls (`llm_query`) and child RLMs (`rlm_query`). One instance may run many completions, each in its own sandbox; the options are checked once, in the constructor. */
export class RLM {
  readonly #options: RlmOptions;
  readonly #limits: RlmLimits;

  /** @throws {InvalidOptionError} an option is out of range; the message names it. */
  constructor(options: RlmOptions) {
    this.#limits = validateLimits({ ...DEFAULT_LIMITS, ...options.limits });
    if (options.compaction && options.compaction.thresholdRatio !== undefined) {
      const ratio = options.compaction.thresholdRatio;
      if (!(ratio > 0 && ratio < 1)) throw new InvalidOptionError('compaction.thresholdRatio', `must be between 0 and 1, got ${ratio}`);
    }
    if (options.outputLimitChars !== undefined && !(Number.isInteger(options.outputLimitChars) && options.outputLimitChars > 0)) {
      throw new InvalidOptionError('outputLimitChars', `must be a positive integer, got ${options.outputLimitChars}`);
    }
    assertBudgetEnforceable(options, this.#limits);
    if (options.pool && options.sandbox) {
      throw new InvalidOptionError(
        'sandbox',
        "the pool's own options configure its sandboxes: give them to createSandboxPool, and leave sandbox unset when pool is set",
      );
    }
    this.#options = options;
  }

  /** Answers `query` over `context`. Resolves even when a limit stops the run (see `success` and `error`). */
  completion(input: CompletionInput): Promise<RlmResult> {
    return this.run(input).result;
  }

  /** Like {@link completion}, with the run's events as an async iterator. */
  run(input: CompletionInput): RlmRun {
    const events = new EventStream<RunEvent>({ name: 'rlm run events' });
    const iterator = events[Symbol.asyncIterator]();
    const result = this.#execute(input, events, {});
    return { events: { [Symbol.asyncIterator]: () => iterator }, result };
  }

  /** A conversation over one sandbox: later contexts arrive as `context_1`…, earlier conversations as `history_0`…. */
  session(): RlmSession {
    return new RlmSession(this, (input, events, session) => this.#execute(input, events, session));
  }

  async #execute(input: CompletionInput, events: EventStream<RunEvent>, session: SessionState): Promise<RlmResult> {
    const started = performance.now();
    const options = this.#options;
    const signal = input.signal ?? new AbortController().signal;
    const unsubscribe = options.onEvent ? events.on(options.onEvent) : undefined;
    const ledger = new UsageLedger(options.prices ? { priceOverrides: options.prices } : {});
    const budget = new RunBudget(this.#limits, (model, usage) => costOf(model, usage, options.prices));
    const sub = options.sub ?? options.root;
    // Known before the run starts, so a trajectory write that fails can be reported as the root's event.
    const runId = randomBytes(6).toString('hex');
    const writer = options.logDir
      ? new TrajectoryWriter({
          logDir: options.logDir,
          onWriteError: (message) => events.emit({ type: 'warning', code: 'trajectory_write', message, runId, depth: 0, time: Date.now() }),
          metadata: {
            rootModel: options.root.model,
            maxDepth: this.#limits.maxDepth,
            maxIterations: this.#limits.maxIterations,
            backend: options.root.backend.name,
            backendKwargs: { model: options.root.model, sub_model: sub.model, sub_backend: sub.backend.name },
            environmentKwargs: { language: options.language ?? 'javascript', ...(options.sandbox?.limits ?? {}) },
            otherBackends: [...new Set([sub.backend.name, ...Object.values(options.models ?? {}).map((m) => m.backend.name)])],
          },
        })
      : undefined;
    writer?.writeMetadata();
    const sandboxes = new SandboxSlots(this.#limits.maxSandboxes, { remainingMs: () => budget.remainingMs() });
    // The engine's own tests run on in-process REPLs, never on a pool.
    const pool = replFactories.has(this) ? undefined : options.pool;
    const rootSlot = sandboxes.takeRoot();
    const tree: RunTree = {
      roles: { root: options.root, sub, named: options.models ?? {} },
      language: options.language ?? ('javascript' satisfies Language),
      budget,
      ledger,
      ...(options.prices ? { prices: options.prices } : {}),
      events,
      tools: options.tools ?? {},
      createRepl:
        replFactories.get(this) ?? (pool ? (request) => openPooledRepl(pool, request) : (request) => Sandbox.create({ ...options.sandbox, ...request })),
      ...(pool ? { pool } : {}),
      sandboxes,
      outputLimitChars: options.outputLimitChars ?? DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS,
      subcalls: options.subcalls !== false,
      compactionThreshold: options.compaction === false ? undefined : (options.compaction?.thresholdRatio ?? 0.8),
      signal,
      ...(writer ? { onRootTurn: (turn: TurnRecord) => writer.writeTurn(turn) } : {}),
    };
    try {
      const prepared = session.prepare ? await session.prepare(input, tree, signal) : undefined;
      const outcome: RunOutcome = await runRlm(tree, {
        query: input.query,
        depth: 0,
        runId,
        slot: rootSlot.holder,
        root: options.root,
        ...(prepared ?? { context: input.context }),
      });
      session.finished?.(outcome.messages);
      return {
        answer: outcome.answer,
        success: outcome.answer !== null && outcome.error === null,
        error: outcome.error,
        limitReached: outcome.limitReached,
        iterations: outcome.iterations,
        usage: ledger.snapshot(),
        costUsd: ledger.totalCostUsd(),
        durationMs: performance.now() - started,
        trajectory: outcome.turns,
        trajectoryFile: writer?.path ?? null,
      };
    } finally {
      rootSlot.release();
      budget.dispose();
      await writer?.close();
      unsubscribe?.();
      events.close();
    }
  }
}

/** What a session adds around a completion: its sandbox and the variables already in it. */
interface SessionState {
  prepare?: (
    input: CompletionInput,
    tree: RunTree,
    signal: AbortSignal,
  ) => Promise<Pick<Parameters<typeof runRlm>[1], 'sandbox' | 'contextVariables' | 'contextDescription' | 'historyCount'>>;
  finished?: (messages: ChatMessage[]) => void;
}

/**
 * Several completions over one sandbox. The first context is `context`; later ones arrive as
 * `context_1`, `context_2`…; each finished conversation is readable as `history_0`, `history_1`….
 * Completions run one at a time. Close with `close()` or `await using`.
 */
export class RlmSession implements AsyncDisposable {
  #sandbox: Repl | undefined;
  #contexts = 0;
  #histories: ChatMessage[][] = [];
  /** Every context and history loaded so far, to load again into a replacement sandbox. */
  readonly #loads: Array<{ variable: string; value: ContextValue }> = [];
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Fires on close: the running completion stops (its model calls aborted) and queued ones never start. */
  readonly #closing = new AbortController();
  readonly #rlm: RLM;
  readonly #execute: (input: CompletionInput, events: EventStream<RunEvent>, session: SessionState) => Promise<RlmResult>;

  /** @internal use {@link RLM.session}. */
  constructor(rlm: RLM, execute: (input: CompletionInput, events: EventStream<RunEvent>, session: SessionState) => Promise<RlmResult>) {
    this.#rlm = rlm;
    this.#execute = execute;
  }

  /** The next completion of the conversation; waits for earlier ones. */
  completion(input: CompletionInput): Promise<RlmResult> {
    const run = async () => {
      if (this.#closed) throw new InvalidOptionError('session', 'the session is closed; start a new one with rlm.session()');
      const events = new EventStream<RunEvent>({ name: 'rlm session events' });
      const signal = input.signal ? AbortSignal.any([input.signal, this.#closing.signal]) : this.#closing.signal;
      return this.#execute({ ...input, signal }, events, {
        prepare: (next, tree, signal) => this.#prepare(next, tree, signal),
        finished: (messages) => {
          this.#histories.push(messages);
        },
      });
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  async #prepare(input: CompletionInput, tree: RunTree, signal: AbortSignal) {
    const variable = this.#contexts === 0 ? 'context' : `context_${this.#contexts}`;
    const index = this.#histories.length - 1;
    const loads: Array<{ variable: string; value: ContextValue }> = [{ variable, value: input.context }];
    if (index >= 0) loads.push({ variable: `history_${index}`, value: (this.#histories[index] ?? []).map((m) => ({ role: m.role, content: m.content })) });
    const sandbox = await this.#sandboxFor(tree, signal);
    for (const load of loads) {
      await sandbox.loadContext(load.value, { variable: load.variable, signal });
      this.#loads.push(load);
    }
    this.#contexts += 1;
    const variables = Array.from({ length: this.#contexts }, (_, i) => (i === 0 ? 'context' : `context_${i}`));
    return {
      sandbox,
      contextVariables: variables,
      contextDescription: `${formatContextDescription(describeContext(input.context))} It is in \`${variable}\`${
        variables.length > 1
          ? `; earlier contexts are in ${variables
              .slice(0, -1)
              .map((v) => `\`${v}\``)
              .join(', ')}`
          : ''
      }.`,
      historyCount: this.#histories.length,
    };
  }

  /**
   * The session's sandbox, created on first use — and again, with every context and history loaded
   * anew, if a cancelled or limit-stopped completion closed the previous one.
   */
  async #sandboxFor(tree: RunTree, signal: AbortSignal): Promise<Repl> {
    if (this.#sandbox && !this.#sandbox.isClosed) return this.#sandbox;
    const tools = Object.fromEntries(
      Object.entries(tree.tools).flatMap(([name, tool]) =>
        isFunctionTool(tool) ? [[name, { ...(tool.description ? { description: tool.description } : {}), handler: tool.handler }]] : [],
      ),
    );
    const sandbox = await tree.createRepl({ language: tree.language, cellTimeoutMs: tree.budget.limits.cellTimeoutMs, tools, signal });
    this.#sandbox = sandbox;
    for (const [name, tool] of Object.entries(tree.tools)) if (!isFunctionTool(tool)) await sandbox.loadContext(tool.value, { variable: name, signal });
    for (const load of this.#loads) await sandbox.loadContext(load.value, { variable: load.variable, signal });
    return sandbox;
  }

  /**
   * Cancels the running completion (it rejects with `AbortedError`; every model call its cells
   * started is aborted) and any queued one, then removes the session's sandbox. Safe to call twice.
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort(new AbortedError('the session was closed'));
    await this.#queue;
    await this.#sandbox?.close();
    this.#sandbox = undefined;
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The RLM this session belongs to. */
  get rlm(): RLM {
    return this.#rlm;
  }
}

function validateLimits(limits: RlmLimits): RlmLimits {
  const positiveIntegers: Array<keyof RlmLimits> = [
    'maxIterations',
    'maxConsecutiveFailures',
    'cellTimeoutMs',
    'subcallConcurrency',
    'maxSandboxes',
    'maxSubcallPromptBytesPerCell',
    'maxSubcallPromptBytesPerRun',
  ];
  for (const key of positiveIntegers) {
    const value = limits[key];
    if (!(Number.isInteger(value) && (value as number) > 0)) throw new InvalidOptionError(`limits.${key}`, `must be a positive integer, got ${String(value)}`);
  }
  if (!(Number.isInteger(limits.maxDepth) && limits.maxDepth >= 0))
    throw new InvalidOptionError('limits.maxDepth', `must be 0 or more, got ${limits.maxDepth}`);
  for (const key of ['timeoutMs', 'maxCostUsd', 'maxTokens'] as const) {
    const value = limits[key];
    if (value !== undefined && !(value > 0)) throw new InvalidOptionError(`limits.${key}`, `must be positive when set, got ${value}`);
  }
  return limits;
}

export { AbortedError };

/**
 * A budget in dollars needs a price for every model the run may call: refused before the first
 * call rather than after the first paid one. A backend that reports each call's cost itself
 * (OpenRouter, the Claude CLI) needs none.
 */
function assertBudgetEnforceable(options: RlmOptions, limits: RlmLimits): void {
  if (limits.maxCostUsd === undefined) return;
  const roles = [options.root, ...(options.sub ? [options.sub] : []), ...Object.values(options.models ?? {})];
  const unpriced = [...new Set(roles.filter((role) => !role.backend.reportsCost && !priceOf(role.model, options.prices)).map((role) => role.model))];
  if (unpriced.length === 0) return;
  const listed = unpriced.map((model) => JSON.stringify(model)).join(', ');
  throw new InvalidOptionError(
    'limits.maxCostUsd',
    `the $${limits.maxCostUsd} budget cannot be enforced: ${listed} ${unpriced.length === 1 ? 'has' : 'have'} no known price; ` +
      `give ${unpriced.length === 1 ? 'its price' : 'their prices'} with the prices option (prices in the config file, e.g. ` +
      `prices: { ${JSON.stringify(unpriced[0])}: { input: 1, output: 4 } } in USD per million tokens), or run without a budget in dollars`,
  );
}
