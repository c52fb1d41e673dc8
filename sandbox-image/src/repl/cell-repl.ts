/**
 * A REPL of either language, as the main thread sees it: runs cells in a worker thread so the
 * main thread stays free to talk to the host, survives cells that run away or exhaust memory by
 * replacing the worker, and reloads the contexts and defines the tools again in every new worker.
 * {@link JavaScriptRepl} and {@link PythonRepl} differ only in the worker they start and in how a
 * cell is stopped at its deadline.
 */
import {
  DefineToolsParams,
  ExecuteParams,
  LoadContextParams,
  summarizeZodError,
  type CellError,
  type DefineToolsResult,
  type ExecuteResult,
  type Language,
  type LoadContextResult,
  type SubcallParams,
  type SubcallResult,
  type ToolCallParams,
  type ToolCallResult,
  type ToolDefinition,
  type VariableInfo,
} from '@rlm/shared';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ContextLoadError, ContextOutOfMemoryError, ReplClosedError, ReplError, ToolDefinitionError } from './errors.js';
import { NAME_LIMIT_CHARS, formatSeconds } from './render.js';
import { internalErrorReport, limitMessage, limitReport } from './report-limits.js';
import type { CellReport, PythonWorkerSettings } from './worker-messages.js';
import { WorkerSession, abortPromise, youngGenerationMb, type WorkerExit } from './worker-session.js';

export { ContextLoadError, ContextOutOfMemoryError, ReplClosedError, ReplError, ReplStartError, ToolDefinitionError } from './errors.js';

export interface CellReplOptions {
  /** Directory holding context files (the read-only /context mount in the container). */
  contextDir: string;
  /** Forwards a cell's llm_query/rlm_query family call to the host; resolves with one outcome per prompt. */
  onSubcall: (params: SubcallParams, options: { signal: AbortSignal }) => Promise<SubcallResult>;
  /** Runs a cell's call of a custom tool on the host; without one, every tool call fails with a ToolError. */
  onToolCall?: (params: ToolCallParams, options: { signal: AbortSignal }) => Promise<ToolCallResult>;
  /**
   * Memory cap of the cell worker in MiB. It caps V8's old generation (worker `resourceLimits`; the
   * young generation gets an eighth of it, 8 to 32 MiB, on top), and the worker's heap in use plus
   * its external memory (ArrayBuffers, Buffers; for Python, also the interpreter's memory, itself
   * capped at this) are checked against it every 25 ms. Past either, the cell fails with
   * OutOfMemoryError and state is lost. Absent: V8's defaults, no check.
   *
   * A single allocation far past the cap (`new Array(2 ** 28)`, an array or Map growing by hundreds
   * of MiB at once) makes V8 abort the whole process ("FATAL ERROR: … JavaScript heap out of
   * memory"), not just the worker: run the REPL in a process of its own for that to cost only the state.
   */
  heapLimitMb?: number;
  /** Location of the bundled worker; default the language's worker next to this module in dist/. */
  workerUrl?: URL;
  /**
   * How long past a cell's timeout, in milliseconds, the main thread waits for a worker that has not
   * answered before it replaces it (the cell then times out with every variable lost). Default 700
   * ({@link DEFAULT_UNRESPONSIVE_GRACE_MS}): the result of any cell arrives within its timeout plus
   * this grace. Longer keeps state on a machine too loaded for the interpreter to act on its
   * interrupt in time, at the price of a later answer from a cell that ignores it. An integer from 0
   * to 60 000.
   * @throws RangeError (from `start`) when out of range.
   */
  unresponsiveGraceMs?: number;
}

/** What a language's REPL brings to the shared machinery. */
export interface CellLanguage {
  readonly language: Language;
  readonly workerUrl: URL;
  /** Settings of a Python worker. */
  readonly python?: PythonWorkerSettings;
  /**
   * Whether the main thread stops a cell at its deadline by interrupting the worker's interpreter
   * (Python). A JavaScript worker interrupts its own cells.
   */
  readonly interruptAtDeadline: boolean;
}

/**
 * How long past a cell's timeout the main thread waits for the worker before it gives up on it,
 * unless `unresponsiveGraceMs` says otherwise.
 * A JavaScript worker interrupts synchronous code and unsettled awaits itself at the timeout, a
 * Python interpreter raises KeyboardInterrupt when the main thread asks; only code that cannot be
 * interrupted (a synchronous loop after an `await`, a cell that catches KeyboardInterrupt and goes
 * on, a long call into C) needs this. 700 ms: a loaded machine can keep a 1-CPU sandbox's
 * interpreter from acting on its interrupt for a few hundred milliseconds, and giving up too early
 * loses state that was about to be kept; the answer still comes within the timeout plus one second.
 */
