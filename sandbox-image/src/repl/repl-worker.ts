/**
 * Entry point of the cell worker thread (bundled to `dist/repl-worker.js`). Receives `execute`,
 * `load-context` and `define-tools` requests from `JavaScriptRepl` one at a time and answers each.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CellRunner } from './cell-runner.js';
import { createHostCaller } from './host-calls.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-messages.js';

const port = parentPort;
if (!port) throw new Error('repl-worker must run as a worker thread');

const init = workerData as WorkerInit;
const signal = new Int32Array(init.hostCallSignal);
const runner = new CellRunner({
  contextDir: init.contextDir,
  createHostCaller: (remainingMs) => createHostCaller(init.hostCallPort, signal, remainingMs),
});

const send = (message: FromWorker) => port.postMessage(message);

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'execute':
      void runner.execute(message.cellNumber, message.params).then(
        (report) => send({ type: 'executed', id: message.id, report }),
        (error: unknown) =>
          send({
            type: 'executed',
            id: message.id,
            report: {
              status: 'error',
              stdout: { text: '', truncatedChars: 0 },
              stderr: { text: '', truncatedChars: 0 },
              error: { type: 'InternalError', message: `the REPL failed to run the cell: ${String(error)}`, stack: [] },
              final: null,
              variables: [],
            },
          }),
      );
      break;
    case 'load-context':
      try {
        send({ type: 'context-loaded', id: message.id, ...runner.loadContext(message.params) });
      } catch (error) {
        send({ type: 'context-failed', id: message.id, message: error instanceof Error ? error.message : String(error) });
      }
      break;
    case 'define-tools':
      try {
        send({ type: 'tools-defined', id: message.id, defined: runner.defineTools(message.tools) });
      } catch (error) {
        send({ type: 'tools-failed', id: message.id, message: error instanceof Error ? error.message : String(error) });
      }
      break;
  }
});

send({ type: 'ready' });
