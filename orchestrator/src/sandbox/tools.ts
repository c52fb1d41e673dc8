/**
 * Custom tools: host-side functions a cell calls by name, synchronously, as if they were the REPL's
 * own. Arguments and results cross the control channel as JSON; the handler runs here, on the host,
 * with the host's network and secrets, so what it does on a cell's behalf is the caller's choice.
 *
 * This module validates a tool set before anything starts and answers the sandbox's `tool_call`
 * requests; {@link Sandbox} wires it to each container.
 */
import {
  MAX_TOOL_DESCRIPTION_CHARS,
  MAX_TOOLS,
  ToolCall,
  formatBytes,
  toJsonValue,
  toolNameProblem,
  type ToolCallParams,
  type ToolCallResult,
  type ToolDefinition,
} from '@rlm/shared';
import { AbortedError, errorMessage, InvalidOptionError } from '../errors.js';
import type { JsonValue } from './context-files.js';

/** A host-side function cells can call by its name. */
export interface SandboxTool {
  /** What the tool does and how to call it, for the model's prompt (at most 8,192 characters). The sandbox does not use it. */
  description?: string;
  /**
   * Runs on the host for each call a cell makes; `args` are the call's arguments as JSON values.
   * Returns (or resolves to) the JSON value the call returns in the cell. A throw or rejection
   * becomes a `ToolError` in the cell carrying the error's message (so do not put secrets in it);
   * so does a value that is not JSON (`undefined`, a function, a cycle, a `Map`…).
   *
   * `signal` fires when the call's cell ends (its deadline passed, or it finished without waiting)
   * or the sandbox's control channel closes: stop work then, the answer is no longer awaited.
   */
  handler: (args: JsonValue[], options: { signal: AbortSignal }) => Promise<JsonValue> | JsonValue;
}

/** Tools by name. A name must be an identifier that is not reserved by the REPL, a keyword or a built-in global. */
export type SandboxTools = Readonly<Record<string, SandboxTool>>;

// Room for the envelope and the tool's name around a result.
const ENVELOPE_BYTES = 4096;
/** Below the protocol's 64 KiB cap on an error text. */
const MAX_ERROR_CHARS = 60_000;

/**
 * Checks a tool set and returns what the sandbox needs to bind it.
 * @throws {InvalidOptionError} naming `tools.<name>` for the first tool that does not fit (a reserved
 *   name, a keyword, a built-in global, no handler, a description that is not a string or too long),
 *   or `tools` when the set itself is not an object or has more than 256 tools.
 */
export function toolDefinitions(tools: SandboxTools): ToolDefinition[] {
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools)) {
    throw new InvalidOptionError('tools', 'must be an object mapping each tool name to { description?, handler }');
  }
  const names = Object.keys(tools);
  if (names.length > MAX_TOOLS) throw new InvalidOptionError('tools', `${names.length} tools is more than the ${MAX_TOOLS} a sandbox may have`);
  return names.map((name) => {
    const option = `tools.${name.slice(0, 140)}`;
    const problem = toolNameProblem(name);
    if (problem) throw new InvalidOptionError(option, `the name ${problem}; choose another name`);
    const tool: unknown = tools[name];
    if (typeof tool !== 'object' || tool === null || typeof (tool as SandboxTool).handler !== 'function') {
      throw new InvalidOptionError(option, 'must be { description?: string, handler: (args, { signal }) => JSON value }');
    }
    const { description } = tool as SandboxTool;
    if (description === undefined) return { name };
    if (typeof description !== 'string') throw new InvalidOptionError(`${option}.description`, `must be a string, got ${typeof description}`);
    if (description.length > MAX_TOOL_DESCRIPTION_CHARS) {
      throw new InvalidOptionError(`${option}.description`, `is ${description.length} characters, more than the ${MAX_TOOL_DESCRIPTION_CHARS} allowed`);
    }
    return { name, description };
  });
}

/**
 * Answers the sandbox's tool calls with the current tool set. Never throws: every failure of a
 * handler is a `{ ok: false, error }` result for the cell.
 */
export class ToolDispatcher {
  #tools: SandboxTools;
  /** Calls being answered, aborted when their cell ends. */
  readonly #running = new Set<AbortController>();

  constructor(tools: SandboxTools = {}) {
    this.#tools = tools;
  }

  /** Replaces the tool set (validated with {@link toolDefinitions} first). */
  set tools(tools: SandboxTools) {
    this.#tools = tools;
  }

  get tools(): SandboxTools {
    return this.#tools;
  }

  /** Runs the named handler; `signal` is the channel's (it fires when the channel closes). */
  async call(params: ToolCallParams, signal: AbortSignal): Promise<ToolCallResult> {
    const tool = Object.hasOwn(this.#tools, params.name) ? this.#tools[params.name] : undefined;
    if (!tool) return { ok: false, error: `no tool named ${params.name} is defined on the host` };
    const cell = new AbortController();
    this.#running.add(cell);
    try {
      const value: unknown = await tool.handler(params.args, { signal: AbortSignal.any([signal, cell.signal]) });
      return toResult(params.name, value);
    } catch (error) {
      return { ok: false, error: truncate(errorMessage(error)) };
    } finally {
      this.#running.delete(cell);
    }
  }

  /** Fires the signal of every call still running: their cell is over and nobody awaits them. */
  abortRunning(): void {
    for (const controller of this.#running) controller.abort(new AbortedError('the cell that made this tool call is over'));
    this.#running.clear();
  }
}

/** The handler's value as a result, or an error result saying why it cannot cross the channel. */
function toResult(name: string, value: unknown): ToolCallResult {
  const converted = toJsonValue(value);
  if (!converted.ok) {
    const where = converted.path === '' ? 'the value' : `the value at ${converted.path}`;
    return { ok: false, error: `the host's handler returned something that is not JSON: ${where} ${converted.problem}` };
  }
  const text = JSON.stringify(converted.value);
  // The channel's limit for a tool call's answer; a larger one would be refused on the way out.
  const limit = ToolCall.maxResultBytes;
  if (text.length * 3 + ENVELOPE_BYTES > limit) {
    const bytes = Buffer.byteLength(text) + ENVELOPE_BYTES;
    if (bytes > limit) {
      return {
        ok: false,
        error: `the result of ${name} is ${formatBytes(bytes)} of JSON, over the control channel's limit of ${formatBytes(limit)} for a tool's answer; return less per call`,
      };
    }
  }
  return { ok: true, value: converted.value };
}

function truncate(message: string): string {
  return message.length <= MAX_ERROR_CHARS ? message : `${message.slice(0, MAX_ERROR_CHARS)}… (${message.length - MAX_ERROR_CHARS} characters cut)`;
}
