/**
 * Errors `JavaScriptRepl` rejects with. A cell's own failures are never thrown: they are part of
 * the `ExecuteResult`. These are for the REPL itself: it could not start, it is closed, or a
 * context could not be loaded.
 */

const MARKER = Symbol.for('rlm.repl.error');

export class ReplError extends Error {
  readonly [MARKER] = true;
  override name = 'ReplError';

  /** True for any REPL error, even from another copy of this package. */
  static isInstance(value: unknown): value is ReplError {
    return typeof value === 'object' && value !== null && MARKER in value;
  }
}

/** The cell worker did not come up (bad `workerUrl`, a crash during start-up, or a context that no longer loads). */
export class ReplStartError extends ReplError {
  override name = 'ReplStartError';
}

/** `close()` was called; the REPL takes no more requests. */
export class ReplClosedError extends ReplError {
  override name = 'ReplClosedError';
  constructor() {
    super('the REPL is closed');
  }
}

/** `loadContext` failed: the file is missing or unreadable, or not valid JSON for `format: 'json'`. */
export class ContextLoadError extends ReplError {
  override name = 'ContextLoadError';
  constructor(
    readonly variable: string,
    readonly file: string,
    reason: string,
  ) {
    super(`cannot load context variable "${variable}": ${reason}`);
  }
}

/**
 * `loadContext` failed for memory: the context cannot fit in what the REPL may hold (refused before
 * it was read), or the worker or its process was ended for memory while reading it.
 */
export class ContextOutOfMemoryError extends ContextLoadError {
  override name = 'ContextOutOfMemoryError';
}

/** `defineTools` was refused: a tool's name is a global of the runtime or bound to a context. Nothing changed. */
export class ToolDefinitionError extends ReplError {
  override name = 'ToolDefinitionError';
}
