/**
 * Every message of the control channel, as zod schemas. Both ends parse what they receive with
 * these; nothing crosses the socket unvalidated.
 */
// zod/mini: the same validation as classic zod at a sixteenth of the size, which matters for the
// sandbox's cold start (classic zod alone took ~35 ms of it).
import * as z from 'zod/mini';
import { isJsonValue, type JsonValue as JsonValueType } from '../json/json-value.js';
import {
  MAX_BATCH_PROMPTS,
  MAX_CODE_CHARS,
  MAX_FINAL_CHARS,
  MAX_LISTED_VARIABLES,
  MAX_OUTPUT_LIMIT_CHARS,
  MAX_TOOL_ARGS,
  MAX_TOOL_DESCRIPTION_CHARS,
  MAX_TOOLS,
} from '../limits.js';
import { toolNameProblem } from './tool-names.js';

/** A JavaScript identifier the REPL can bind a value to. */
export const VariableName = z
  .string()
  .check(z.regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'must be an identifier (letters, digits, _ or $, not starting with a digit)'), z.maxLength(128));

export const Language = z.enum(['javascript', 'python']);
export type Language = z.infer<typeof Language>;

// ---------------------------------------------------------------------------------------------
// Envelope

export const RequestId = z.int().check(z.nonnegative(), z.maximum(Number.MAX_SAFE_INTEGER));

export const RequestEnvelope = z.object({
  type: z.literal('request'),
  id: RequestId,
  method: z.string().check(z.minLength(1), z.maxLength(64)),
  params: z.unknown(),
});

export const ErrorPayload = z.object({
  /** Stable machine-readable code, e.g. `invalid_params`, `method_not_found`, `internal`. */
  code: z.string().check(z.maxLength(64)),
  message: z.string().check(z.maxLength(64 * 1024)),
});
export type ErrorPayload = z.infer<typeof ErrorPayload>;

export const ResponseEnvelope = z.union([
  z.object({ type: z.literal('response'), id: RequestId, result: z.unknown() }),
  z.object({ type: z.literal('response'), id: RequestId, error: ErrorPayload }),
]);

/** Sent once, by either end, just before it closes the connection because of a protocol violation. */
export const ProtocolErrorEnvelope = z.object({
  type: z.literal('protocol_error'),
  message: z.string().check(z.maxLength(64 * 1024)),
});

/**
 * Sent by the end that made request `id` when its caller no longer wants the answer (the caller's
 * signal fired: a cell ended, a run was cancelled). The other end aborts the handler's signal and
 * sends no answer; an answer already on its way is dropped by the requester as a late one.
 */
export const CancelEnvelope = z.object({
  type: z.literal('cancel'),
  id: RequestId,
});

export const Envelope = z.union([RequestEnvelope, ResponseEnvelope, ProtocolErrorEnvelope, CancelEnvelope]);
export type Envelope = z.infer<typeof Envelope>;

// ---------------------------------------------------------------------------------------------
// sandbox -> host: hello

export const HelloParams = z.object({
  protocolVersion: z.int(),
  /** The per-sandbox secret the host passed on the command line; proves the peer is our container. */
  token: z.string().check(z.minLength(16), z.maxLength(256)),
  runtime: z.object({
    node: z.string().check(z.maxLength(64)),
    languages: z.array(Language).check(z.maxLength(8)),
  }),
});
export type HelloParams = z.infer<typeof HelloParams>;

export const HelloResult = z.object({ accepted: z.literal(true) });
export type HelloResult = z.infer<typeof HelloResult>;

// ---------------------------------------------------------------------------------------------
// host -> sandbox: execute

export const ExecuteParams = z.object({
  code: z.string().check(z.maxLength(MAX_CODE_CHARS)),
  language: Language,
  /** Wall-clock limit of this cell in milliseconds. */
  timeoutMs: z.int().check(z.positive(), z.maximum(24 * 60 * 60 * 1000)),
  /** Per-stream cap on captured output, in characters. */
  outputLimitChars: z.int().check(z.positive(), z.maximum(MAX_OUTPUT_LIMIT_CHARS)),
});
export type ExecuteParams = z.infer<typeof ExecuteParams>;

