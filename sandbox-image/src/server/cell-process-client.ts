/**
 * The REPL server's side of the cell process: the sandbox's REPL, run in a separate Node process
 * (`cell-process.js`) under Node's permission model, so that code in a cell cannot reach the
 * server's memory, its socket to the host or its inspector. Offers what the server used from
 * {@link CellRepl} (`execute`, `loadContext`, `defineTools`, `close`, `language`) and treats the
 * cell process as hostile: every frame it sends is size-checked before it is read and validated
 * after; its sub-calls and tool calls are answered only while a cell runs, a bounded number at a
 * time; a cell that outlives its deadline by more than a grace, or a process that dies or breaks
 * the protocol, costs the state and nothing else: the process is killed, the cell answered with
 * `stateLost: true`, and a fresh process gets the contexts and tools again.
 */
import {
  DefineTools,
  DefineToolsParams,
  Execute,
  ExecuteParams,
  HandlerError,
  LoadContext,
  LoadContextParams,
  RemoteError,
  Subcall,
  ToolCall,
  summarizeZodError,
  type CellError,
  type DefineToolsResult,
  type ExecuteResult,
  type Language,
  type LoadContextResult,
  type RpcConnection,
  type ToolCallParams,
  type ToolCallResult,
  type ToolDefinition,
  type VariableInfo,
} from '@rlm/shared';
import { CellReady, CellErrorCode, MAX_FRAME_FROM_CELL_BYTES, remoteErrorText } from '../cell-process/protocol.js';
import { connectionOverStream } from '../cell-process/frames.js';
import type { CellReplOptions } from '../repl/cell-repl.js';
import { ContextLoadError, ContextOutOfMemoryError, ReplClosedError, ReplError, ReplStartError, ToolDefinitionError } from '../repl/errors.js';
import { formatSeconds } from '../repl/render.js';
import { abortPromise } from '../repl/worker-session.js';
import { type CellProcessSpawnOptions, type SpawnedCellProcess, sandboxMemoryLimitMb, spawnCellProcess } from './cell-process-spawn.js';
import { errorMessage } from '../to-error.js';

/**
 * The in-process grace of the cell process's REPL, in milliseconds: CellRepl's
 * DEFAULT_UNRESPONSIVE_GRACE_MS, not imported so that the server's bundle carries none of the REPL.
 */
const CELL_REPL_GRACE_MS = 700;

/**
 * How long past a cell's timeout plus the REPL's own grace the server waits for the cell process
 * before it kills it, in milliseconds. The cell process answers a runaway cell itself at its
 * timeout plus 700 ms; only a process whose main thread is stuck (or flooded by its cell) needs this.
 */
export const DEFAULT_CELL_KILL_GRACE_MS = 3_000;

/** Sub-calls and tool calls one cell process may have in flight at once; more are refused. */
export const DEFAULT_MAX_HOST_CALLS_IN_FLIGHT = 32;

/** How long a cell process may take to start its REPL (worker, interpreter), in milliseconds. */
export const DEFAULT_CELL_PROCESS_START_TIMEOUT_MS = 60_000;

/**
 * Most bytes of sub-call and tool-call requests from one cell process whose answers are awaited at
 * once (96 MiB: three sub-calls at their 32 MiB limit); one more is refused before it is parsed.
 */
const HOST_CALL_BYTES_IN_FLIGHT = 96 * 1024 * 1024;

export interface CellProcessClientOptions extends CellProcessSpawnOptions {
  /** Answers a cell's llm_query/rlm_query family call (forwarded to the host). */
  onSubcall: CellReplOptions['onSubcall'];
  /** Answers a cell's custom tool call; without one, tool calls fail. */
  onToolCall?: CellReplOptions['onToolCall'];
  /** See {@link DEFAULT_CELL_KILL_GRACE_MS}; milliseconds. */
  killGraceMs?: number;
  /** See {@link DEFAULT_MAX_HOST_CALLS_IN_FLIGHT}. */
  maxHostCallsInFlight?: number;
  /** See {@link DEFAULT_CELL_PROCESS_START_TIMEOUT_MS}; milliseconds. */
  startTimeoutMs?: number;
}

