/**
 * The JavaScript REPL: cells run in a worker thread (`repl-worker.js`) as modern JavaScript with
 * persistent globals; see {@link CellRepl} for the machinery shared with Python.
 */
import { CellRepl, type CellReplOptions } from './cell-repl.js';

export {
  CellRepl,
  ContextLoadError,
  ContextOutOfMemoryError,
  ReplClosedError,
  ReplError,
  ReplStartError,
  ToolDefinitionError,
  type CellReplOptions,
} from './cell-repl.js';

export type JavaScriptReplOptions = CellReplOptions;

export class JavaScriptRepl extends CellRepl {
  private constructor(options: JavaScriptReplOptions) {
    super(options, { language: 'javascript', workerUrl: new URL('./repl-worker.js', import.meta.url), interruptAtDeadline: false });
  }

  /**
   * Starts the cell worker and resolves once it is ready.
   * @throws ReplStartError when the worker cannot start; the signal's reason when aborted.
   */
  static async start(options: JavaScriptReplOptions, opts: { signal?: AbortSignal } = {}): Promise<JavaScriptRepl> {
    const repl = new JavaScriptRepl(options);
    await repl.ready(opts.signal);
    return repl;
  }
}
