/**
 * Pyodide for in-process tests: its files straight from node_modules/pyodide, and a memory
 * snapshot made once (about 6 s) into node_modules/.cache, named by a hash of Pyodide's version and
 * of the code that makes it, so later test runs start the interpreter in a fraction of a second.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledEntryUrl } from './repl-worker-bundle.js';

/** node_modules/pyodide of this package. */
export const testPyodideDir = dirname(createRequire(import.meta.url).resolve('pyodide/package.json'));

let snapshot: Promise<string> | undefined;

/** The path of a snapshot for {@link testPyodideDir}, made on first use. */
export function testPythonSnapshot(): Promise<string> {
  snapshot ??= make();
  return snapshot;
}

async function make(): Promise<string> {
  const maker = fileURLToPath(await bundledEntryUrl('src/repl/python/make-python-snapshot.ts', 'make-python-snapshot.js'));
  const key = createHash('sha256')
    .update(readFileSync(join(testPyodideDir, 'package.json')))
    .update(readFileSync(maker))
    .digest('hex')
    .slice(0, 16);
  const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
  const file = join(packageRoot, 'node_modules', '.cache', 'python-snapshot', `${key}.bin`);
  if (existsSync(file)) return file;
  mkdirSync(dirname(file), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [maker, `--pyodide-dir=${testPyodideDir}`, `--out=${file}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`make-python-snapshot exited with ${code}: ${stderr}`))));
  });
  return file;
}
