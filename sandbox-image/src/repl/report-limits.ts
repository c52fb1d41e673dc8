/**
 * The main thread's check of what a cell worker reports. The worker runs the cell's code in its own
 * realm (JavaScript) or next to it (Python, whose runtime module a cell can rewrite), so its reports
 * are the cell's to forge: anything may arrive. Before a report becomes an `ExecuteResult`, it is
 * checked for shape and cut to the protocol's limits here, where no cell reaches, so a hostile cell
 * can make its own result say anything within the limits but never make it fail validation.
 */
import * as z from 'zod/mini';
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES, type CapturedOutput, type CellError, type FinalAnswer, type VariableInfo } from '@rlm/shared';
import { OutputCapture } from './output-capture.js';
import { FRAME_LIMIT_CHARS, MAX_FRAMES, MESSAGE_LIMIT_CHARS, NAME_LIMIT_CHARS, VALUE_LIMIT_CHARS, capText, finalTooLargeMessage } from './render.js';
import type { CellReport } from './worker-messages.js';

const Output = z.object({ text: z.string(), truncatedChars: z.number() });
const ReportedError = z.object({ type: z.string(), message: z.string(), stack: z.array(z.string()) });
const ReportShape = z.object({
  status: z.enum(['ok', 'error', 'timeout']),
  stdout: Output,
  stderr: Output,
  value: z.optional(z.string()),
  error: z.nullable(ReportedError),
  final: z.nullable(z.object({ value: z.string(), via: z.enum(['FINAL', 'FINAL_VAR']), variable: z.optional(z.string()) })),
  variables: z.array(z.object({ name: z.string(), type: z.string() })),
  restartWorker: z.optional(z.boolean()),
});

/**
 * `raw` as a report within the protocol's limits: output cut to `outputLimitChars` (what was cut
 * counted), the value to 2,000 characters, the error to its type, message and frame limits, the
 * variables to `MAX_LISTED_VARIABLES` with names and types of at most 256 characters. An answer past
 * `MAX_FINAL_CHARS` is dropped and the cell reported as a `FinalTooLargeError`. A report of the wrong
 * shape becomes an `InternalError` report. Never throws.
 */
export function limitReport(raw: unknown, outputLimitChars: number): CellReport {
  const parsed = ReportShape.safeParse(trimArrays(raw));
  if (!parsed.success) return internalErrorReport('the REPL worker sent a malformed report of the cell');
  const report = parsed.data;
  let status = report.status;
  let error = report.error === null ? null : limitError(report.error);
  let final: FinalAnswer | null = null;
  if (report.final !== null) {
    const { value, via, variable } = report.final;
    if (value.length <= MAX_FINAL_CHARS) {
      final = { value, via, ...(variable === undefined ? {} : { variable: variable.slice(0, NAME_LIMIT_CHARS) }) };
    } else if (error === null) {
      status = 'error';
      error = { type: 'FinalTooLargeError', message: finalTooLargeMessage({ chars: value.length, atLeast: false }, via), stack: [] };
    }
  }
  return {
    status,
    stdout: limitOutput(report.stdout, outputLimitChars),
    stderr: limitOutput(report.stderr, outputLimitChars),
    ...(report.value === undefined ? {} : { value: capText(report.value, VALUE_LIMIT_CHARS) }),
    error,
    final,
    variables: report.variables.map(limitVariable),
    ...(report.restartWorker === true ? { restartWorker: true } : {}),
  };
}

/** A cell error within the protocol's limits: type 256 characters, message 64 KiB, 32 frames of 1 KiB. */
export function limitError(error: CellError): CellError {
  return {
    type: error.type.slice(0, NAME_LIMIT_CHARS),
    message: capText(error.message, MESSAGE_LIMIT_CHARS),
    stack: error.stack.slice(0, MAX_FRAMES).map((frame) => frame.slice(0, FRAME_LIMIT_CHARS)),
  };
}

/** A variable's name and type cut to the protocol's 256 characters. */
export function limitVariable(variable: VariableInfo): VariableInfo {
  return { name: variable.name.slice(0, NAME_LIMIT_CHARS), type: variable.type.slice(0, NAME_LIMIT_CHARS) };
}

/** A message of the worker (a context or tool failure) cut to the protocol's 64 KiB. */
export function limitMessage(message: unknown): string {
  return capText(typeof message === 'string' ? message : String(message), MESSAGE_LIMIT_CHARS);
}

/** The report of a cell the REPL itself failed to run (not the cell's own failure). */
export function internalErrorReport(message: string): CellReport {
  const none = { text: '', truncatedChars: 0 };
  return {
    status: 'error',
    stdout: none,
    stderr: none,
    error: { type: 'InternalError', message: limitMessage(message), stack: [] },
    final: null,
    variables: [],
  };
}

function limitOutput(output: CapturedOutput, limitChars: number): CapturedOutput {
  const reported = Number.isSafeInteger(output.truncatedChars) && output.truncatedChars > 0 ? output.truncatedChars : 0;
  if (output.text.length <= limitChars) return { text: output.text, truncatedChars: reported };
  const capture = new OutputCapture(limitChars);
  capture.write(output.text);
  const cut = capture.finish();
  return { text: cut.text, truncatedChars: Math.min(Number.MAX_SAFE_INTEGER, cut.truncatedChars + reported) };
}

/** Cuts the report's lists before they are parsed, so a forged list of millions costs no parse of millions. */
function trimArrays(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const report = raw as { variables?: unknown; error?: unknown };
  const trimmed: Record<string, unknown> = { ...report };
  if (Array.isArray(report.variables)) trimmed.variables = report.variables.slice(0, MAX_LISTED_VARIABLES);
  const error = report.error as { stack?: unknown } | null | undefined;
  if (typeof error === 'object' && error !== null && Array.isArray(error.stack)) trimmed.error = { ...error, stack: error.stack.slice(0, MAX_FRAMES) };
  return trimmed;
}
