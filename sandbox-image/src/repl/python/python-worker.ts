/**
 * Entry point of the Python cell worker thread (bundled to `dist/python-worker.js`): loads Pyodide,
 * says `ready`, then answers `execute`, `load-context` and `define-tools` requests one at a time,
 * like repl-worker.ts does for JavaScript.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createHostCaller } from '../host-calls.js';
import type { FromWorker, ToWorker, WorkerInit } from '../worker-messages.js';
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

const send = (message: FromWorker) => port.postMessage(message);
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'execute':
      try {
        send({ type: 'executed', id: message.id, report: runner.execute(message.cellNumber, message.params) });
      } catch (error) {
        send({
          type: 'executed',
          id: message.id,
          report: {
            status: 'error',
            stdout: { text: '', truncatedChars: 0 },
            stderr: { text: '', truncatedChars: 0 },
            error: { type: 'InternalError', message: `the REPL failed to run the cell: ${messageOf(error)}`, stack: [] },
            final: null,
            variables: [],
          },
        });
      }
      break;
    case 'load-context':
      try {
        send({ type: 'context-loaded', id: message.id, ...runner.loadContext(message.params) });
      } catch (error) {
        send({ type: 'context-failed', id: message.id, message: messageOf(error) });
      }
      break;
    case 'define-tools':
      try {
        send({ type: 'tools-defined', id: message.id, defined: runner.defineTools(message.tools) });
      } catch (error) {
        send({ type: 'tools-failed', id: message.id, message: messageOf(error) });
      }
      break;
  }
});

send({ type: 'ready' });
