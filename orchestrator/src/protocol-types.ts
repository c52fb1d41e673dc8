/**
 * The protocol's types that the public API shows (what a cell returns, what a sub-call asks), named
 * here so the package's types carry their documentation and do not export the protocol's zod
 * schemas, which are internal. Each is exactly the type of the message the sandbox sends.
 */
import type * as protocol from '@rlm/shared';

/** The REPL language of a sandbox or a run: `javascript` (the default) or `python` (Pyodide). */
export type Language = protocol.Language;

/**
 * An error a cell raised: `type` is its class name (`TypeError`, `TimeoutError`,
 * `OutOfMemoryError`…), `message` at most 64 KiB, `stack` at most 32 frames of the cell's own code,
 * innermost first.
 */
export type CellError = protocol.CellError;

/** One of the user's variables in the REPL: its name and a short type description (`string`, `Array(3)`, a class name…). */
export type VariableInfo = protocol.VariableInfo;

/** A final answer a cell gave with `FINAL(value)` or `FINAL_VAR(name)`, as text (non-strings rendered as JSON when they can be). */
export type FinalAnswer = protocol.FinalAnswer;

/**
 * What running one cell gave: `status` (`ok`, `error`, `timeout`), its stdout and stderr (each cut
 * to the output limit, `truncatedChars` saying how much was cut), the last expression's value, the
 * error, the final answer if one was given, the variables after the cell, and `durationMs` (wall
 * clock inside the sandbox). `stateLost: true` means the REPL was restarted during the cell (a cell
 * that ignored its interrupt, or memory ran out): every variable is gone.
 */
export type ExecuteResult = protocol.ExecuteResult;

/** The outcome of loading a context into a REPL variable: the variable, the file's size in bytes and the time taken in milliseconds. */
export type LoadContextResult = protocol.LoadContextResult;

/**
 * A sub-call a cell made: `kind` (`llm_query` or `rlm_query`), its prompts (one, or several for a
 * batched call), and the model it named, if any.
 */
export type SubcallParams = protocol.SubcallParams;

/** The outcome of one prompt of a sub-call: `{ ok: true, text }`, or `{ ok: false, error }` with a message of at most 64 KiB the cell sees. */
export type SubcallOutcome = protocol.SubcallOutcome;

/** The answer to a sub-call: one outcome per prompt, in input order. */
export type SubcallResult = protocol.SubcallResult;

/** A host tool as the sandbox knows it: the name cells call it by and the description shown to the model. */
export type ToolDefinition = protocol.ToolDefinition;

/** A call a cell made to a host tool: its name and its JSON arguments. */
export type ToolCallParams = protocol.ToolCallParams;

/** The answer to a tool call: `{ ok: true, value }` with a JSON value, or `{ ok: false, error }`, which the cell sees as an error. */
export type ToolCallResult = protocol.ToolCallResult;
