/**
 * Runs Python cells inside the worker thread: loads Pyodide (from its snapshot), installs the
 * REPL runtime (python-runtime.py) with a host object that captures output and forwards sub-calls
 * and tool calls through the same synchronous bridge as JavaScript cells, and turns the runtime's
 * reports into `CellReport`s.
 *
 * Timeouts: the main thread writes SIGINT (2) into the interrupt buffer at the cell's deadline and
 * the cell's number into its second slot; Pyodide raises KeyboardInterrupt at the next bytecode
 * boundary, the cell ends and the interpreter keeps its state. A cell that swallows the interrupt
 * is the main thread's business: it replaces the worker.
 */
import { join } from 'node:path';
import {
  DEFAULT_OUTPUT_LIMIT_CHARS,
  MAX_FINAL_CHARS,
  MAX_LISTED_VARIABLES,
  type CellError,
  type ExecuteParams,
  type FinalAnswer,
  type LoadContextParams,
  type ToolDefinition,
  type VariableInfo,
} from '@rlm/shared';
import type { PyodideAPI } from 'pyodide';
import { HostCallDeadlineError, type HostCaller } from '../host-calls.js';
import { OutputCapture, Utf8StreamDecoder } from '../output-capture.js';
import { VALUE_LIMIT_CHARS, capText, finalTooLargeMessage, formatSeconds, type AnswerSource } from '../render.js';
import { createSubcallFunctions } from '../subcall-client.js';
import { ToolError, createToolFunction } from '../tool-client.js';
import type { CellReport } from '../worker-messages.js';
import { INTERRUPTED_CELL_SLOT, clearInterrupt, sleepUntilInterrupted } from './interrupt.js';
import { loadPyodideFrom } from './pyodide-loader.js';
import runtimeSource from './python-runtime.py';

/** Where the context directory appears inside the interpreter's file system. */
export const PYTHON_CONTEXT_PATH = '/context';

export interface PythonRunnerOptions {
  readonly contextDir: string;
  readonly indexDir: string;
  readonly snapshotFile: string | undefined;
  readonly memoryLimitMb: number | undefined;
  /** Int32Array[2]: Pyodide's interrupt buffer, and the number of the cell the main thread interrupted. */
  readonly interrupt: Int32Array;
  readonly createHostCaller: (remainingMs: () => number) => HostCaller;
}

interface RuntimeReport {
  status: 'ok' | 'error';
  interrupted: 'deadline' | 'interrupt' | null;
  value?: string;
  error?: CellError;
  final: FinalAnswer | null;
  variables: [string, string][];
}

interface PythonRuntime {
  run_cell(cellNumber: number, code: string): string;
  load_context(variable: string, path: string, format: string): string;
  define_tools(namesJson: string): string;
}

/** What the runtime's load_context and define_tools answer. */
type EntryReply<T> = { ok: T } | { error: [string, string] };

type HostReply = { ok: unknown } | { error: [string, string] } | { timeout: string };

export class PythonCellRunner {
  readonly #runtime: PythonRuntime;
  readonly #interrupt: Int32Array;
  readonly #tools = new Map<string, (...args: unknown[]) => unknown>();
  readonly #callHost: HostCaller;
  #stdout = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
  #stderr = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
  /**
   * What the interpreter writes to file descriptors 1 and 2 (os.write, sys.__stdout__, C code),
   * decoded a piece at a time into the current cell's capture: a 100 MB write costs no 100 MB string.
   */
  readonly #fdStdout = new Utf8StreamDecoder((text) => this.#stdout.write(text));
  readonly #fdStderr = new Utf8StreamDecoder((text) => this.#stderr.write(text));
  #deadline = Infinity;