export const CellError = z.object({
  /** The error's class name, e.g. `TypeError`, `SyntaxError`, `TimeoutError`, `OutOfMemoryError`. */
  type: z.string().check(z.maxLength(256)),
  message: z.string().check(z.maxLength(64 * 1024)),
  /** Frames from the cell's own code, innermost first, e.g. `at f (cell 3, line 2:7)`. */
  stack: z.array(z.string().check(z.maxLength(1024))).check(z.maxLength(32)),
});
export type CellError = z.infer<typeof CellError>;

export const CapturedOutput = z.object({
  /** What the cell wrote, cut to the output limit with a marker saying how much was cut. */
  text: z.string(),
  /** Characters that were written but are not in `text`. */
  truncatedChars: z.int().check(z.nonnegative()),
});
export type CapturedOutput = z.infer<typeof CapturedOutput>;

export const VariableInfo = z.object({
  name: z.string().check(z.maxLength(256)),
  /** A short type description: `string`, `number`, `Array(3)`, `Map`, `function`, a class name… */
  type: z.string().check(z.maxLength(256)),
});
export type VariableInfo = z.infer<typeof VariableInfo>;

export const FinalAnswer = z.object({
  /** The answer, as text (a non-string value is rendered as JSON when it can be, else inspected); at most MAX_FINAL_CHARS. */
  value: z.string().check(z.maxLength(MAX_FINAL_CHARS)),
  /** `FINAL` for `FINAL(value)`, `FINAL_VAR` for `FINAL_VAR(name)`. */
  via: z.enum(['FINAL', 'FINAL_VAR']),
  variable: z.optional(z.string().check(z.maxLength(256))),
});
export type FinalAnswer = z.infer<typeof FinalAnswer>;

export const ExecuteResult = z.object({
  status: z.enum(['ok', 'error', 'timeout']),
  stdout: CapturedOutput,
  stderr: CapturedOutput,
  /** The value of the cell's last expression, inspected, when it is not `undefined`. */
  value: z.optional(z.string()),
  error: z.nullable(CellError),
  /** Set when the cell called `FINAL`/`FINAL_VAR` successfully. */
  final: z.nullable(FinalAnswer),
  /**
   * True when the REPL had to be restarted during this cell (a runaway cell that ignored its
   * interrupt, or memory exhausted): every variable is gone; contexts were loaded again.
   */
  stateLost: z.boolean(),
  /** The user's variables after the cell, as `SHOW_VARS()` lists them. */
  variables: z.array(VariableInfo).check(z.maxLength(MAX_LISTED_VARIABLES)),
  /** Wall-clock time of the cell inside the sandbox, in milliseconds. */
  durationMs: z.number().check(z.nonnegative()),
});
export type ExecuteResult = z.infer<typeof ExecuteResult>;

// ---------------------------------------------------------------------------------------------
// host -> sandbox: load_context

export const ContextFormat = z.enum(['text', 'json']);
export type ContextFormat = z.infer<typeof ContextFormat>;

