/**
 * Bundles the cell worker for in-process tests. Node cannot load our TypeScript sources as a
 * worker (their imports say `.js`), so tests bundle `src/repl/repl-worker.ts` with esbuild, the
 * way `build.mjs` does for dist/, once per test process.
 *
 * The bundle goes to one fixed file under node_modules/.cache, replaced atomically (write, then
 * rename), so test files bundling in parallel never see a half-written file and nothing piles up
 * in the temp directory.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { sandboxBundleOptions } from '../../bundle-options.mjs';

let bundled: Promise<URL> | undefined;

/** The `file:` URL of a freshly bundled `repl-worker.js`, to pass as `workerUrl`. */
export function bundledReplWorkerUrl(): Promise<URL> {
  bundled ??= bundle();
  return bundled;
}

async function bundle(): Promise<URL> {
  const packageRoot = fileURLToPath(new URL('../../', import.meta.url));
  const directory = join(packageRoot, 'node_modules', '.cache', 'repl-worker-test');
  mkdirSync(directory, { recursive: true });
  const result = await build({
    ...sandboxBundleOptions,
    entryPoints: [join(packageRoot, 'src', 'repl', 'repl-worker.ts')],
    write: false,
    outfile: join(directory, 'repl-worker.js'),
    logLevel: 'silent',
  });
  const output = result.outputFiles?.[0];
  if (!output) throw new Error('esbuild produced no repl-worker bundle');
  const partial = join(directory, `repl-worker.${process.pid}.${Date.now()}.tmp`);
  writeFileSync(partial, output.contents);
  const target = join(directory, 'repl-worker.js');
  renameSync(partial, target);
  return pathToFileURL(target);
}
