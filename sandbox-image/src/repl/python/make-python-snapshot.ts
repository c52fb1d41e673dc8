/**
 * `node make-python-snapshot.js --pyodide-dir=<dir> [--out=<file>]`: boots Pyodide from `dir`,
 * imports the REPL's standard modules and writes the interpreter's memory snapshot (default
 * `<dir>/python-snapshot.bin`). Run by `pnpm build` (sandbox-image/build.mjs) and by the tests.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { PYTHON_SNAPSHOT_FILE, makePythonSnapshot } from './pyodide-loader.js';

const { values } = parseArgs({ options: { 'pyodide-dir': { type: 'string' }, out: { type: 'string' } }, strict: true });
const pyodideDir = values['pyodide-dir'];
if (!pyodideDir) {
  process.stderr.write('usage: make-python-snapshot --pyodide-dir=<dir> [--out=<file>]\n');
  process.exit(2);
}
const out = values.out ?? join(pyodideDir, PYTHON_SNAPSHOT_FILE);
const { bytes, durationMs } = await makePythonSnapshot(pyodideDir, out);
process.stdout.write(`python snapshot: ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${(durationMs / 1000).toFixed(1)} s -> ${out}\n`);