/** How a cell process ended. */
export interface CellProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The end of what it wrote to stderr. */
  readonly stderrTail: string;
  /** Set when the server killed it, saying why (a cell past its deadline, a broken frame, close…). */
  readonly killedFor: string | undefined;
  /** The spawn itself failed (no Node binary…). */
  readonly spawnError: Error | undefined;
}

const NO_OUTPUT = { text: '', truncatedChars: 0 } as const;

export class CellProcessClient {
  /** The language of the cells this REPL runs. */
  readonly language: Language;
  readonly #options: CellProcessClientOptions;
  /** In load order; a reload of a variable replaces its entry. */
  readonly #contexts = new Map<string, LoadContextParams>();
  /** The type each context variable was last listed with, for the variables of a result whose process died. */
  readonly #contextTypes = new Map<string, string>();
  #tools: readonly ToolDefinition[] = [];
  #process: Promise<CellProcess> | undefined;
  #live: CellProcess | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  /** The process died between cells: the next result says the state was lost. */
  #stateLostSinceLastCell = false;
  #closed = false;

  private constructor(options: CellProcessClientOptions) {
    this.#options = options;
    this.language = options.language;
  }

  /**
   * Starts the cell process (or takes `opts.spawned`, one {@link spawnCellProcess} started with the
   * same options, so its start-up overlapped the caller's) and resolves once its REPL is ready.
   * @throws ReplStartError when it cannot start (its stderr in the message); the signal's reason when aborted.
   */
  static async start(options: CellProcessClientOptions, opts: { signal?: AbortSignal; spawned?: SpawnedCellProcess } = {}): Promise<CellProcessClient> {
    const client = new CellProcessClient(options);
    try {
      client.#process = client.#startProcess(opts.signal, opts.spawned);
      await client.#current(opts.signal);
    } catch (error) {
      await client.close();
      throw error;
    }
    return client;
  }

  /** Whether a cell process is up now (false between a death and the next call, and after close). */
  get processRunning(): boolean {
    return this.#live !== undefined && !this.#live.ended;
  }

  /** The live cell process's pid, for tests and diagnostics. */
  get pid(): number | undefined {
    return this.#live?.ended === false ? this.#live.pid : undefined;
  }

  /**
   * Runs one cell. Calls are serialised. Never rejects for the cell's own failure, the cell
   * process's death included: the result's `status`/`error` say it, with `stateLost: true` when the
   * process had to be replaced. The result arrives within `timeoutMs` + the REPL's grace (700 ms) +
   * `killGraceMs` (3 s), give or take the machine's scheduling.
   * @throws ZodError for invalid params; ReplError for a cell of another language, or one the cell
   *   process's REPL refused; ReplClosedError after close(); ReplStartError when no process starts;
   *   the signal's reason when aborted (the process is then replaced and the state lost).
   */
  async execute(params: ExecuteParams, opts: { signal?: AbortSignal } = {}): Promise<ExecuteResult> {
    const checked = ExecuteParams.parse(params);
    if (checked.language !== this.language) throw new ReplError(`this REPL runs ${this.language} cells, not ${checked.language}`);
    return this.#serialize(opts.signal, () => this.#runCell(checked, opts.signal));
  }

