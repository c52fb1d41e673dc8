/**
 * What the orchestrator's `toError`/`errorMessage`/`errorCode` do, for the code in the sandbox
 * image (which cannot import the orchestrator). Use these instead of `(error as Error)` casts.
 *
 * Unlike the orchestrator's, these also take an Error made in another realm (a cell's `vm`
 * context throws those: `instanceof Error` is false for them), so a cell's error keeps its message.
 */

/**
 * `value` as an `Error`: an `Error` (of this realm or another) is returned as it is; anything else
 * thrown (a string, an object, `undefined`) becomes an `Error` whose message shows it and whose
 * `cause` is the value.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error || isForeignError(value)) return value;
  let shown: string;
  try {
    shown = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    shown = safeString(value);
  }
  return new Error(shown.length > 1000 ? `${shown.slice(0, 1000)}…` : shown, { cause: value });
}

/** The message of whatever was thrown (see {@link toError}); never throws, even for a hostile value. */
export function errorMessage(value: unknown): string {
  try {
    const message = toError(value).message;
    return typeof message === 'string' ? message : safeString(message);
  } catch {
    // A proxy or a getter that throws: say so rather than fail while reporting a failure.
    return '[an error whose message cannot be read]';
  }
}

/** The `code` of a Node system error (`ENOENT`, `ERR_SCRIPT_EXECUTION_TIMEOUT`…), or undefined. */
export function errorCode(value: unknown): string | undefined {
  try {
    const code = typeof value === 'object' && value !== null ? (value as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/** An Error of another realm: its internal class is Error, though not this realm's `Error`. */
function isForeignError(value: unknown): value is Error {
  try {
    return typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Error]';
  } catch {
    // A proxy whose Symbol.toStringTag throws.
    return false;
  }
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