export const DEFAULT_UNRESPONSIVE_GRACE_MS = 700;
const MAX_UNRESPONSIVE_GRACE_MS = 60_000;

interface LoadedContext {
  readonly params: LoadContextParams;
  valueType: string;
}

const NO_OUTPUT = { text: '', truncatedChars: 0 } as const;

/** V8's heap of a Python worker beyond the cap of the interpreter's own memory: Pyodide's JavaScript side, in MiB. */
const PYTHON_JS_HEAP_ALLOWANCE_MB = 128;

/**
 * The most a worker may hold (V8 heap in use plus external memory) before the session ends it, in
 * MiB: what V8 can reach anyway (the old generation, and 1.5 times the young generation's cap), so
 * only buffers outside V8's heap make the difference; a Python worker's interpreter memory is
 * capped at `heapLimitMb` on its own, and its JavaScript side gets an allowance beside it.
 */
function workerMemoryLimitMb(heapLimitMb: number, language: Language): number {
  const v8Heap = heapLimitMb + Math.ceil(1.5 * youngGenerationMb(heapLimitMb));
  return language === 'python' ? v8Heap + PYTHON_JS_HEAP_ALLOWANCE_MB : v8Heap;
}

const MIB = 1024 * 1024;

/**
 * The least memory a worker needs at the peak of loading a context file of `bytes`, in MiB: twice
 * its size. The file is read whole and decoded into one string (a Python worker: bytes, then a
 * `str`), so for a moment both are held, and text of ASCII or Latin-1 characters takes at least a
 * byte per character. More is needed when the text has a character past U+00FF (the string then
 * takes two bytes per character) or for `json` (the parsed value); such a load fails on the
 * worker's own memory limit, and says so.
 */
export function contextLoadPeakMb(bytes: number): number {
  return Math.ceil((2 * bytes) / MIB);
}

export class CellRepl {
  /** The language of the cells this REPL runs. */
  readonly language: Language;
  readonly #options: CellReplOptions;
  readonly #runtime: CellLanguage;
  readonly #unresponsiveGraceMs: number;
  /** In load order; a reload of a variable replaces its entry. */
  readonly #contexts = new Map<string, LoadedContext>();
  /** The custom tools every worker gets, as last defined. */
  #tools: readonly ToolDefinition[] = [];
  #session: Promise<WorkerSession> | undefined;
  /** The session `#session` resolved to, once it did. */
  #live: WorkerSession | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #cellNumber = 0;
  /** The worker died between cells (a callback called `process.exit()`…): the next result says so. */
  #stateLostSinceLastCell = false;
  #closed = false;

  protected constructor(options: CellReplOptions, runtime: CellLanguage) {
    const grace = options.unresponsiveGraceMs ?? DEFAULT_UNRESPONSIVE_GRACE_MS;
    if (!Number.isInteger(grace) || grace < 0 || grace > MAX_UNRESPONSIVE_GRACE_MS) {
      throw new RangeError(`unresponsiveGraceMs must be an integer from 0 to ${MAX_UNRESPONSIVE_GRACE_MS} (milliseconds), got ${String(grace)}`);
    }
    this.#unresponsiveGraceMs = grace;
    this.#options = options;
    this.#runtime = runtime;
    this.language = runtime.language;
  }

  /**
   * Whether a cell worker is up now. False before the first one is ready, from the moment the REPL
   * notices its worker ended (a callback called `process.exit()`…) until the next call has started
   * another, and after `close()`.
   */
  get workerRunning(): boolean {
    return this.#live !== undefined && !this.#live.ended;
  }

  /** Starts the cell worker and resolves once it is ready; subclasses' `start` calls it. */
  protected async ready(signal: AbortSignal | undefined): Promise<void> {
    await this.#currentSession(signal);
  }

  /**
   * Runs one cell. Calls are serialised: a second call waits for the first to finish.
   *
   * Never rejects for the cell's own failure (an exception, a syntax error, a timeout, memory
   * exhausted, the worker ending): the result's `status` and `error` say it. The result arrives
   * within `timeoutMs` + `unresponsiveGraceMs` (700 ms by default), give or take the machine's
   * scheduling; when the REPL had to be restarted, `stateLost` is true.
   *
   * @throws ZodError for invalid params; ReplClosedError after `close()`; ReplStartError when no worker
   *   can be started; the signal's reason when aborted (a running cell is then stopped and the state lost).
   */
  async execute(params: ExecuteParams, opts: { signal?: AbortSignal } = {}): Promise<ExecuteResult> {
    const checked = ExecuteParams.parse(params);
    if (checked.language !== this.language) throw new ReplError(`this REPL runs ${this.language} cells, not ${checked.language}`);
    return this.#serialize(opts.signal, () => this.#runCell(checked, opts.signal));
  }

