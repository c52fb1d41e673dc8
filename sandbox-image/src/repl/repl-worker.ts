/**
 * Entry point of the cell worker thread (bundled to `dist/repl-worker.js`). Receives `execute`,
 * `load-context` and `define-tools` requests from `JavaScriptRepl` one at a time and answers each.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CellRunner } from './cell-runner.js';
import { createHostCaller } from './host-calls.js';
import { serveCellRunner } from './worker-dispatch.js';
import type { WorkerInit } from './worker-messages.js';

const port = parentPort;
if (!port) throw new Error('repl-worker must run as a worker thread');

const init = workerData as WorkerInit;
const signal = new Int32Array(init.hostCallSignal);
const runner = new CellRunner({
  contextDir: init.contextDir,
  createHostCaller: (remainingMs) => createHostCaller(init.hostCallPort, signal, remainingMs),
});

serveCellRunner(port, runner);
