/**
 * Bundles the cell workers (and the cell process) for in-process tests. Node cannot load our TypeScript sources as a
 * worker (their imports say `.js`), so tests bundle `src/repl/repl-worker.ts` (and the Python
 * worker) with esbuild, the way `build.mjs` does for dist/, once per test process.
 *
 * Each bundle goes to one fixed file under node_modules/.cache, replaced atomically (write, then
 * rename), so test files bundling in parallel never see a half-written file and nothing piles up
 * in the temp directory.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { sandboxBundleOptions } from '../../bundle-options.mjs';

const bundles = new Map<string, Promise<URL>>();

/** The `file:` URL of a freshly bundled `repl-worker.js`, to pass as `workerUrl`. */
export function bundledReplWorkerUrl(): Promise<URL> {
  return bundledEntryUrl('src/repl/repl-worker.ts', 'repl-worker.js');
}

/** The `file:` URL of a freshly bundled `python-worker.js`, to pass as a Python REPL's `workerUrl`. */
export function bundledPythonWorkerUrl(): Promise<URL> {
  return bundledEntryUrl('src/repl/python/python-worker.ts', 'python-worker.js');
}

/**
 * The `file:` URL of a freshly bundled `cell-process.js`, to pass as the REPL server's (or the
 * cell process client's) `cellProcessUrl`, next to the bundled workers.
 */
export function bundledCellProcessUrl(): Promise<URL> {
  return bundledEntryUrl('src/cell-process/main.ts', 'cell-process.js');
}

/** Bundles `entry` (relative to the package root) to node_modules/.cache/repl-worker-test/`fileName`, once per process. */
export function bundledEntryUrl(entry: string, fileName: string): Promise<URL> {
  let bundled = bundles.get(fileName);
  if (!bundled) {
    bundled = bundle(entry, fileName);
    bundles.set(fileName, bundled);
  }
  return bundled;
}

async function bundle(entry: string, fileName: string): Promise<URL> {
  const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
  const directory = join(packageRoot, 'node_modules', '.cache', 'repl-worker-test');
  mkdirSync(directory, { recursive: true });
  const result = await build({
    ...sandboxBundleOptions,
    entryPoints: [join(packageRoot, entry)],
    write: false,
    outfile: join(directory, fileName),
    logLevel: 'silent',
  });
  const output = result.outputFiles?.[0];
  if (!output) throw new Error(`esbuild produced no ${fileName} bundle`);
  const partial = join(directory, `${fileName}.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(partial, output.contents);
  const target = join(directory, fileName);
  renameSync(partial, target);
  return pathToFileURL(target);
}
