/**
 * Every execute result is cut to its limits again on the host. The REPL server cuts output and
 * values itself, but it is inside the container and may be hostile (a cell that takes it over can
 * answer with any well-formed result), so what reaches the engine, the model and the trajectory is
 * bounded here, whatever the server sent.
 */
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES, type CapturedOutput, type CellError, type ExecuteResult } from '@rlm/shared';

/** Longest `value` (the inspected last expression) the host passes on; the REPL renders at most 2,000 characters plus its marker. */
export const MAX_VALUE_CHARS = 4096;
/** Longest error message the host passes on (the protocol's own bound). */
export const MAX_ERROR_MESSAGE_CHARS = 64 * 1024;
/** Most stack frames, and the longest frame, the host passes on (the protocol's own bounds). */
export const MAX_STACK_FRAMES = 32;
export const MAX_STACK_FRAME_CHARS = 1024;
const MAX_NAME_CHARS = 256;

/**
 * The result as the host passes it on: stdout and stderr at most `outputLimitChars` each (plus the
 * truncation marker), `truncatedChars` counting what the host cut too; `value`, the error and the
 * variable listing within their limits; a `final` longer than `MAX_FINAL_CHARS` turned into an
 * error result of type `FinalTooLargeError` (the run does not end with it; the model reads why).
 * A result already within every limit comes back unchanged.
 */
export function recapExecuteResult(result: ExecuteResult, outputLimitChars: number): ExecuteResult {
  const capped: ExecuteResult = {
    ...result,
    stdout: capOutput(result.stdout, outputLimitChars),
    stderr: capOutput(result.stderr, outputLimitChars),
    error: result.error === null ? null : capError(result.error),
    variables: result.variables.length > MAX_LISTED_VARIABLES ? result.variables.slice(0, MAX_LISTED_VARIABLES) : result.variables,
  };
  if (result.value !== undefined) capped.value = capText(result.value, MAX_VALUE_CHARS);
  if (result.final !== null) {
    const { value, via, variable } = result.final;
    if (value.length > MAX_FINAL_CHARS) {
      capped.final = null;
      capped.status = 'error';
      capped.error = {
        type: 'FinalTooLargeError',
        message:
          `The answer given to ${via}${variable === undefined ? '' : `("${variable.slice(0, MAX_NAME_CHARS)}")`} is ${value.length.toLocaleString('en-US')} characters, ` +
          `over the limit of ${MAX_FINAL_CHARS.toLocaleString('en-US')}; the run did not end. Answer with less: a summary, or the part that was asked for.`,
        stack: [],
      };
    } else if (variable !== undefined && variable.length > MAX_NAME_CHARS) {
      capped.final = { value, via, variable: variable.slice(0, MAX_NAME_CHARS) };
    }
  }
  return capped;
}

/** `output` cut to `limitChars` the way the REPL cuts it (head, marker, tail), counting the cut characters. */
export function capOutput(output: CapturedOutput, limitChars: number): CapturedOutput {
  const { text, truncatedChars } = output;
  if (text.length <= limitChars) return output;
  // The REPL's own marker may sit inside `text`; what it cut stays counted in `truncatedChars`.
  const total = text.length + truncatedChars;
  const budget = Math.max(0, limitChars - truncationMarker(total).length);
  const head = Math.ceil(budget / 2);
  const tail = budget - head;
  const cut = truncatedChars + (text.length - head - tail);
  return { text: text.slice(0, head) + truncationMarker(cut) + (tail > 0 ? text.slice(-tail) : ''), truncatedChars: cut };
}

/** The marker the REPL puts where it cut output (same text, so the model sees one convention). */
export function truncationMarker(truncatedChars: number): string {
  return `\n[... ${truncatedChars.toLocaleString('en-US')} characters truncated ...]\n`;
}

function capError(error: CellError): CellError {
  const within =
    error.type.length <= MAX_NAME_CHARS &&
    error.message.length <= MAX_ERROR_MESSAGE_CHARS &&
    error.stack.length <= MAX_STACK_FRAMES &&
    error.stack.every((frame) => frame.length <= MAX_STACK_FRAME_CHARS);
  if (within) return error;
  return {
    type: error.type.slice(0, MAX_NAME_CHARS),
    message: capText(error.message, MAX_ERROR_MESSAGE_CHARS),
    stack: error.stack.slice(0, MAX_STACK_FRAMES).map((frame) => frame.slice(0, MAX_STACK_FRAME_CHARS)),
  };
}

function capText(text: string, limitChars: number): string {
  if (text.length <= limitChars) return text;
  // Room for the marker, whose longest form ("… (9,007,199,254,740,991 characters cut)") is 42 characters.
  const keep = Math.max(0, limitChars - 42);
  return `${text.slice(0, keep)}… (${(text.length - keep).toLocaleString('en-US')} characters cut)`;
}
