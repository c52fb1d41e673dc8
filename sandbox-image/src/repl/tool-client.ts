/**
 * The worker's side of custom tools: each tool the host defined becomes a synchronous global
 * function that converts its arguments to JSON, asks the host through the {@link HostCaller} and
 * returns the host's JSON value, or throws a {@link ToolError} when the host reports a failure.
 */
import { Buffer } from 'node:buffer';
import { MAX_TOOL_ARGS, ToolCall, formatBytes, toJsonValue, type JsonValue } from '@rlm/shared';

/** The host refuses a tool-call request frame larger than this before parsing it. */
const MAX_REQUEST_BYTES = ToolCall.maxRequestBytes;
import type { HostCaller } from './host-calls.js';

/** A tool's host-side failure, thrown in the cell so it can be caught: `ToolError: lookup_customer failed: <reason>`. */
export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    /** The tool that failed. */
    readonly tool: string,
    reason: string,
  ) {
    super(`${tool} failed: ${reason}`);
  }
}

// Room for the envelope and the tool's name around the arguments.
const ENVELOPE_BYTES = 4096;

/**
 * The global function for tool `name`. Arguments are converted with `toJsonValue` (a value JSON
 * cannot carry is a TypeError naming the argument); trailing `undefined` arguments are dropped and
 * other `undefined` ones sent as `null`, so `f(a, undefined)` is `f(a)`.
 */
export function createToolFunction(name: string, callHost: HostCaller): (...args: unknown[]) => JsonValue {
  const tool = {
    // A method, not an arrow: it is named after the tool and cannot be called with `new`.
    [name](...args: unknown[]): JsonValue {
      let count = args.length;
      while (count > 0 && args[count - 1] === undefined) count -= 1;
      if (count > MAX_TOOL_ARGS) {
        throw new RangeError(`${name}: ${count} arguments is more than the ${MAX_TOOL_ARGS} one tool call may pass; pass an array or an object instead`);
      }
      const json: JsonValue[] = [];
      for (let index = 0; index < count; index += 1) {
        const arg = args[index];
        if (arg === undefined) {
          json.push(null);
          continue;
        }
        const converted = toJsonValue(arg);
        if (!converted.ok) {
          throw new TypeError(
            `${name}: argument ${index + 1} is not JSON: ${converted.path === '' ? 'it' : converted.path} ${converted.problem}; ` +
              'tool arguments must be JSON values (strings, numbers, booleans, null, arrays and plain objects of them)',
          );
        }
        json.push(converted.value);
      }
      checkSize(name, json);
      const reply = callHost('tool', { name, args: json });
      if ('error' in reply) throw new ToolError(name, reply.error);
      if (!reply.result.ok) throw new ToolError(name, reply.result.error);
      return reply.result.value;
    },
  };
  return tool[name] as (...args: unknown[]) => JsonValue;
}

function checkSize(name: string, args: JsonValue[]): void {
  const text = JSON.stringify(args);
  // A UTF-16 unit is at most 3 bytes of UTF-8; below that bound no exact count is needed.
  if (text.length * 3 + ENVELOPE_BYTES <= MAX_REQUEST_BYTES) return;
  const bytes = Buffer.byteLength(text) + ENVELOPE_BYTES;
  if (bytes > MAX_REQUEST_BYTES) {
    throw new RangeError(
      `${name}: the arguments are ${formatBytes(bytes)} of JSON, over the control channel's limit of ${formatBytes(MAX_REQUEST_BYTES)}; pass less per call`,
    );
  }
}
