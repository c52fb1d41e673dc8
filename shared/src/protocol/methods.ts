/**
 * One descriptor per request type: its method name and the schemas of its params and result, so
 * `connection.request(Execute, params)` is typed end to end and validated on both sides.
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
}

export type ParamsOf<D> = D extends MethodDescriptor<infer P, z.ZodMiniType> ? z.infer<P> : never;
export type ResultOf<D> = D extends MethodDescriptor<z.ZodMiniType, infer R> ? z.infer<R> : never;
export type AnyMethod = MethodDescriptor<z.ZodMiniType, z.ZodMiniType>;

function method<P extends z.ZodMiniType, R extends z.ZodMiniType>(
  name: string,
  direction: MethodDescriptor<P, R>['direction'],
  params: P,
  result: R,
): MethodDescriptor<P, R> {
  return Object.freeze({ method: name, direction, params, result });
}

/** First request of every connection: the sandbox identifies itself with its token. */
export const Hello = method('hello', 'sandbox-to-host', HelloParams, HelloResult);

/** Run one cell. */
export const Execute = method('execute', 'host-to-sandbox', ExecuteParams, ExecuteResult);

/** Bind a variable to a file of the read-only context mount. */
export const LoadContext = method('load_context', 'host-to-sandbox', LoadContextParams, LoadContextResult);

/** A cell's `llm_query`/`rlm_query` family call, answered by the host. */
export const Subcall = method('subcall', 'sandbox-to-host', SubcallParams, SubcallResult);

/** Replace the set of custom tools the REPL binds as global functions. */
export const DefineTools = method('define_tools', 'host-to-sandbox', DefineToolsParams, DefineToolsResult);

/** A cell called a custom tool; the host runs its handler and answers with the JSON result or the failure. */
export const ToolCall = method('tool_call', 'sandbox-to-host', ToolCallParams, ToolCallResult);
