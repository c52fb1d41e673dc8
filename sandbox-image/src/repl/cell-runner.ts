/**
 * Runs cells inside the worker thread: installs the REPL's globals (`print`, `llm_query`…, `FINAL`,
 * `FINAL_VAR`, `SHOW_VARS`, the `answer` object, `require`, the host's custom tools), captures
 * output, evaluates the transformed cell in the worker's own realm, enforces the cell's deadline
 * where the worker can, and restores reserved names and tools afterwards.
 */
import { Buffer } from 'node:buffer';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { clearTimeout, setTimeout } from 'node:timers';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { Console } from 'node:console';
import vm from 'node:vm';
import {
  DEFAULT_OUTPUT_LIMIT_CHARS,
  MAX_LISTED_VARIABLES,
  RESERVED_NAMES,
  toolNameProblem,
  type CellError,
  type ExecuteParams,
  type FinalAnswer,
  type LoadContextParams,
  type ToolDefinition,
  type VariableInfo,
} from '@rlm/shared';
import { errorCode, errorMessage } from '../to-error.js';
import { HostCallDeadlineError, type HostCaller } from './host-calls.js';
import { OutputCapture } from './output-capture.js';
import { NAME_LIMIT_CHARS, finalTooLargeMessage, formatSeconds, renderError, renderFinal, renderValue, shortType } from './render.js';
import { createSubcallFunctions } from './subcall-client.js';
import { createToolFunction } from './tool-client.js';
import { CellSyntaxError, DECLARE_GLOBALS, transformCell, type TransformedCell } from './transform-cell.js';
import type { CellReport } from './worker-messages.js';

type Globals = Record<string, unknown>;
const globals = globalThis as unknown as Globals;

// A cell may replace globals (`function process() {}` is plausible); the runtime keeps its own references.
const { defineProperty, getOwnPropertyDescriptor, getOwnPropertyNames, getPrototypeOf, is: sameValue } = Object;
const ObjectPrototype = Object.prototype;
const { isArray } = Array;
const NativePromise = Promise;
const nativeQueueMicrotask = queueMicrotask;

/**
 * Built-ins that the REPL's own code (the cell parser included) relies on. A cell that replaces one
 * gets it restored afterwards, with a note on stderr, like the reserved names.
 */
const PROTECTED_INTRINSICS = [
  'globalThis',
  'Object',
  'Function',
  'Array',
  'String',
  'Number',
  'Boolean',
  'Symbol',
  'BigInt',
  'Promise',
  'Map',
  'Set',
  'WeakMap',
  'WeakSet',
  'JSON',
  'Math',
  'Reflect',
  'Error',
  'TypeError',
  'RangeError',
  'SyntaxError',
  'ReferenceError',
  'RegExp',
  'ArrayBuffer',
  'SharedArrayBuffer',
  'Atomics',
  'Int32Array',
  'Uint8Array',
  'Uint16Array',
] as const;

/**
 * The object a cell may answer through instead of `FINAL`, as the reference implementation's
 * REPL does: `answer.content = …; answer.ready = true`, or `answer = { content: …, ready: true }`.
 * Unlike the reserved names, a cell may bind `answer` to anything else: it is then the cell's own
 * variable (listed, usable with FINAL_VAR), since `answer` is a common name for one.
 */
const ANSWER = 'answer';

const ABSENT = Symbol('absent');
const ACCESSOR = Symbol('accessor');
/** Position maps of this many recent cells are kept, for stack frames of functions they defined. */
const MAPPED_CELLS = 1000;

class CellDeadlineError extends Error {}

/**
 * What `FINAL`/`FINAL_VAR` throw when the answer's text is longer than `MAX_FINAL_CHARS`. The cell's
 * result is then an error of this type (even when the cell catches it), and no answer is taken. An
 * `answer` object set ready with such a content gives the same error.
 */
class FinalTooLargeError extends Error {
  override name = 'FinalTooLargeError';
}

export interface CellRunnerOptions {
  readonly contextDir: string;
  /** Builds the channel to the host for sub-calls and tool calls; gets the milliseconds left of the current cell. */
  readonly createHostCaller: (remainingMs: () => number) => HostCaller;
}

