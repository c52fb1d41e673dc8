/**
 * What other workspace packages' tests use of the REPL without a container: the cell workers
 * bundled for in-process use, and Pyodide with a memory snapshot. Reachable only through the
 * `rlm-source` condition (`@rlm/sandbox-image/testing`); never part of a build.
 */
export { bundledCellProcessUrl, bundledPythonWorkerUrl, bundledReplWorkerUrl } from './repl-worker-bundle.js';
export { testPyodideDir, testPythonSnapshot } from './python-snapshot.js';
