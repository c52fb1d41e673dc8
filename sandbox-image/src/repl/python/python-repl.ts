/**
 * The Python REPL: cells run in CPython compiled to WebAssembly (Pyodide) inside a worker thread
 * (`python-worker.js`), with the same contract, API and result shape as the JavaScript REPL; see
 * {@link CellRepl} for the shared machinery. A cell past its deadline is interrupted by the main
 * thread through Pyodide's interrupt buffer (KeyboardInterrupt; the interpreter keeps its state).
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { CellRepl, type CellReplOptions } from '../cell-repl.js';
import { PYTHON_SNAPSHOT_FILE } from './pyodide-loader.js';

export interface PythonReplOptions extends CellReplOptions {
  /**
   * Directory of Pyodide's files (pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm,
   * python_stdlib.zip, pyodide-lock.json); default `pyodide/` next to this module in dist/ (in the
   * image, /opt/rlm/pyodide). Nothing is fetched from the network.
   */
  pyodideDir?: string;
  /**
   * A memory snapshot of a booted interpreter (see `makePythonSnapshot`); default
   * `python-snapshot.bin` in `pyodideDir`. Without one the interpreter boots from scratch, which
   * takes seconds instead of a fraction of one.
   */
  snapshotFile?: string;
}

export class PythonRepl extends CellRepl {
  private constructor(options: PythonReplOptions) {
    const pyodideDir = options.pyodideDir ?? fileURLToPath(new URL('./pyodide/', import.meta.url));
    super(options, {
      language: 'python',
      workerUrl: new URL('./python-worker.js', import.meta.url),
      interruptAtDeadline: true,
      python: {
        indexDir: pyodideDir,
        snapshotFile: options.snapshotFile ?? join(pyodideDir, PYTHON_SNAPSHOT_FILE),
        // The interpreter's memory lives outside V8's heap; the same cap keeps a hungry cell at a MemoryError.
        ...(options.heapLimitMb === undefined ? {} : { memoryLimitMb: options.heapLimitMb }),
      },
    });
  }

  /**
   * Starts the cell worker, loads the interpreter (from its snapshot when there is one) and
   * resolves once it is ready.
   * @throws ReplStartError when the worker or Pyodide cannot start; the signal's reason when aborted.
   */
  static async start(options: PythonReplOptions, opts: { signal?: AbortSignal } = {}): Promise<PythonRepl> {
    const repl = new PythonRepl(options);
    await repl.ready(opts.signal);
    return repl;
  }
}
