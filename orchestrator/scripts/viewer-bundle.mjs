// The viewer page's script: src/viewer/page/browser/main.ts and what it imports, bundled by esbuild
// into one classic script for the browser, dist/viewer-assets/viewer.js, which the published
// package ships and the viewer's server reads (src/viewer/viewer-server.ts). bundle.mjs runs this
// at build time; tests that need the script from source call bundleViewerScript({ write: false }).
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The bundled script's path inside the package. */
export const VIEWER_SCRIPT_FILE = 'dist/viewer-assets/viewer.js';

/**
 * Bundles the page's script. With `write` (the build), writes it to {@link VIEWER_SCRIPT_FILE}
 * (atomically: a reader never sees half a file); returns its text either way.
 * @param {{ write: boolean }} options
 * @returns {Promise<string>}
 */
export async function bundleViewerScript({ write }) {
  const result = await build({
    absWorkingDir: packageRoot,
    entryPoints: ['src/viewer/page/browser/main.ts'],
    bundle: true,
    write: false,
    // A classic script (the page loads it with <script src defer>): no module loader needed.
    format: 'iife',
    platform: 'browser',
    // Browsers of the last few years; the page has no fallback for older ones.
    target: ['es2022'],
    tsconfig: 'src/viewer/page/browser/tsconfig.json',
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error('viewer-bundle: esbuild produced no script');
  if (write) {
    const target = path.join(packageRoot, VIEWER_SCRIPT_FILE);
    await mkdir(path.dirname(target), { recursive: true });
    const partial = `${target}.${process.pid}.tmp`;
    await writeFile(partial, output.contents);
    await rename(partial, target);
  }
  return output.text;
}