  /**
   * Binds `params.variable` to a file of the context directory; kept across cell-process restarts.
   * @throws ContextLoadError when the file cannot be loaded (or the process died meanwhile):
   *   ContextOutOfMemoryError when that was for memory (refused as too large for the REPL, the
   *   worker ended at its limit, or the process killed, most likely by the kernel at the sandbox's);
   *   ZodError for invalid params; ReplClosedError after close().
   */
  async loadContext(params: LoadContextParams, opts: { signal?: AbortSignal } = {}): Promise<LoadContextResult> {
    const checked = LoadContextParams.parse(params);
    return this.#serialize(opts.signal, async () => {
      const cellProcess = await this.#current(opts.signal);
      const result = await this.#loadInto(cellProcess, checked, opts.signal);
      this.#contexts.delete(checked.variable);
      this.#contexts.set(checked.variable, checked);
      this.#contextTypes.delete(checked.variable);
      return result;
    });
  }

  /**
   * Makes `params.tools` the whole set of custom tools, in this and every later cell process.
   * @throws ToolDefinitionError naming each refused tool (nothing changes); ReplError when the
   *   process died meanwhile; ReplClosedError after close().
   */
  async defineTools(params: DefineToolsParams, opts: { signal?: AbortSignal } = {}): Promise<DefineToolsResult> {
    const parsed = DefineToolsParams.safeParse(params);
    if (!parsed.success) throw new ToolDefinitionError(`invalid tools: ${summarizeZodError(parsed.error)}`);
    const checked = parsed.data;
    return this.#serialize(opts.signal, async () => {
      const cellProcess = await this.#current(opts.signal);
      const defined = await this.#defineIn(cellProcess, checked.tools, opts.signal);
      this.#tools = checked.tools;
      return { defined };
    });
  }

  /** Kills the cell process and waits for it to be gone. Idempotent; later calls reject with ReplClosedError. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const starting = this.#process;
    this.#process = undefined;
    this.#live = undefined;
    if (!starting) return;
    try {
      const cellProcess = await starting;
      cellProcess.kill('the REPL is closing');
      await cellProcess.exited;
    } catch {
      // A process that never started has nothing to stop (a failed start kills its own).
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #runCell(params: ExecuteParams, signal: AbortSignal | undefined): Promise<ExecuteResult> {
    const cellProcess = await this.#current(signal);
    const started = performance.now();
    const stateLostBefore = this.#stateLostSinceLastCell;
    this.#stateLostSinceLastCell = false;
    const killAfterMs =
      params.timeoutMs + (this.#options.unresponsiveGraceMs ?? CELL_REPL_GRACE_MS) + (this.#options.killGraceMs ?? DEFAULT_CELL_KILL_GRACE_MS);
    let deadline: NodeJS.Timeout | undefined;
    const aborted = abortPromise(signal);
    type Outcome = { kind: 'result'; result: ExecuteResult } | { kind: 'exit'; exit: CellProcessExit } | { kind: 'deadline' };
    let outcome: Outcome;
    cellProcess.beginCell();
    try {
      outcome = await Promise.race<Outcome>([
        cellProcess.connection.request(Execute, params).then(
          (result) => ({ kind: 'result', result }),
          async (error: unknown) => {
            if (error instanceof RemoteError) throw new ReplError(`the cell process refused the cell: ${remoteErrorText(error)}`, { cause: error });
            // The channel broke: a frame that was no frame or a result that fails its schema (the
            // process was killed for it), or the pipe closed under us (it is dying). Either way
            // its exit says what happened; anything else makes it untrustworthy too.
            if (cellProcess.connection.isOpen) cellProcess.kill(`its execute request failed (${errorMessage(error)})`);
            return { kind: 'exit', exit: await cellProcess.exited };
          },
        ),
        cellProcess.exited.then((exit) => ({ kind: 'exit', exit })),
        new Promise<Outcome>((resolve) => {
          deadline = setTimeout(() => resolve({ kind: 'deadline' }), killAfterMs);
        }),
        aborted.promise,
      ]);
    } catch (error) {
      if (!(error instanceof ReplError) || signal?.aborted) {
        // Aborted by the caller: the cell may still run, and only a new process stops it for sure.
        this.#replace(cellProcess, 'the caller aborted the cell');
      }
      throw error;
    } finally {
      clearTimeout(deadline);
      aborted.dispose();
      cellProcess.endCell();
    }

    const durationMs = performance.now() - started;
    if (this.#closed) throw new ReplClosedError();
    if (outcome.kind === 'result') {
      for (const variable of outcome.result.variables) {
        if (this.#contexts.has(variable.name)) this.#contextTypes.set(variable.name, variable.type);
      }
      return { ...outcome.result, stateLost: outcome.result.stateLost || stateLostBefore };
    }

    if (outcome.kind === 'deadline') {
      this.#replace(cellProcess, `the cell ran ${formatSeconds(killAfterMs - params.timeoutMs)} past its time limit`);
      // Answer once it is gone: when a timed-out cell's result arrives, the cell no longer runs.
      await cellProcess.exited;
    } else {
      this.#replace(cellProcess, 'it ended during a cell');
    }
    this.#stateLostSinceLastCell = false;
    const error: CellError =
      outcome.kind === 'deadline'
        ? {
            type: 'TimeoutError',
            message:
              `The cell ran past its time limit of ${formatSeconds(params.timeoutMs)} and the REPL did not answer, ` +
              'so its process was restarted: every variable is lost (contexts were loaded again).',
            stack: [],
          }
        : exitError(outcome.exit, this.#options.heapLimitMb);
    return {
      status: outcome.kind === 'deadline' ? 'timeout' : 'error',
      stdout: NO_OUTPUT,
      stderr: NO_OUTPUT,
      error,
      final: null,
      stateLost: true,
      variables: this.#contextVariables(),
      durationMs,
    };
  }

  async #loadInto(cellProcess: CellProcess, params: LoadContextParams, signal: AbortSignal | undefined): Promise<LoadContextResult> {
    const outcome = await this.#ask(
      cellProcess,
      LoadContext.method,
      () => cellProcess.connection.request(LoadContext, params, signal ? { signal } : {}),
      signal,
    );
    if (outcome.kind === 'ok') return outcome.value;
    if (outcome.kind === 'refused' && outcome.error.code === CellErrorCode.contextOutOfMemory) {
      throw new ContextOutOfMemoryError(params.variable, params.file, stripContextPrefix(remoteErrorText(outcome.error), params.variable));
    }
    if (outcome.kind === 'refused' && outcome.error.code === CellErrorCode.contextLoad) {
      throw new ContextLoadError(params.variable, params.file, stripContextPrefix(remoteErrorText(outcome.error), params.variable));
    }
    if (outcome.kind === 'lost') {
      // Reading a large file is what a kernel's out-of-memory kill interrupts most: say so.
      const exit = await cellProcess.exited;
      if (looksLikeMemory(exit)) {
        const limitMb = exit.signal === 'SIGKILL' || exit.code === 137 ? sandboxMemoryLimitMb() : undefined;
        throw new ContextOutOfMemoryError(
          params.variable,
          params.file,
          `the cell process ${describeExit(exit)} while loading it, most likely for going over the sandbox's memory limit` +
            `${limitMb === undefined ? '' : ` of ${limitMb} MiB`}`,
        );
      }
    }
    throw new ContextLoadError(params.variable, params.file, outcome.kind === 'refused' ? remoteErrorText(outcome.error) : outcome.message);
  }

  async #defineIn(cellProcess: CellProcess, tools: readonly ToolDefinition[], signal: AbortSignal | undefined): Promise<string[]> {
    const outcome = await this.#ask(
      cellProcess,
      DefineTools.method,
      () => cellProcess.connection.request(DefineTools, { tools: [...tools] }, signal ? { signal } : {}),
      signal,
    );
    if (outcome.kind === 'ok') return outcome.value.defined;
    if (outcome.kind === 'refused') {
      if (outcome.error.code === CellErrorCode.invalidTools || outcome.error.code === 'invalid_params')
        throw new ToolDefinitionError(remoteErrorText(outcome.error));
      throw new ReplError(`defining the tools failed: ${remoteErrorText(outcome.error)}`);
    }
    throw new ReplError(`defining the tools failed: ${outcome.message}`);
  }

  /**
   * Sends a request that is not a cell, and sorts its outcome: the answer, the REPL's refusal, or
   * the process gone (then replaced). An abort replaces the process too: whatever it was doing
   * would land in the next request's way.
   */
  async #ask<T>(
    cellProcess: CellProcess,
    method: string,
    send: () => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<{ kind: 'ok'; value: T } | { kind: 'refused'; error: RemoteError } | { kind: 'lost'; message: string }> {
    try {
      const outcome = await Promise.race([
        send().then(
          (value) => ({ kind: 'ok' as const, value }),
          (error: unknown) => {
            if (error instanceof RemoteError) return { kind: 'refused' as const, error };
            if (signal?.aborted) throw signal.reason;
            if (cellProcess.connection.isOpen) cellProcess.kill(`its ${method} request failed (${errorMessage(error)})`);
            return { kind: 'exited' as const };
          },
        ),
        cellProcess.exited.then(() => ({ kind: 'exited' as const })),
      ]);
      if (outcome.kind !== 'exited') return outcome;
    } catch (error) {
      this.#replace(cellProcess, `the caller aborted ${method}`);
      throw error;
    }
    const exit = await cellProcess.exited;
    this.#replace(cellProcess, `it ended during ${method}`);
    return { kind: 'lost', message: `the cell process ended during ${method} (${describeExit(exit)})` };
  }

  /** The running process, starting one (with every context and tool) when there is none. */
  #current(signal?: AbortSignal): Promise<CellProcess> {
    if (this.#closed) return Promise.reject(new ReplClosedError());
    this.#process ??= this.#startProcess(signal);
    const starting = this.#process;
    return starting.catch((error: unknown) => {
      // Let the next call try again with a fresh process.
      if (this.#process === starting) this.#process = undefined;
      throw error;
    });
  }

  async #startProcess(signal?: AbortSignal, spawned?: SpawnedCellProcess): Promise<CellProcess> {
    const options = this.#options;
    const cellProcess = await CellProcess.start(
      spawned ?? spawnCellProcess(options),
      {
        language: options.language,
        onSubcall: options.onSubcall,
        onToolCall: options.onToolCall ?? noToolCalls,
        maxHostCallsInFlight: options.maxHostCallsInFlight ?? DEFAULT_MAX_HOST_CALLS_IN_FLIGHT,
        startTimeoutMs: options.startTimeoutMs ?? DEFAULT_CELL_PROCESS_START_TIMEOUT_MS,
      },
      signal,
    );
    try {
      for (const params of this.#contexts.values()) await this.#loadInto(cellProcess, params, signal);
      if (this.#tools.length > 0) await this.#defineIn(cellProcess, this.#tools, signal);
    } catch (error) {
      cellProcess.kill('its contexts or tools could not be loaded');
      throw error;
    }
    if (this.#closed) {
      cellProcess.kill('the REPL is closing');
      throw new ReplClosedError();
    }
    this.#live = cellProcess;
    void cellProcess.exited.then(() => {
      // Died on its own (between cells, or during one: then #runCell reports it).
      if (this.#live !== cellProcess) return;
      this.#live = undefined;
      this.#process = undefined;
      this.#stateLostSinceLastCell = true;
    });
    return cellProcess;
  }

  /** Kills a process that died or must die, and starts its replacement in the background. */
  #replace(cellProcess: CellProcess, reason: string): void {
    cellProcess.kill(reason);
    if (this.#live === cellProcess) {
      this.#live = undefined;
      this.#process = undefined;
    }
    if (this.#closed || this.#process) return;
    const next = this.#startProcess();
    next.catch(() => {
      // Reported to whoever asks for the process next.
    });
    this.#process = next;
  }

  #contextVariables(): VariableInfo[] {
    const fallback = (params: LoadContextParams) =>
      params.format === 'text' ? (this.language === 'python' ? 'str' : 'string') : this.language === 'python' ? 'dict' : 'Object';
    return [...this.#contexts.values()]
      .map((params) => ({ name: params.variable, type: this.#contextTypes.get(params.variable) ?? fallback(params) }))
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

interface CellProcessOptions {
  readonly language: Language;
  readonly onSubcall: CellReplOptions['onSubcall'];
  readonly onToolCall: NonNullable<CellReplOptions['onToolCall']>;
  readonly maxHostCallsInFlight: number;
  readonly startTimeoutMs: number;
}

/** One spawned cell process and its channel. Never restarts; the client replaces it. */
class CellProcess {
  readonly connection: RpcConnection;
  /** Resolves once the process is gone and its stderr has been read to the end. */
  readonly exited: Promise<CellProcessExit>;
  readonly pid: number | undefined;
  readonly #spawned: SpawnedCellProcess;
  readonly #options: CellProcessOptions;
  readonly #hostCalls = new Set<AbortController>();
  readonly #ready: Promise<void>;
  #killedFor: string | undefined;
  #cellRunning = false;
  #ended = false;

  private constructor(spawned: SpawnedCellProcess, options: CellProcessOptions) {
    this.#options = options;
    this.#spawned = spawned;
    this.pid = spawned.pid;
    this.exited = spawned.ended.then((end) => {
      this.#ended = true;
      this.abortHostCalls();
      this.connection.close(1001, 'the cell process ended');
      return { ...end, stderrTail: spawned.stderrTail(), killedFor: this.#killedFor };
    });
    this.connection = connectionOverStream(spawned.pipe, {
      name: 'REPL server',
      maxFrameBytes: MAX_FRAME_FROM_CELL_BYTES,
      maxMessageBytes: MAX_FRAME_FROM_CELL_BYTES,
      // The cell's calls beyond these are answered `busy` before they are parsed; #hostCall counts too.
      maxConcurrentRequests: options.maxHostCallsInFlight + 1,
      maxConcurrentRequestBytes: HOST_CALL_BYTES_IN_FLIGHT,
      onClosed: (reason, byPeer) => {
        if (!byPeer) {
          this.kill(`it broke the protocol (${reason})`);
          return;
        }
        // The pipe closed under us: the process is dying (an out-of-memory kill closes it first as
        // often as not, and must still read as one), or its own main thread, which exits when its
        // pipe closes, is on its way out. SIGTERM ends one that lingers without claiming the exit.
        spawned.child.kill('SIGTERM');
      },
    });
    let ready!: () => void;
    this.#ready = new Promise((resolve) => (ready = resolve));
    this.connection.handle(CellReady, (params) => {
      if (params.language !== options.language) throw new HandlerError('wrong_language', `expected a ${options.language} REPL`);
      ready();
      return {};
    });
    this.connection.handle(Subcall, (params, { signal }) => this.#hostCall(signal, (callSignal) => options.onSubcall(params, { signal: callSignal })));
    this.connection.handle(ToolCall, (params, { signal }) => this.#hostCall(signal, (callSignal) => options.onToolCall(params, { signal: callSignal })));
  }

  /** Takes a spawned cell process and waits for its REPL to be ready. */
  static async start(spawned: SpawnedCellProcess, options: CellProcessOptions, signal?: AbortSignal): Promise<CellProcess> {
    const child = new CellProcess(spawned, options);
    if (signal?.aborted) {
      child.kill('its start was aborted');
      throw signal.reason;
    }
    const aborted = abortPromise(signal);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        child.#ready,
        aborted.promise,
        child.exited.then((exit) => {
          throw new ReplStartError(
            `the cell process (${spawned.script}) ${describeExit(exit)} before it was ready${exit.stderrTail ? `:\n${exit.stderrTail}` : ''}`,
            {
              cause: exit.spawnError,
            },
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new ReplStartError(`the cell process (${spawned.script}) was not ready within ${formatSeconds(options.startTimeoutMs)}`)),
            options.startTimeoutMs,
          );
        }),
      ]);
    } catch (error) {
      child.kill('it did not start');
      throw error;
    } finally {
      clearTimeout(timer);
      aborted.dispose();
    }
    return child;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sub-calls and tool calls are answered from now until {@link endCell}. */
  beginCell(): void {
    this.#cellRunning = true;
  }

  /** The cell is over: its host calls still running are aborted, and later ones refused. */
  endCell(): void {
    this.#cellRunning = false;
    this.abortHostCalls();
  }

  abortHostCalls(): void {
    for (const controller of this.#hostCalls) controller.abort(new Error('the cell that made this call is over'));
    this.#hostCalls.clear();
  }

  /** Kills the process (SIGKILL: it may be hostile or stuck). Safe to call more than once; the first reason is kept. */
  kill(reason: string): void {
    if (this.#ended) return;
    this.#killedFor ??= reason;
    this.abortHostCalls();
    this.#spawned.child.kill('SIGKILL');
  }

  async #hostCall<T>(rpcSignal: AbortSignal, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (!this.#cellRunning) throw new HandlerError('no_cell_running', 'sub-calls and tool calls are answered only while a cell runs');
    if (this.#hostCalls.size >= this.#options.maxHostCallsInFlight) {
      throw new HandlerError(
        'too_many_calls',
        `over ${this.#options.maxHostCallsInFlight} sub-calls and tool calls are in flight at once; wait for some to finish (llm_query_batched sends many prompts as one call)`,
      );
    }
    const controller = new AbortController();
    this.#hostCalls.add(controller);
    try {
      return await call(AbortSignal.any([rpcSignal, controller.signal]));
    } catch (error) {
      // The host's own code and words travel on, so the cell reads the same error as before the split.
      if (error instanceof RemoteError) throw new HandlerError(error.code, error.message);
      throw error;
    } finally {
      this.#hostCalls.delete(controller);
    }
  }
}

const noToolCalls = async (params: ToolCallParams): Promise<ToolCallResult> => ({
  ok: false,
  error: `${params.name} is not available: this REPL has no tool-call handler`,
});

/** V8's words when a process runs out of heap, and the kernel's way of ending one that used too much memory. */
const MEMORY_EXIT = /out of memory|heap limit|allocation failed/i;

function looksLikeMemory(exit: CellProcessExit): boolean {
  if (exit.killedFor !== undefined) return false;
  return exit.signal === 'SIGKILL' || exit.code === 137 || MEMORY_EXIT.test(exit.stderrTail);
}

function describeExit(exit: CellProcessExit): string {
  if (exit.spawnError) return `could not be started (${exit.spawnError.message})`;
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return exit.killedFor ? `${how}: ${exit.killedFor}` : how;
}

function exitError(exit: CellProcessExit, heapLimitMb: number | undefined): CellError {
  if (looksLikeMemory(exit)) {
    const heap = `the REPL's heap limit is ${heapLimitMb === undefined ? "V8's default" : `${heapLimitMb} MiB`}`;
    const sandboxLimitMb = exit.signal === 'SIGKILL' || exit.code === 137 ? sandboxMemoryLimitMb() : undefined;
    const cause =
      sandboxLimitMb === undefined
        ? `its process ${describeExit(exit)}; ${heap}`
        : `its process ${describeExit(exit)}, most likely by the kernel for going over the sandbox's memory limit of ${sandboxLimitMb} MiB; ${heap}`;
    return {
      type: 'OutOfMemoryError',
      message: `The cell ran out of memory (${cause}), so the REPL was restarted: every variable is lost (contexts were loaded again). Work on smaller pieces at a time.`,
      stack: [],
    };
  }
  return {
    type: 'ProcessExitError',
    message: `The REPL's process ended during the cell (it ${describeExit(exit)}), so the REPL was restarted: every variable is lost (contexts were loaded again).`,
    stack: [],
  };
}

/** ContextLoadError puts `cannot load context variable "x": ` in front of the reason; the cell process's message has it already. */
function stripContextPrefix(message: string, variable: string): string {
  const prefix = `cannot load context variable "${variable}": `;
  return message.startsWith(prefix) ? message.slice(prefix.length) : message;
}
