/**
 * Unit-test set-up: bundles the cell workers and the cell process, and makes Pyodide's memory snapshot once, before any
 * test runs, so that no test's own deadline pays for it (making the snapshot takes ~6 s, and much
 * longer on a loaded machine). Test workers then find the snapshot on disk by its hash.
 */
import { bundledCellProcessUrl, bundledPythonWorkerUrl, bundledReplWorkerUrl } from './repl-worker-bundle.js';
import { testPythonSnapshot } from './python-snapshot.js';

export default async function setup(): Promise<void> {
  await Promise.all([bundledReplWorkerUrl(), bundledPythonWorkerUrl(), bundledCellProcessUrl(), testPythonSnapshot()]);
}
