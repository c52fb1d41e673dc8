/**
 * A REPL for the engine's tests that runs cells in this process — the sandbox's own REPL core
 * (`JavaScriptRepl` / `PythonRepl`, cells in a worker thread) without a container or a control
 * channel. It behaves like {@link Sandbox} where the engine can tell (results, contexts, tools,
 * sub-calls, abort closes it), starts in milliseconds and needs no Docker.
 *
 * It is NOT a security boundary: a cell can reach everything this process can. It lives in
 * `src/testing/`, which the build leaves out of `dist/`, and the package exports no way to use it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_OUTPUT_LIMIT_CHARS,
  ExecuteResult,
  type Language,
  type LoadContextResult,
  type SubcallParams,
  type SubcallResult,
  type ToolDefinition,
} from '@rlm/shared';
import { ContextLoadError, JavaScriptRepl, PythonRepl, ReplError, ToolDefinitionError, type CellRepl } from '@rlm/sandbox-image';
import { bundledPythonWorkerUrl, bundledReplWorkerUrl, testPyodideDir, testPythonSnapshot } from '@rlm/sandbox-image/testing';
import { AbortedError, InvalidOptionError, SandboxClosedError, SandboxError } from '../errors.js';
import { CellCalls, refusedSubcall, refusedToolCall, serveInCell } from '../sandbox/cell-calls.js';
import { writeContextFile, type ContextValue } from '../sandbox/context-files.js';
import type { ExecuteOptions, Repl, ReplFactory, ReplRequest, SubcallHandler } from '../sandbox/repl.js';
import { ToolDispatcher, toolDefinitions, type SandboxTool } from '../sandbox/tools.js';

export interface InProcessReplOptions {
  /** Cap of the cell worker's heap (and of Python's memory), in MiB; default 512. */
  heapLimitMb?: number;
}

let created = 0;

export class InProcessRepl implements Repl {
  /** Unique per REPL, like a sandbox's id. */
  readonly id: string;
  readonly language: Language;
  readonly #repl: CellRepl;
  readonly #contextDir: string;
  readonly #cellTimeoutMs: number;
  readonly #tools: ToolDispatcher;
  readonly #contexts = new Set<string>();
  #toolNames: ToolDefinition[] = [];
  /** Where the cells' sub-calls go; the REPL reads it at each call, so a new handler takes over at once. */
  readonly #subcalls: CallRouting;
  #closing: Promise<void> | undefined;

  private constructor(init: {
    id: string;
    repl: CellRepl;
    contextDir: string;
    request: ReplRequest;
    tools: ToolDispatcher;
    subcalls: CallRouting;
  }) {
    this.id = init.id;
    this.language = init.repl.language;
    this.#repl = init.repl;
    this.#contextDir = init.contextDir;
    this.#cellTimeoutMs = init.request.cellTimeoutMs;
    this.#tools = init.tools;
    this.#subcalls = init.subcalls;
  }

  /** Starts a REPL for `request`, with its context loaded and its tools defined. */
  static async create(request: ReplRequest, options: InProcessReplOptions = {}): Promise<InProcessRepl> {
    const tools = new ToolDispatcher({ ...request.tools });
    const definitions = toolDefinitions(tools.tools);
    const contextDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-in-process-repl-'));
    // The cell running now (as in a Sandbox, its calls end with it) and the handler to serve them with.
    const subcalls: CallRouting = { handler: request.onSubcall, cell: undefined };
    const common = {
      contextDir,
      heapLimitMb: options.heapLimitMb ?? 512,
      // A loaded machine may keep a worker from acting on its interrupt for seconds; wait that out
      // rather than lose state the way production's 700 ms would.
      unresponsiveGraceMs: 10_000,
      onSubcall: (params: SubcallParams, { signal }: { signal: AbortSignal }): Promise<SubcallResult> =>
        serveInCell(
          subcalls.cell,
          signal,
          (cellSignal) => (subcalls.handler ?? noSubcalls)(params, { signal: cellSignal }),
          () => refusedSubcall(params),
        ),
      onToolCall: (params: Parameters<ToolDispatcher['call']>[0], { signal }: { signal: AbortSignal }) =>
        serveInCell(subcalls.cell, signal, (cellSignal) => tools.call(params, cellSignal), refusedToolCall),
    };
    const signal = request.signal;
    let repl: CellRepl;
    try {
      repl =
        request.language === 'python'
          ? await PythonRepl.start(
              { ...common, workerUrl: await bundledPythonWorkerUrl(), pyodideDir: testPyodideDir, snapshotFile: await testPythonSnapshot() },
              signal ? { signal } : {},
            )
          : await JavaScriptRepl.start({ ...common, workerUrl: await bundledReplWorkerUrl() }, signal ? { signal } : {});
    } catch (error) {
      await rm(contextDir, { recursive: true, force: true });
      if (signal?.aborted) throw new AbortedError('creating the REPL was aborted', { cause: error });
      throw error;
    }
    created += 1;
    const self = new InProcessRepl({ id: `in-process-${process.pid}-${created}`, repl, contextDir, request, tools, subcalls });
    try {
      if (definitions.length > 0) await self.#define(definitions, signal);
      if (request.context !== undefined) await self.loadContext(request.context, signal ? { signal } : {});
      return self;
    } catch (error) {
      await self.close();
      throw error;
    }
  }