export class CellRunner {
  readonly #contextDir: string;
  readonly #reserved = new Map<string, unknown>();
  readonly #protected = new Map<string, unknown>();
  readonly #contextVariables = new Set<string>();
  /** The host's custom tools by name: reserved like the REPL's own names, but never listed as variables. */
  readonly #tools = new Map<string, unknown>();
  readonly #callHost: HostCaller;
  readonly #baseline = new Map<string, unknown>();
  readonly #positionMaps = new Map<number, TransformedCell['mapPosition']>();
  #stdout = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
  #stderr = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
  #final: FinalAnswer | null = null;
  /** The first answer refused as too large in this cell; reported unless a later answer was taken. */
  #finalRefused: FinalTooLargeError | null = null;
  /** The `answer` object the REPL bound last; while `answer` is still this object, it is not listed as a variable. */
  #answer: Globals = { content: '', ready: false };
  #deadline = Infinity;
  #hostCallTimedOut = false;

  constructor(options: CellRunnerOptions) {
    this.#contextDir = options.contextDir;
    this.#installHostGlobals();
    installDeclareGlobals();
    for (const name of getOwnPropertyNames(globalThis)) {
      const descriptor = getOwnPropertyDescriptor(globalThis, name);
      this.#baseline.set(name, descriptor && 'value' in descriptor ? descriptor.value : ACCESSOR);
    }
    for (const name of PROTECTED_INTRINSICS) this.#protected.set(name, globals[name]);
    this.#callHost = options.createHostCaller(() => {
      const remaining = this.#deadline - performance.now();
      if (remaining <= 0) this.#hostCallTimedOut = true;
      return remaining;
    });
    const subcalls = createSubcallFunctions(this.#callHost);
    const functions: Globals = {
      print: (...args: unknown[]) => {
        this.#stdout.write(`${format(...args)}\n`);
      },
      ...subcalls,
      FINAL: (value: unknown) => {
        if (this.#final === null) this.#final = { value: this.#renderAnswer(value, 'FINAL'), via: 'FINAL' };
      },
      FINAL_VAR: (name: unknown) => this.#finalVar(name),
      SHOW_VARS: () => {
        const names = this.#variableNames();
        const variables = this.listVariables(names);
        const left = names.length - variables.length;
        const text =
          variables.length === 0
            ? 'No variables yet.'
            : `Variables:\n${variables.map(({ name, type }) => `  ${name}: ${type}`).join('\n')}` +
              (left > 0
                ? `\n  … and ${left.toLocaleString('en-US')} more (only the first ${MAX_LISTED_VARIABLES.toLocaleString('en-US')} by name are listed)`
                : '');
        this.#stdout.write(`${text}\n`);
        return text;
      },
    };
    for (const name of RESERVED_NAMES) this.#reserved.set(name, name in functions ? functions[name] : ABSENT);
    this.#restoreReserved(false);
    this.#bindAnswer('');
  }

  async execute(cellNumber: number, params: ExecuteParams): Promise<CellReport> {
    this.#beginCell(params);
    let status: CellReport['status'] = 'ok';
    let error: CellError | null = null;
    let value: string | undefined;
    try {
      const script = this.#compile(cellNumber, params.code);
      const completion = script.runInThisContext({ timeout: params.timeoutMs, displayErrors: false }) as Promise<[unknown] | undefined>;
      const boxed = await this.#beforeDeadline(completion);
      if (this.#hostCallTimedOut) throw new CellDeadlineError();
      if (boxed !== undefined && boxed[0] !== undefined) value = renderValue(boxed[0]);
    } catch (thrown) {
      if (this.#isTimeout(thrown)) {
        status = 'timeout';
        error = {
          type: 'TimeoutError',
          message: `The cell ran past its time limit of ${formatSeconds(params.timeoutMs)} and was stopped; the variables defined before that point are kept.`,
          stack: [],
        };
      } else {
        status = 'error';
        error =
          thrown instanceof CellSyntaxError
            ? { type: 'SyntaxError', message: thrown.message, stack: [`at cell ${cellNumber}, line ${thrown.line}:${thrown.column}`] }
            : renderError(thrown, this.#mapPosition);
      }
    } finally {
      this.#deadline = Infinity;
      this.#restoreReserved(true);
    }
    const answerRefused = this.#takeAnswer();
    // A refused answer the cell caught (or that came from a callback) still makes the cell an error, unless another answer was taken.
    if (this.#final === null && this.#finalRefused !== null && status === 'ok') {
      status = 'error';
      error = renderError(this.#finalRefused, this.#mapPosition);
    } else if (this.#final === null && answerRefused !== null) {
      // The cell failed on its own: its error stays the result's, and the refusal is said beside it.
      this.#stderr.write(`${answerRefused.message}\n`);
    }
    const report: CellReport = {
      status,
      stdout: this.#stdout.finish(),
      stderr: this.#stderr.finish(),
      ...(value === undefined ? {} : { value }),
      error,
      final: this.#final,
      variables: this.listVariables(),
    };
    // Output of callbacks that fire between cells lands in the next cell's capture.
    this.#stdout = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
    this.#stderr = new OutputCapture(DEFAULT_OUTPUT_LIMIT_CHARS);
    this.#final = null;
    this.#finalRefused = null;
    return report;
  }

  /** Binds `params.variable` to the file's content; returns the file's size and the value's short type. Throws an Error with a readable message. */
  loadContext(params: LoadContextParams): { bytes: number; valueType: string } {
    if (this.#tools.has(params.variable)) {
      throw new Error(`"${params.variable}" is the name of a tool; bind the context to another variable`);
    }
    if (params.variable === ANSWER) {
      throw new Error(`"${ANSWER}" is the REPL's answer object (answer.content, answer.ready); bind the context to another variable`);
    }
    const path = join(this.#contextDir, params.file);
    let bytes = 0;
    let text: string;
    try {
      // Decoded straight into one string: a Buffer of the file's size would stay beside it until the
      // next garbage collection, doubling what a large context costs (and counting against the memory limit).
      const fd = openSync(path, 'r');
      try {
        bytes = fstatSync(fd).size;
        text = readFileSync(fd, 'utf8');
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if (errorCode(error) === 'ENOENT') throw new Error(`context file "${params.file}" does not exist in ${this.#contextDir}`, { cause: error });
      if (errorCode(error) === 'ERR_STRING_TOO_LONG') {
        throw new Error(`context file "${params.file}" (${bytes} bytes) is too large for one string: ${errorMessage(error)}`, { cause: error });
      }
      throw new Error(`cannot read context file "${params.file}": ${errorMessage(error)}`, { cause: error });
    }
    let value: unknown = text;
    if (params.format === 'json') {
      try {
        value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
      } catch (error) {
        throw new Error(`context file "${params.file}" is not valid JSON: ${errorMessage(error)}`, { cause: error });
      }
    }
    this.#reserved.set(params.variable, value);
    this.#contextVariables.add(params.variable);
    this.#restoreReserved(false);
    return { bytes, valueType: shortType(value) };
  }

  /**
   * Makes `tools` the whole set of custom tools: each becomes a global function, a tool missing from
   * the set is removed. All or nothing: throws an Error naming every refused tool (a name of the
   * runtime's globals, or one bound to a context) and changes nothing.
   */
  defineTools(tools: readonly ToolDefinition[]): string[] {
    const problems: string[] = [];
    const names = new Set<string>();
    for (const { name } of tools) {
      let problem = toolNameProblem(name);
      if (!problem && names.has(name)) problem = 'is defined twice';
      if (!problem && this.#contextVariables.has(name)) problem = 'is bound to a context';
      if (!problem && name === ANSWER) problem = "is the REPL's answer object";
      if (!problem && (this.#baseline.has(name) || name in Object.prototype)) problem = "is a global of the REPL's runtime";
      if (problem) problems.push(`tool ${JSON.stringify(name)}: the name ${problem}`);
      names.add(name);
    }
    if (problems.length > 0) throw new Error(`${problems.join('; ')}; choose other names`);
    for (const [name, tool] of this.#tools) {
      if (names.has(name)) continue;
      this.#tools.delete(name);
      if (getOwnPropertyDescriptor(globalThis, name)?.value === tool) delete globals[name];
    }
    for (const name of names) {
      if (!this.#tools.has(name)) this.#tools.set(name, createToolFunction(name, this.#callHost));
    }
    this.#restoreReserved(false);
    return [...names];
  }

  /**
   * The user's variables, sorted by name: globals that are not Node's or the REPL's own, plus context
   * variables. At most `MAX_LISTED_VARIABLES`, names and types cut to the protocol's 256 characters.
   */
  listVariables(names: readonly string[] = this.#variableNames()): VariableInfo[] {
    return names.slice(0, MAX_LISTED_VARIABLES).map((name) => {
      const descriptor = getOwnPropertyDescriptor(globalThis, name);
      const type = descriptor && 'value' in descriptor ? shortType(descriptor.value) : 'getter';
      return { name: name.slice(0, NAME_LIMIT_CHARS), type: type.slice(0, NAME_LIMIT_CHARS) };
    });
  }

  /**
   * After a cell: when `answer` is a plain object whose `ready` is truthy, its `content` (`''` when
   * absent) is the cell's answer unless FINAL/FINAL_VAR gave one, rendered as FINAL renders a value.
   * `answer` is then bound to a new object that is not ready (keeping a refused content), so the
   * next cell does not answer again. An unbound `answer` gets a new object. Returns the refusal when
   * the content is too large (also remembered as `#finalRefused`).
   */
  #takeAnswer(): FinalTooLargeError | null {
    const descriptor = getOwnPropertyDescriptor(globalThis, ANSWER);
    if (descriptor === undefined) {
      this.#bindAnswer('');
      return null;
    }
    if (!('value' in descriptor)) return null;
    const current: unknown = descriptor.value;
    let content: unknown;
    try {
      if (typeof current !== 'object' || current === null || isArray(current)) return null;
      const prototype: unknown = getPrototypeOf(current);
      if (prototype !== ObjectPrototype && prototype !== null) return null;
      const fields = current as { ready?: unknown; content?: unknown };
      if (!fields.ready) return null;
      content = fields.content;
    } catch (thrown) {
      // A proxy or getter of the cell's that throws.
      this.#stderr.write(`Note: the REPL could not read answer.ready and answer.content (${errorMessage(thrown)}), so no answer was taken.\n`);
      return null;
    }
    const rendered = renderFinal(content === undefined ? '' : content);
    if (rendered.ok) {
      this.#final ??= { value: rendered.text, via: 'FINAL' };
      this.#bindAnswer('');
      return null;
    }
    const error = new FinalTooLargeError(finalTooLargeMessage(rendered, 'answer.content'));
    this.#finalRefused ??= error;
    this.#bindAnswer(content);
    return error;
  }

  /** Binds `answer` to a new object of the REPL's with `content` and `ready: false`. */
  #bindAnswer(content: unknown): void {
    this.#answer = { content, ready: false };
    try {
      defineProperty(globalThis, ANSWER, { value: this.#answer, writable: true, configurable: true, enumerable: true });
    } catch {
      this.#stderr.write(`The REPL could not restore "${ANSWER}" (made non-configurable?).\n`);
    }
  }

  /** Renders an answer, or throws (and remembers) a FinalTooLargeError when its text is past the limit. */
  #renderAnswer(value: unknown, via: 'FINAL' | 'FINAL_VAR'): string {
    const rendered = renderFinal(value);
    if (rendered.ok) return rendered.text;
    const error = new FinalTooLargeError(finalTooLargeMessage(rendered, via));
    this.#finalRefused ??= error;
    throw error;
  }

  #variableNames(): string[] {
    const names: string[] = [];
    for (const name of getOwnPropertyNames(globalThis)) {
      if (this.#contextVariables.has(name)) {
        names.push(name);
        continue;
      }
      if (this.#reserved.has(name) || this.#tools.has(name)) continue;
      if (name === ANSWER && sameValue(getOwnPropertyDescriptor(globalThis, name)?.value, this.#answer)) continue;
      if (this.#baseline.has(name)) {
        const original = this.#baseline.get(name);
        const descriptor = getOwnPropertyDescriptor(globalThis, name);
        // A built-in accessor (e.g. `crypto`) that a cell declared over is now a data property: the user's.
        if (!descriptor || !('value' in descriptor)) continue;
        if (original !== ACCESSOR && sameValue(descriptor.value, original)) continue;
      }
      names.push(name);
    }
    return names.sort();
  }

  #finalVar(name: unknown): string | undefined {
    const fail = (message: string) => {
      this.#stderr.write(`${message}\n`);
      return message;
    };
    const listing = () => {
      const names = this.#variableNames();
      if (names.length === 0) return 'Variables: none';
      const left = names.length - MAX_LISTED_VARIABLES;
      const shown = names.slice(0, MAX_LISTED_VARIABLES).map((name) => name.slice(0, NAME_LIMIT_CHARS));
      return `Variables: ${shown.join(', ')}${left > 0 ? ` … and ${left.toLocaleString('en-US')} more` : ''}`;
    };
    if (typeof name !== 'string') {
      return fail(
        `FINAL_VAR takes the variable's name as a string, e.g. FINAL_VAR("answer"); got ${typeof name}. ` +
          `To answer with a value, use FINAL(value). ${listing()}`,
      );
    }
    const trimmed = name
      .trim()
      .replace(/^['"`]+|['"`]+$/g, '')
      .trim();
    if (!this.#variableNames().includes(trimmed)) {
      if (trimmed === ANSWER && getOwnPropertyDescriptor(globalThis, ANSWER)?.value === this.#answer) {
        return fail(
          'FINAL_VAR: "answer" is the REPL\'s answer object, not a variable of yours. To answer with it, set ' +
            `answer.content = … and answer.ready = true; or call FINAL(value). ${listing()}`,
        );
      }
      return fail(`FINAL_VAR: no variable named ${JSON.stringify(trimmed.slice(0, NAME_LIMIT_CHARS))}. ${listing()}`);
    }
    if (this.#final === null)
      this.#final = { value: this.#renderAnswer(globals[trimmed], 'FINAL_VAR'), via: 'FINAL_VAR', variable: trimmed.slice(0, NAME_LIMIT_CHARS) };
    return undefined;
  }

  #beginCell(params: ExecuteParams): void {
    const stdout = new OutputCapture(params.outputLimitChars);
    const stderr = new OutputCapture(params.outputLimitChars);
    if (this.#stdout.totalChars > 0) stdout.write(this.#stdout.finish().text);
    if (this.#stderr.totalChars > 0) stderr.write(this.#stderr.finish().text);
    this.#stdout = stdout;
    this.#stderr = stderr;
    this.#final = null;
    this.#finalRefused = null;
    this.#hostCallTimedOut = false;
    this.#deadline = performance.now() + params.timeoutMs;
  }

  #compile(cellNumber: number, code: string): vm.Script {
    const transformed = transformCell(code);
    this.#positionMaps.set(cellNumber, transformed.mapPosition);
    if (this.#positionMaps.size > MAPPED_CELLS) {
      const oldest = this.#positionMaps.keys().next().value;
      if (oldest !== undefined) this.#positionMaps.delete(oldest);
    }
    try {
      return new vm.Script(transformed.code, {
        filename: `cell-${cellNumber}.js`,
        // `import()` in a cell loads like an import of the worker's own (built-ins, absolute paths).
        importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      });
    } catch (error) {
      // Acorn accepted the cell but V8 did not (an early error acorn does not check). V8 puts
      // `cell-N.js:LINE` on the first line of the stack.
      if (error instanceof SyntaxError) {
        const line = /^cell-\d+\.js:(\d+)/.exec(String(error.stack))?.[1];
        throw new CellSyntaxError(error.message, line ? Number(line) : 1, 1);
      }
      throw error;
    }
  }

  #beforeDeadline<T>(promise: Promise<T>): Promise<T> {
    const remaining = this.#deadline - performance.now();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new NativePromise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CellDeadlineError()), Math.max(0, remaining));
    });
    return NativePromise.race([promise, deadline]).finally(() => clearTimeout(timer));
  }

  #isTimeout(thrown: unknown): boolean {
    if (thrown instanceof CellDeadlineError || thrown instanceof HostCallDeadlineError) return true;
    if (this.#hostCallTimedOut) return true;
    return errorCode(thrown) === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
  }

  readonly #mapPosition = (cellNumber: number, line: number, column: number) => this.#positionMaps.get(cellNumber)?.(line, column);

  /** Puts back every reserved name, tool and protected built-in a cell overwrote or deleted; with `note`, says so on stderr. */
  #restoreReserved(note: boolean): void {
    const restored: string[] = [];
    const restoredTools: string[] = [];
    for (const [name, value] of [...this.#protected, ...this.#reserved, ...this.#tools]) {
      const descriptor = getOwnPropertyDescriptor(globalThis, name);
      try {
        if (value === ABSENT) {
          if (!descriptor) continue;
          delete globals[name];
        } else if (!descriptor || !('value' in descriptor) || descriptor.value !== value) {
          // Tools are not enumerable, so `Object.keys(globalThis)` and friends list the user's names only.
          defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: !this.#protected.has(name) && !this.#tools.has(name) });
        } else {
          continue;
        }
        (this.#tools.has(name) ? restoredTools : restored).push(name);
      } catch {
        this.#stderr.write(`The REPL could not restore the reserved name "${name}" (made non-configurable?).\n`);
      }
    }
    if (!note) return;
    const quoted = (names: string[]) =>
      names
        .sort()
        .map((name) => `"${name}"`)
        .join(', ');
    if (restored.length > 0) {
      this.#stderr.write(
        `Note: ${quoted(restored)} ${restored.length === 1 ? 'is a name' : 'are names'} the REPL reserves; ` +
          `${restored.length === 1 ? 'it was' : 'they were'} restored after this cell. Use another name for your variable.\n`,
      );
    }
    if (restoredTools.length > 0) {
      this.#stderr.write(
        `Note: ${quoted(restoredTools)} ${restoredTools.length === 1 ? 'is a tool' : 'are tools'} of the host; ` +
          `${restoredTools.length === 1 ? 'it was' : 'they were'} restored after this cell. Use another name for your variable.\n`,
      );
    }
  }

  #describeThrown(thrown: unknown): string {
    const { type, message, stack } = renderError(thrown, this.#mapPosition);
    return [`${type}: ${message}`, ...stack.map((frame) => `    ${frame}`)].join('\n');
  }

  /** Node facilities a cell expects in a REPL, wired to the current cell's capture. */
  #installHostGlobals(): void {
    const stdout = { write: (chunk: unknown) => this.#stdout.write(chunkToText(chunk)) };
    const stderr = { write: (chunk: unknown) => this.#stderr.write(chunkToText(chunk)) };
    globals.require = createRequire(pathToFileURL(join(process.cwd(), 'repl.js')));
    const cellConsole = new Console({
      stdout: stdout as unknown as NodeJS.WritableStream,
      stderr: stderr as unknown as NodeJS.WritableStream,
      ignoreErrors: false,
      colorMode: false,
    });
    // Node's trace would list the REPL's own frames; show the cell's only.
    cellConsole.trace = (...args: unknown[]) => {
      const { stack } = renderError(new Error(), this.#mapPosition);
      this.#stderr.write(`${[`Trace: ${format(...args)}`, ...stack.map((frame) => `    ${frame}`)].join('\n')}\n`);
    };
    globals.console = cellConsole;
    const streamWrite = (capture: { write(chunk: unknown): void }) =>
      ((chunk: unknown, encodingOrCallback?: unknown, callback?: unknown) => {
        capture.write(chunk);
        const done = typeof encodingOrCallback === 'function' ? encodingOrCallback : callback;
        if (typeof done === 'function') nativeQueueMicrotask(() => (done as () => void)());
        return true;
      }) as typeof process.stdout.write;
    process.stdout.write = streamWrite(stdout);
    process.stderr.write = streamWrite(stderr);
    // process.abort() would take the whole REPL server down, not just this worker; make it end the worker.
    process.abort = () => process.exit(134);
    // Node's own warning printer would report that `import()` in a cell uses an experimental vm
    // feature; that is ours, not the cell's. Other warnings go to the cell's stderr.
    process.removeAllListeners('warning');
    process.on('warning', (warning) => {
      if (warning.name === 'ExperimentalWarning' && warning.message.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
      this.#stderr.write(`${warning.name}: ${warning.message}\n`);
    });
    // A rejected promise nobody awaited, or a throw in a timer callback, would end the worker: report it instead.
    process.on('uncaughtException', (error) => {
      this.#stderr.write(`Uncaught ${this.#describeThrown(error)}\n`);
    });
    process.on('unhandledRejection', (reason) => {
      this.#stderr.write(`Unhandled promise rejection: ${this.#describeThrown(reason)}\n`);
    });
  }
}

function chunkToText(chunk: unknown): string {
  if (typeof chunk === 'string') return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8');
  return String(chunk);
}

/**
 * Installs the hidden helper transformed cells call first: every name a cell declares at top level
 * becomes a writable data property of the global object. An existing writable global is left as it
 * is (a `var` redeclared keeps its value); a getter-only or read-only but configurable one (Node's
 * `crypto`, `navigator`…) is replaced, so the cell's own binding wins as it would in a module.
 */
function installDeclareGlobals(): void {
  const declare = (names: readonly string[]) => {
    for (const name of names) {
      const current = getOwnPropertyDescriptor(globalThis, name);
      const writable = current !== undefined && (current.set !== undefined || current.writable === true);
      if (writable) continue;
      if (current && !current.configurable) {
        throw new TypeError(`Cannot declare "${name}": it is a read-only global of the runtime; choose another name`);
      }
      defineProperty(globalThis, name, { value: undefined, writable: true, enumerable: true, configurable: true });
    }
  };
  defineProperty(globalThis, DECLARE_GLOBALS, { value: declare, writable: false, enumerable: false, configurable: false });
}
