/**
 * The cell worker's side of the main-thread conversation, shared by the JavaScript and the Python
 * worker: answers `execute`, `load-context` and `define-tools` one at a time, then says `ready`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ExecuteParams, LoadContextParams, ToolDefinition } from '@rlm/shared';
import { errorMessage } from '../to-error.js';
import type { CellReport, FromWorker, ToWorker } from './worker-messages.js';

/** What a language's runner offers the dispatcher. */
export interface WorkerCellRunner {
  execute(cellNumber: number, params: ExecuteParams): CellReport | Promise<CellReport>;
  loadContext(params: LoadContextParams): { bytes: number; valueType: string };
  defineTools(tools: readonly ToolDefinition[]): string[];
}

/** Serves `runner` on `port` and tells the main thread the worker is ready. */
export function serveCellRunner(port: MessagePort, runner: WorkerCellRunner): void {
  const send = (message: FromWorker) => port.postMessage(message);
  port.on('message', (message: ToWorker) => {
    switch (message.type) {
      case 'execute':
        // async: a runner that throws synchronously is answered like one that rejects.
        void (async () => runner.execute(message.cellNumber, message.params))().then(
          (report) => send({ type: 'executed', id: message.id, report }),
          (error: unknown) => send({ type: 'executed', id: message.id, report: internalError(error) }),
        );
        break;
      case 'load-context':
        try {
          send({ type: 'context-loaded', id: message.id, ...runner.loadContext(message.params) });
        } catch (error) {
          // A runner marks an error `outOfMemory` when the context did not fit (Python's MemoryError).
          const outOfMemory = typeof error === 'object' && error !== null && (error as { outOfMemory?: unknown }).outOfMemory === true;
          send({ type: 'context-failed', id: message.id, message: errorMessage(error), ...(outOfMemory ? { outOfMemory } : {}) });
        }
        break;
      case 'define-tools':
        try {
          send({ type: 'tools-defined', id: message.id, defined: runner.defineTools(message.tools) });
        } catch (error) {
          send({ type: 'tools-failed', id: message.id, message: errorMessage(error) });
        }
        break;
    }
  });
  send({ type: 'ready' });
}

/** A failure of the REPL itself (not of the cell's code), reported as the cell's error. */
function internalError(error: unknown): CellReport {
  return {
    status: 'error',
    stdout: { text: '', truncatedChars: 0 },
    stderr: { text: '', truncatedChars: 0 },
    error: { type: 'InternalError', message: `the REPL failed to run the cell: ${errorMessage(error)}`, stack: [] },
    final: null,
    variables: [],
  };
}