export const LoadContextParams = z.object({
  /** The REPL variable to bind, e.g. `context` or `context_1`. */
  variable: VariableName,
  /** File name inside the context mount (no directories), e.g. `context-0.txt`. */
  file: z.string().check(z.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a plain file name inside the context directory')),
  /** `text`: the file's UTF-8 content is the value. `json`: the file is parsed as JSON. */
  format: ContextFormat,
});
export type LoadContextParams = z.infer<typeof LoadContextParams>;

export const LoadContextResult = z.object({
  variable: z.string(),
  /** Size of the file read, in bytes. */
  bytes: z.int().check(z.nonnegative()),
  durationMs: z.number().check(z.nonnegative()),
});
export type LoadContextResult = z.infer<typeof LoadContextResult>;

// ---------------------------------------------------------------------------------------------
// sandbox -> host: subcall (llm_query, llm_query_batched, rlm_query, rlm_query_batched)

export const SubcallKind = z.enum(['llm_query', 'rlm_query']);
export type SubcallKind = z.infer<typeof SubcallKind>;

export const SubcallParams = z.object({
  kind: SubcallKind,
  /** One prompt for a plain call, several for a batched one. */
  prompts: z.array(z.string()).check(z.minLength(1), z.maxLength(MAX_BATCH_PROMPTS)),
  batched: z.boolean(),
  /** The model the cell asked for; absent means the configured default for the kind. */
  model: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
});
export type SubcallParams = z.infer<typeof SubcallParams>;

export const SubcallOutcome = z.union([
  z.object({ ok: z.literal(true), text: z.string() }),
  z.object({ ok: z.literal(false), error: z.string().check(z.maxLength(64 * 1024)) }),
]);
export type SubcallOutcome = z.infer<typeof SubcallOutcome>;

export const SubcallResult = z.object({
  /** One outcome per prompt, in input order. */
  outcomes: z.array(SubcallOutcome),
});
export type SubcallResult = z.infer<typeof SubcallResult>;

// ---------------------------------------------------------------------------------------------
// Custom tools: host -> sandbox define_tools, sandbox -> host tool_call

/**
 * A plain JSON value (see `isJsonValue`). What arrives over the socket was parsed from JSON, so the
 * check only refuses non-finite numbers, depth past `MAX_JSON_DEPTH` and what a sender built wrongly.
 */
export const JsonValue = z.custom<JsonValueType>((value) => isJsonValue(value), 'must be a JSON value');
export type JsonValue = JsonValueType;

/** A custom tool's name: an identifier that shadows no reserved name, keyword or built-in global (see `toolNameProblem`). */
export const ToolName = z.string().check(
  z.superRefine((name, context) => {
    const problem = toolNameProblem(name);
    if (problem) context.issues.push({ code: 'custom', message: `tool ${JSON.stringify(name.slice(0, 140))}: the name ${problem}`, input: name });
  }),
);

export const ToolDefinition = z.object({
  name: ToolName,
  /** What the tool does, for the model's prompt; the sandbox does not use it. */
  description: z.optional(z.string().check(z.maxLength(MAX_TOOL_DESCRIPTION_CHARS))),
});
export type ToolDefinition = z.infer<typeof ToolDefinition>;

export const DefineToolsParams = z.object({
  /** The whole set: a tool defined earlier and missing here is removed. */
  tools: z.array(ToolDefinition).check(
    z.maxLength(MAX_TOOLS),
    z.superRefine((tools, context) => {
      const seen = new Set<string>();
      for (const [index, { name }] of tools.entries()) {
        if (seen.has(name))
          context.issues.push({ code: 'custom', message: `tool ${JSON.stringify(name)} is defined twice`, input: tools, path: [index, 'name'] });
        seen.add(name);
      }
    }),
  ),
});
export type DefineToolsParams = z.infer<typeof DefineToolsParams>;

export const DefineToolsResult = z.object({
  /** The names now bound in the REPL, in request order. */
  defined: z.array(z.string()).check(z.maxLength(MAX_TOOLS)),
});
export type DefineToolsResult = z.infer<typeof DefineToolsResult>;

export const ToolCallParams = z.object({
  name: ToolName,
  args: z.array(JsonValue).check(z.maxLength(MAX_TOOL_ARGS)),
});
export type ToolCallParams = z.infer<typeof ToolCallParams>;

export const ToolCallResult = z.union([
  z.object({ ok: z.literal(true), value: JsonValue }),
  z.object({ ok: z.literal(false), error: z.string().check(z.maxLength(64 * 1024)) }),
]);
export type ToolCallResult = z.infer<typeof ToolCallResult>;