  get isClosed(): boolean {
    return this.#closing !== undefined;
  }

  async execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    if (options.language !== undefined && options.language !== this.language) {
      throw new InvalidOptionError('language', `this REPL runs ${this.language} cells, not ${options.language}`);
    }
    return this.#guard(options.signal, async (signal) => {
      const cell = new CellCalls();
      this.#subcalls.cell = cell;
      try {
        const result = await this.#repl.execute(
          {
            code,
            language: this.language,
            timeoutMs: options.timeoutMs ?? this.#cellTimeoutMs,
            outputLimitChars: options.outputLimitChars ?? DEFAULT_OUTPUT_LIMIT_CHARS,
          },
          { signal },
        );
        // What the host would accept from a container: the protocol's schema.
        return ExecuteResult.parse(result);
      } finally {
        if (this.#subcalls.cell === cell) this.#subcalls.cell = undefined;
        this.#tools.abortRunning();
        await cell.end(signal?.aborted ? 'the cell was cancelled' : 'the cell that made this call ended', 10_000);
      }
    });
  }

  async loadContext(value: ContextValue, options: { variable?: string; signal?: AbortSignal } = {}): Promise<LoadContextResult> {
    const variable = options.variable ?? 'context';
    if (this.#toolNames.some((tool) => tool.name === variable)) {
      throw new InvalidOptionError('variable', `"${variable}" is the name of a tool of this REPL; bind the context to another variable`);
    }
    return this.#guard(options.signal, async (signal) => {
      const params = await writeContextFile(this.#contextDir, variable, value, { signal });
      try {
        const loaded = await this.#repl.loadContext(params, { signal });
        this.#contexts.add(variable);
        return loaded;
      } catch (error) {
        if (error instanceof ContextLoadError) throw new SandboxError(`could not load ${variable}: ${error.message}`, this.id, { cause: error });
        throw error;
      }
    });
  }

  async defineTools(tools: Record<string, SandboxTool>, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    const copy = { ...tools };
    const definitions = toolDefinitions(copy);
    const context = definitions.find((tool) => this.#contexts.has(tool.name));
    if (context) throw new InvalidOptionError(`tools.${context.name}`, 'the name is bound to a context of this REPL; choose another name');
    const defined = await this.#define(definitions, options.signal);
    this.#tools.tools = copy;
    return defined;
  }

  setSubcallHandler(handler: SubcallHandler | undefined): void {
    this.#subcalls.handler = handler;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#tools.abortRunning();
      await this.#repl.close();
      await rm(this.#contextDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #define(definitions: ToolDefinition[], signal: AbortSignal | undefined): Promise<string[]> {
    return this.#guard(signal, async (guarded) => {
      try {
        const { defined } = await this.#repl.defineTools({ tools: definitions }, { signal: guarded });
        this.#toolNames = definitions;
        return defined;
      } catch (error) {
        if (error instanceof ToolDefinitionError) throw new InvalidOptionError('tools', `the REPL refused them: ${error.message}`, { cause: error });
        throw error;
      }
    });
  }

  /** Runs `task` on an open REPL; an abort closes it (as it closes a sandbox) and is an {@link AbortedError}. */
  async #guard<T>(callerSignal: AbortSignal | undefined, task: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (this.isClosed) throw new SandboxClosedError(`REPL ${this.id} is closed`, this.id);
    try {
      callerSignal?.throwIfAborted();
      return await task(callerSignal);
    } catch (error) {
      if (callerSignal?.aborted) {
        await this.close();
        throw new AbortedError(`REPL ${this.id}: the call was aborted; the REPL is closed`, { cause: error });
      }
      if (this.isClosed && ReplError.isInstance(error))
        throw new SandboxClosedError(`REPL ${this.id} was closed while the call ran`, this.id, { cause: error });
      throw error;
    }
  }
}

/** Where a REPL's calls go: the handler of its sub-calls and the cell they belong to. */
interface CallRouting {
  handler: SubcallHandler | undefined;
  cell: CellCalls | undefined;
}

/** A {@link ReplFactory} of in-process REPLs that remembers every REPL it made. */
export interface InProcessReplFactory extends ReplFactory {
  /** Every REPL made so far, in order. */
  readonly made: readonly InProcessRepl[];
}

export function inProcessRepls(options: InProcessReplOptions = {}): InProcessReplFactory {
  const made: InProcessRepl[] = [];
  const factory = async (request: ReplRequest) => {
    const repl = await InProcessRepl.create(request, options);
    made.push(repl);
    return repl;
  };
  return Object.assign(factory, { made });
}

const noSubcalls: SubcallHandler = async (request) => ({
  outcomes: request.prompts.map(() => ({ ok: false as const, error: `${request.kind} is not available: this REPL has no sub-call handler` })),
});