  private constructor(pyodide: PyodideAPI, options: PythonRunnerOptions) {
    this.#interrupt = options.interrupt;
    this.#callHost = options.createHostCaller(() => this.#deadline - performance.now());
    const subcalls = createSubcallFunctions(this.#callHost);
    pyodide.setInterruptBuffer(this.#interrupt);
    pyodide.mountNodeFS(PYTHON_CONTEXT_PATH, options.contextDir);
    // Every route to file descriptors 1 and 2 ends in a device write with the bytes; `write`
    // (rather than Pyodide's `batched`, which gathers a line as an array of numbers, 8 bytes per byte
    // written, with no bound) hands them over as they are.
    pyodide.setStdout({ write: (bytes: Uint8Array) => this.#fdStdout.write(bytes), isatty: false });
    pyodide.setStderr({ write: (bytes: Uint8Array) => this.#fdStderr.write(bytes), isatty: false });
    const host = {
      stdout: (text: string) => this.#stdout.write(text),
      stderr: (text: string) => this.#stderr.write(text),
      maxFinalChars: MAX_FINAL_CHARS,
      maxListedVariables: MAX_LISTED_VARIABLES,
      finalTooLargeMessage: (chars: number, atLeast: boolean, source: AnswerSource) => finalTooLargeMessage({ chars, atLeast }, source),
      sleep: (seconds: number) => sleepUntilInterrupted(this.#interrupt, seconds * 1000),
      subcall: (kind: 'llm_query' | 'rlm_query', promptsJson: string, batched: boolean, model: string) =>
        answer(() => {
          const prompts = JSON.parse(promptsJson) as string[];
          const options = model ? { model } : undefined;
          if (!batched) return [subcalls[kind](prompts[0], options)];
          return subcalls[`${kind}_batched`](prompts, options);
        }),
      tool: (name: string, argsJson: string) =>
        answer(() => {
          const tool = this.#tools.get(name);
          if (!tool) throw new ToolError(name, 'no such tool');
          return tool(...(JSON.parse(argsJson) as unknown[]));
        }),
    };
    const bootstrap = pyodide.runPython(
      `
import sys, types
def bootstrap(source, host):
    module = types.ModuleType("_rlm_runtime")
    module.__file__ = "<rlm runtime>"
    sys.modules["_rlm_runtime"] = module
    exec(compile(source, "<rlm runtime>", "exec"), module.__dict__)
    module.install(host)
    return module
bootstrap`,
      { globals: pyodide.toPy({}) },
    );
    this.#runtime = bootstrap(runtimeSource, host) as PythonRuntime;
    bootstrap.destroy();
  }

  /** Loads Pyodide and the runtime. Throws when Pyodide's files are missing or broken. */
  static async start(options: PythonRunnerOptions): Promise<PythonCellRunner> {
    const pyodide = await loadPyodideFrom({
      indexDir: options.indexDir,
      snapshotFile: options.snapshotFile,
      memoryLimitMb: options.memoryLimitMb,
    });
    return new PythonCellRunner(pyodide, options);
  }

  execute(cellNumber: number, params: ExecuteParams): CellReport {
    this.#stdout = new OutputCapture(params.outputLimitChars);
    this.#stderr = new OutputCapture(params.outputLimitChars);
    this.#clearInterrupt();
    this.#deadline = performance.now() + params.timeoutMs;
    let report: RuntimeReport;
    try {
      report = JSON.parse(this.#runtime.run_cell(cellNumber, params.code)) as RuntimeReport;
    } catch (error) {
      // Pyodide's fatal errors (the WebAssembly stack overflowing in C code, e.g. str() of a list
      // nested 100,000 deep) leave the interpreter in an undefined state: the worker must go.
      if (isPyodideFatalError(error)) return this.#crashReport(error);
      throw error;
    } finally {
      this.#deadline = Infinity;
      // An incomplete UTF-8 sequence at the end of the cell's output is this cell's, as a replacement character.
      this.#fdStdout.flush();
      this.#fdStderr.flush();
    }
    const timedOut = report.interrupted === 'deadline' || Atomics.load(this.#interrupt, INTERRUPTED_CELL_SLOT) === cellNumber;
    this.#clearInterrupt();
    let status: CellReport['status'] = report.status;
    let error: CellError | null = report.error ?? null;
    if (timedOut) {
      status = 'timeout';
      error = {
        type: 'TimeoutError',
        message: `The cell ran past its time limit of ${formatSeconds(params.timeoutMs)} and was interrupted; the variables defined before that point are kept.`,
        stack: error?.type === 'KeyboardInterrupt' ? error.stack : [],
      };
    }
    return {
      status,
      stdout: this.#stdout.finish(),
      stderr: this.#stderr.finish(),
      ...(report.value === undefined ? {} : { value: capText(report.value, VALUE_LIMIT_CHARS) }),
      error,
      final: report.final,
      variables: report.variables.map(([name, type]): VariableInfo => ({ name, type })),
    };
  }

  #crashReport(error: Error): CellReport {
    this.#clearInterrupt();
    return {
      status: 'error',
      stdout: this.#stdout.finish(),
      stderr: this.#stderr.finish(),
      error: {
        type: 'InterpreterCrashError',
        message:
          `The Python interpreter crashed (${error.message}), most likely in C code working through a value nested too deeply ` +
          '(str(), repr() or a comparison of a list nested thousands of levels deep), so the REPL was restarted: ' +
          'every variable is lost (contexts were loaded again). Keep nesting shallow, or convert such values level by level.',
        stack: [],
      },
      final: null,
      variables: [],
      restartWorker: true,
    };
  }

  /** Binds `params.variable` to the file, read by Python straight into its memory. Throws an Error with a readable message. */
  loadContext(params: LoadContextParams): { bytes: number; valueType: string } {
    this.#clearInterrupt();
    const reply = JSON.parse(this.#runtime.load_context(params.variable, join(PYTHON_CONTEXT_PATH, params.file), params.format)) as EntryReply<{
      bytes: number;
      valueType: string;
    }>;
    if ('error' in reply) {
      // Marked for the main thread, which reports a context that does not fit as out of memory.
      throw Object.assign(new Error(describeContextError(params, reply.error)), { outOfMemory: reply.error[0] === 'MemoryError' });
    }
    return reply.ok;
  }

  /** Makes `tools` the whole set of tools, as Python functions; all or nothing. Throws an Error naming each refused tool. */
  defineTools(tools: readonly ToolDefinition[]): string[] {
    this.#clearInterrupt();
    const reply = JSON.parse(this.#runtime.define_tools(JSON.stringify(tools.map((tool) => tool.name)))) as EntryReply<string[]>;
    if ('error' in reply) throw new Error(reply.error[1]);
    const defined = reply.ok;
    this.#tools.clear();
    for (const name of defined) this.#tools.set(name, createToolFunction(name, this.#callHost));
    return defined;
  }

  #clearInterrupt(): void {
    clearInterrupt(this.#interrupt);
  }
}

function isPyodideFatalError(error: unknown): error is Error {
  return error instanceof Error && (error as { pyodide_fatal_error?: unknown }).pyodide_fatal_error === true;
}

/** Runs a host call for Python and answers it as JSON, errors included, so nothing JavaScript crosses into Python as an exception. */
function answer(call: () => unknown): string {
  let reply: HostReply;
  try {
    reply = { ok: call() };
  } catch (error) {
    if (error instanceof HostCallDeadlineError) reply = { timeout: error.message };
    else if (error instanceof Error) reply = { error: [error instanceof ToolError ? 'ToolError' : error.name, error.message] };
    else reply = { error: ['Error', String(error)] };
  }
  return JSON.stringify(reply);
}

function describeContextError(params: LoadContextParams, [type, message]: [string, string]): string {
  switch (type) {
    case 'FileNotFoundError':
      return `context file "${params.file}" does not exist in the context directory`;
    case 'JSONDecodeError':
      return `context file "${params.file}" is not valid JSON: ${message}`;
    case 'MemoryError':
      return `context file "${params.file}" does not fit in the Python REPL's memory; raise limits.memoryBytes or pass a smaller context`;
    default:
      return `cannot read context file "${params.file}": ${type}: ${message}`;
  }
}