  /**
   * Binds `params.variable` to a file of the context directory (read inside the worker: nothing
   * large crosses threads). The binding is reserved and survives every later restart of the worker.
   * @throws ContextLoadError when the file is missing or unreadable, or is not valid JSON for `format: 'json'`;
   *   ContextOutOfMemoryError (a ContextLoadError) when it cannot fit in the worker's memory limit (see
   *   {@link contextLoadPeakMb}; refused before it is read) or the worker ended for memory while loading it;
   *   ZodError for invalid params (a file name with a directory in it, say); ReplClosedError after `close()`.
   */
  async loadContext(params: LoadContextParams, opts: { signal?: AbortSignal } = {}): Promise<LoadContextResult> {
    const checked = LoadContextParams.parse(params);
    return this.#serialize(opts.signal, async () => {
      const started = performance.now();
      this.#assertContextFits(checked);
      const session = await this.#currentSession(opts.signal);
      const loaded = await this.#loadInto(session, checked);
      this.#contexts.delete(checked.variable);
      this.#contexts.set(checked.variable, { params: checked, valueType: loaded.valueType });
      return { variable: checked.variable, bytes: loaded.bytes, durationMs: performance.now() - started };
    });
  }

  /**
   * Makes `params.tools` the whole set of custom tools: each becomes a global synchronous function
   * of the cells (answered through `onToolCall`), restored after a cell that overwrites it, never
   * listed as a variable, and defined again in every later worker. A tool left out is removed.
   * @throws ToolDefinitionError naming each refused tool (a reserved name, a keyword, a global of
   *   the runtime, a name bound to a context, a duplicate…); nothing changes. ReplClosedError after `close()`.
   */
  async defineTools(params: DefineToolsParams, opts: { signal?: AbortSignal } = {}): Promise<DefineToolsResult> {
    const parsed = DefineToolsParams.safeParse(params);
    if (!parsed.success) throw new ToolDefinitionError(`invalid tools: ${summarizeZodError(parsed.error)}`);
    const checked = parsed.data;
    return this.#serialize(opts.signal, async () => {
      const session = await this.#currentSession(opts.signal);
      const defined = await this.#defineIn(session, checked.tools);
      this.#tools = checked.tools;
      return { defined };
    });
  }

  /** Stops the worker. Idempotent; later calls reject with ReplClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const session = this.#session;
    this.#session = undefined;
    this.#live = undefined;
    if (!session) return;
    try {
      const live = await session;
      live.terminate();
      await live.exited;
    } catch {
      // A worker that never started has nothing to stop.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #runCell(params: ExecuteParams, signal: AbortSignal | undefined): Promise<ExecuteResult> {
    const session = await this.#currentSession(signal);
    const cellNumber = ++this.#cellNumber;
    const started = performance.now();
    const stateLostBefore = this.#stateLostSinceLastCell;
    this.#stateLostSinceLastCell = false;

    // At the deadline: interrupt the interpreter (Python), then give the worker its grace, counted
    // from that moment, not from the cell's start, so a main thread that was itself held up (a
    // loaded machine, a starved container) still gives the worker the whole grace to answer. Past
    // it, one more turn of the event loop lets a report that arrived meanwhile win the race.
    let deadline: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    const unresponsive = new Promise<{ kind: 'unresponsive' }>((resolve) => {
      deadline = setTimeout(() => {
        if (this.#runtime.interruptAtDeadline) session.interrupt(cellNumber);
        grace = setTimeout(() => setImmediate(() => resolve({ kind: 'unresponsive' })), this.#unresponsiveGraceMs);
      }, params.timeoutMs);
    });
    const aborted = abortPromise(signal);
    let outcome: { kind: 'report'; report: CellReport } | { kind: 'exit'; exit: WorkerExit } | { kind: 'unresponsive' };
    try {
      outcome = await Promise.race([
        session.request({ type: 'execute', cellNumber, params }).then((reply) => {
          // The worker is the cell's to command: a reply of another kind is the cell's failure, not the REPL's.
          const report = reply.type === 'executed' ? reply.report : internalErrorReport('the REPL worker answered the cell with a reply of another kind');
          return { kind: 'report' as const, report };
        }),
        session.exited.then((exit) => ({ kind: 'exit' as const, exit })),
        unresponsive,
        aborted.promise,
      ]);
    } catch (error) {
      // Aborted by the caller: the cell may still be running, and only a new worker stops it for sure.
      this.#replace(session);
      throw error;
    } finally {
      clearTimeout(deadline);
      clearTimeout(grace);
      aborted.dispose();
      session.abortHostCalls();
    }

    const durationMs = performance.now() - started;
    if (this.#closed) throw new ReplClosedError();
    if (outcome.kind === 'report') {
      const { restartWorker, ...report } = limitReport(outcome.report, params.outputLimitChars);
      if (!restartWorker) return { ...report, stateLost: stateLostBefore, durationMs };
      this.#replace(session);
      this.#stateLostSinceLastCell = false;
      return { ...report, variables: this.#contextVariables(), stateLost: true, durationMs };
    }

    this.#replace(session);
    this.#stateLostSinceLastCell = false;
    const error: CellError =
      outcome.kind === 'unresponsive'
        ? {
            type: 'TimeoutError',
            message:
              `The cell ran past its time limit of ${formatSeconds(params.timeoutMs)} and did not respond, ` +
              'so the REPL was restarted: every variable is lost (contexts were loaded again).',
            stack: [],
          }
        : exitError(outcome.exit, this.#options.heapLimitMb);
    return {
      status: outcome.kind === 'unresponsive' ? 'timeout' : 'error',
      stdout: NO_OUTPUT,
      stderr: NO_OUTPUT,
      error,
      final: null,
      stateLost: true,
      variables: this.#contextVariables(),
      durationMs,
    };
  }

  async #loadInto(session: WorkerSession, params: LoadContextParams): Promise<{ bytes: number; valueType: string }> {
    const outcome = await Promise.race([session.request({ type: 'load-context', params }), session.exited.then((exit) => ({ type: 'exited' as const, exit }))]);
    switch (outcome.type) {
      case 'context-loaded':
        return {
          bytes: Number.isSafeInteger(outcome.bytes) && outcome.bytes >= 0 ? outcome.bytes : 0,
          valueType: typeof outcome.valueType === 'string' ? outcome.valueType.slice(0, NAME_LIMIT_CHARS) : 'unknown',
        };
      case 'context-failed':
        throw new (outcome.outOfMemory === true ? ContextOutOfMemoryError : ContextLoadError)(params.variable, params.file, limitMessage(outcome.message));
      case 'exited': {
        this.#replace(session);
        const error = exitError(outcome.exit, this.#options.heapLimitMb);
        const LoadError = error.type === 'OutOfMemoryError' ? ContextOutOfMemoryError : ContextLoadError;
        throw new LoadError(params.variable, params.file, `the REPL worker ended while loading it (${error.message})`);
      }
      default:
        throw new ReplError(`the REPL worker answered a load-context request with ${limitMessage(outcome.type).slice(0, 64)}`);
    }
  }

  /**
   * Refuses, before the worker reads it, a context whose load cannot fit in the worker's memory
   * limit, so that it fails at once with a message that says so instead of ending the worker (or,
   * past the container's limit, the whole process) halfway. A file that cannot be measured here is
   * left to the worker, which says what is wrong with it.
   */
  #assertContextFits(params: LoadContextParams): void {
    const heapLimitMb = this.#options.heapLimitMb;
    if (heapLimitMb === undefined) return;
    // A Python worker's interpreter memory, where the file's bytes and its text both live, is capped at the heap limit.
    const limitMb = this.language === 'python' ? heapLimitMb : workerMemoryLimitMb(heapLimitMb, this.language);
    let bytes: number;
    try {
      bytes = statSync(join(this.#options.contextDir, params.file)).size;
    } catch {
      return;
    }
    const neededMb = contextLoadPeakMb(bytes);
    if (neededMb <= limitMb) return;
    throw new ContextOutOfMemoryError(
      params.variable,
      params.file,
      `loading it takes at least ${neededMb} MiB (twice the file's ${Math.round(bytes / MIB)} MiB), more than the ${limitMb} MiB the REPL may hold`,
    );
  }

  async #defineIn(session: WorkerSession, tools: readonly ToolDefinition[]): Promise<string[]> {
    const outcome = await Promise.race([session.request({ type: 'define-tools', tools }), session.exited.then((exit) => ({ type: 'exited' as const, exit }))]);
    switch (outcome.type) {
      case 'tools-defined':
        // The worker names what it defined; only names that were asked for are believed.
        return tools.map((tool) => tool.name).filter((name) => Array.isArray(outcome.defined) && outcome.defined.includes(name));
      case 'tools-failed':
        throw new ToolDefinitionError(limitMessage(outcome.message));
      case 'exited':
        this.#replace(session);
        throw new ReplError(`the REPL worker ended while defining tools (${exitError(outcome.exit, this.#options.heapLimitMb).message})`);
      default:
        throw new ReplError(`the REPL worker answered a define-tools request with ${limitMessage(outcome.type).slice(0, 64)}`);
    }
  }

  /** The running session, starting one (and loading every context and tool into it) when there is none. */
  #currentSession(signal?: AbortSignal): Promise<WorkerSession> {
    if (this.#closed) return Promise.reject(new ReplClosedError());
    this.#session ??= this.#startSession(signal);
    const session = this.#session;
    return session.catch((error: unknown) => {
      // Let the next call try again with a fresh worker.
      if (this.#session === session) this.#session = undefined;
      throw error;
    });
  }

  async #startSession(signal?: AbortSignal): Promise<WorkerSession> {
    const session = await WorkerSession.start(
      {
        workerUrl: this.#options.workerUrl ?? this.#runtime.workerUrl,
        contextDir: this.#options.contextDir,
        heapLimitMb: this.#options.heapLimitMb,
        ...(this.#options.heapLimitMb === undefined ? {} : { memoryLimitMb: workerMemoryLimitMb(this.#options.heapLimitMb, this.language) }),
        python: this.#runtime.python,
        onSubcall: this.#options.onSubcall,
        onToolCall: this.#options.onToolCall ?? noToolCalls,
      },
      signal,
    );
    try {
      for (const context of this.#contexts.values()) {
        context.valueType = (await this.#loadInto(session, context.params)).valueType;
      }
      if (this.#tools.length > 0) await this.#defineIn(session, this.#tools);
    } catch (error) {
      session.terminate();
      throw error;
    }
    if (this.#closed) {
      session.terminate();
      throw new ReplClosedError();
    }
    this.#live = session;
    void session.exited.then(() => {
      // Died on its own (between cells, or during one: then `#runCell` reports it).
      if (this.#live !== session) return;
      this.#live = undefined;
      this.#session = undefined;
      this.#stateLostSinceLastCell = true;
    });
    return session;
  }

  /** Discards a session whose worker died or must die, and starts its replacement in the background. */
  #replace(session: WorkerSession): void {
    session.terminate();
    if (this.#live === session) {
      this.#live = undefined;
      this.#session = undefined;
    }
    if (this.#closed || this.#session) return;
    const next = this.#startSession();
    next.catch(() => {
      // Reported to whoever asks for the session next.
    });
    this.#session = next;
  }

  #contextVariables(): VariableInfo[] {
    return [...this.#contexts.values()]
      .map(({ params, valueType }) => ({ name: params.variable, type: valueType }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Runs `task` after every earlier call has finished. A signal that aborts while waiting rejects at once. */
  #serialize<T>(signal: AbortSignal | undefined, task: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new ReplClosedError());
    const aborted = abortPromise(signal);
    const run = this.#queue.then(() => {
      aborted.dispose();
      signal?.throwIfAborted();
      if (this.#closed) throw new ReplClosedError();
      return task();
    });
    this.#queue = run.catch(() => {});
    return Promise.race([run, aborted.promise]).finally(() => aborted.dispose());
  }
}

const noToolCalls = async (params: ToolCallParams): Promise<ToolCallResult> => ({
  ok: false,
  error: `${params.name} is not available: this REPL has no tool-call handler`,
});

function exitError(exit: WorkerExit, heapLimitMb: number | undefined): CellError {
  if (exit.memory) {
    return {
      type: 'OutOfMemoryError',
      message:
        `The cell ran out of memory: the REPL held ${exit.memory.usedMb} MiB of heap and buffers (ArrayBuffer, Buffer, typed arrays), ` +
        `past its limit of ${exit.memory.limitMb} MiB, so the REPL was restarted: every variable is lost (contexts were loaded again). ` +
        'Work on smaller pieces at a time.',
      stack: [],
    };
  }
  if (exit.error?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return {
      type: 'OutOfMemoryError',
      message:
        `The cell ran out of memory (the REPL's heap limit is ${heapLimitMb === undefined ? "V8's default" : `${heapLimitMb} MiB`}), ` +
        'so the REPL was restarted: every variable is lost (contexts were loaded again). Work on smaller pieces at a time.',
      stack: [],
    };
  }
  return {
    type: 'ProcessExitError',
    message:
      `The REPL worker ended during the cell (exit code ${exit.code}${exit.error ? `: ${limitMessage(exit.error.message).slice(0, 4096)}` : ', e.g. process.exit() was called'}), ` +
      'so the REPL was restarted: every variable is lost (contexts were loaded again).',
    stack: [],
  };
}
