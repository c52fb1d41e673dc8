/**
 * Entry point of the Python cell worker thread (bundled to `dist/python-worker.js`): loads Pyodide,
 * says `ready`, then answers `execute`, `load-context` and `define-tools` requests one at a time,
 * like repl-worker.ts does for JavaScript.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createHostCaller } from '../host-calls.js';
import { serveCellRunner } from '../worker-dispatch.js';
import type { WorkerInit } from '../worker-messages.js';
import { PythonCellRunner } from './python-runner.js';

const port = parentPort;
if (!port) throw new Error('python-worker must run as a worker thread');

const init = workerData as WorkerInit;
if (!init.python) throw new Error('python-worker needs the python settings in its workerData');
const signal = new Int32Array(init.hostCallSignal);
const runner = await PythonCellRunner.start({
  contextDir: init.contextDir,
  indexDir: init.python.indexDir,
  snapshotFile: init.python.snapshotFile,
  memoryLimitMb: init.python.memoryLimitMb,
  interrupt: new Int32Array(init.interruptSignal),
  createHostCaller: (remainingMs) => createHostCaller(init.hostCallPort, signal, remainingMs),
});

serveCellRunner(port, runner);
