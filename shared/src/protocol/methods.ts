/**
 * One descriptor per request type: its method name, the schemas of its params and result, and how
 * large a frame carrying either may be, so `connection.request(Execute, params)` is typed end to end,
 * validated on both sides, and size-checked before the receiver parses anything.
 */
import type * as z from 'zod/mini';
import {
  DefineToolsParams,
  DefineToolsResult,
  ExecuteParams,
  ExecuteResult,
  HelloParams,
  HelloResult,
  LoadContextParams,
  LoadContextResult,
  SubcallParams,
  SubcallResult,
  ToolCallParams,
  ToolCallResult,
} from './messages.js';

export interface MethodDescriptor<P extends z.ZodMiniType, R extends z.ZodMiniType> {
  readonly method: string;
  readonly params: P;
  readonly result: R;
  /** Which end sends the request. */
  readonly direction: 'host-to-sandbox' | 'sandbox-to-host';
  /**
   * Largest request frame (the whole envelope, in bytes of UTF-8) for this method. The sender refuses
   * to send a larger one (`MessageTooLargeError`); the receiver closes the channel on one, before
   * parsing it.
   */
  readonly maxRequestBytes: number;
  /**
   * Largest response frame (the whole envelope, in bytes of UTF-8). The answering end replies
   * `result_too_large` instead of sending a larger result, and cuts an error's message to fit; the
   * requesting end closes the channel on a larger one, before parsing it.
   */
  readonly maxResultBytes: number;
}

export type ParamsOf<D> = D extends MethodDescriptor<infer P, z.ZodMiniType> ? z.infer<P> : never;
export type ResultOf<D> = D extends MethodDescriptor<z.ZodMiniType, infer R> ? z.infer<R> : never;
export type AnyMethod = MethodDescriptor<z.ZodMiniType, z.ZodMiniType>;

const KiB = 1024;
const MiB = 1024 * 1024;

function method<P extends z.ZodMiniType, R extends z.ZodMiniType>(
  name: string,
  direction: MethodDescriptor<P, R>['direction'],
  params: P,
  result: R,
  limits: { maxRequestBytes: number; maxResultBytes: number },
): MethodDescriptor<P, R> {
  return Object.freeze({ method: name, direction, params, result, ...limits });
}

// How the size limits below were estimated: a UTF-16 code unit takes at most 3 bytes of UTF-8 (a
// surrogate pair 4 for two units), so a string field of N characters costs at most 3N bytes; JSON
// escapes of control characters (`\u0001`) take 6, which only text made mostly of control
// characters would come near. The envelope and field names add well under a kilobyte.

/** First request of every connection: the sandbox identifies itself with its token. Every field is short. */
export const Hello = method('hello', 'sandbox-to-host', HelloParams, HelloResult, { maxRequestBytes: 8 * KiB, maxResultBytes: 8 * KiB });

/**
 * Run one cell.
 *
 * Request: the code, at most `MAX_CODE_CHARS` (1 Mi) characters, even at 6 bytes each: 8 MiB.
 *
 * Result: 48 MiB. Two streams at `MAX_OUTPUT_LIMIT_CHARS` (4 Mi characters each, 3 bytes each: 24 MiB),
 * a final answer of `MAX_FINAL_CHARS` (1 Mi characters: 3 MiB), up to 10,000 listed variables of
 * two 256-character strings (15 MiB; 1.5 MiB at `MAX_LISTED_VARIABLES`), the cell's error (≤ 0.3 MiB)
 * and its inspected value (2,000 characters): about 43 MiB at worst. Output at the maximum output
 * limit made mostly of control characters can exceed it; the sandbox then answers `result_too_large`.
 */
export const Execute = method('execute', 'host-to-sandbox', ExecuteParams, ExecuteResult, { maxRequestBytes: 8 * MiB, maxResultBytes: 48 * MiB });

/** Bind a variable to a file of the read-only context mount: a variable name and a file name each way. */
export const LoadContext = method('load_context', 'host-to-sandbox', LoadContextParams, LoadContextResult, {
  maxRequestBytes: 8 * KiB,
  maxResultBytes: 8 * KiB,
});

/**
 * A cell's `llm_query`/`rlm_query` family call, answered by the host.
 *
 * Request: 32 MiB for all the prompts of one call (a batch of up to `MAX_BATCH_PROMPTS`), about
 * 10 Mi characters of non-ASCII text or 32 Mi of ASCII: far beyond any model's context window, so
 * a legitimate call never needs more; a cell with more splits its batch.
 *
 * Result: 32 MiB for the batch's answers (model answers are bounded by their output tokens; 10,000
 * answers of 1,000 non-ASCII characters fit). The host answers `result_too_large` beyond it.
 */
export const Subcall = method('subcall', 'sandbox-to-host', SubcallParams, SubcallResult, { maxRequestBytes: 32 * MiB, maxResultBytes: 32 * MiB });

/**
 * Replace the set of custom tools the REPL binds as global functions: `MAX_TOOLS` (256) names and
 * descriptions of `MAX_TOOL_DESCRIPTION_CHARS` (8 Ki characters, 3 bytes each: 6 MiB); back, the names.
 */
export const DefineTools = method('define_tools', 'host-to-sandbox', DefineToolsParams, DefineToolsResult, {
  maxRequestBytes: 8 * MiB,
  maxResultBytes: 256 * KiB,
});

/**
 * A cell called a custom tool; the host runs its handler and answers with the JSON result or the
 * failure. Both ways 8 MiB of JSON: tools exchange data, not documents (those go through the context).
 */
export const ToolCall = method('tool_call', 'sandbox-to-host', ToolCallParams, ToolCallResult, { maxRequestBytes: 8 * MiB, maxResultBytes: 8 * MiB });

/** Every method of the protocol. */
export const METHODS: readonly AnyMethod[] = Object.freeze([Hello, Execute, LoadContext, Subcall, DefineTools, ToolCall]);

/**
 * Largest frame `end` can legitimately receive, in bytes: the largest request the other end may send
 * it and the largest result of a request it sends. Use it as the WebSocket's `maxPayload`, so a
 * larger frame is refused from its header, never buffered.
 */
export function maxInboundFrameBytes(end: 'host' | 'sandbox'): number {
  const inbound = end === 'host' ? 'sandbox-to-host' : 'host-to-sandbox';
  return Math.max(...METHODS.map((descriptor) => (descriptor.direction === inbound ? descriptor.maxRequestBytes : descriptor.maxResultBytes)));
}

/** Largest frame the host accepts (48 MiB: an `execute` result). The host's WebSocket `maxPayload`. */
export const MAX_HOST_INBOUND_FRAME_BYTES = maxInboundFrameBytes('host');

/** Largest frame the sandbox accepts (32 MiB: a `subcall` result). The sandbox's WebSocket `maxPayload`. */
export const MAX_SANDBOX_INBOUND_FRAME_BYTES = maxInboundFrameBytes('sandbox');

/** Largest frame of the protocol in either direction, in bytes: the largest per-method limit. */
export const MAX_FRAME_BYTES = Math.max(MAX_HOST_INBOUND_FRAME_BYTES, MAX_SANDBOX_INBOUND_FRAME_BYTES);
