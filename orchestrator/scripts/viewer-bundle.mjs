// The browser scripts of the package's pages, bundled by esbuild into classic scripts:
// - the viewer's (`rlm view`): src/viewer/page/browser/main.ts → dist/viewer-assets/viewer.js, which
//   the viewer's server reads (src/viewer/viewer-server.ts);
// - the `rlm serve` web page's: src/service/http/web/browser/{team,run}-page.ts →
//   dist/web-assets/serve-{team,run}.js, which the service's page routes read
//   (src/service/http/web-page.ts).
// The published package ships them. bundle.mjs runs this at build time; tests that need a script
// from source call bundleViewerScript / bundleServeWebScripts with { write: false }.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The bundled script's path inside the package. */
export const VIEWER_SCRIPT_FILE = 'dist/viewer-assets/viewer.js';

/** The `rlm serve` page scripts' paths inside the package: the team page's and a run's viewer page's. */
export const SERVE_WEB_SCRIPT_FILES = { team: 'dist/web-assets/serve-team.js', run: 'dist/web-assets/serve-run.js' };

/**
 * Bundles the viewer page's script. With `write` (the build), writes it to {@link VIEWER_SCRIPT_FILE}
 * (atomically: a reader never sees half a file); returns its text either way.
 * @param {{ write: boolean }} options
 * @returns {Promise<string>}
 */
export async function bundleViewerScript({ write }) {
  return bundleBrowserScript({
    entry: 'src/viewer/page/browser/main.ts',
    tsconfig: 'src/viewer/page/browser/tsconfig.json',
    file: write ? VIEWER_SCRIPT_FILE : null,
    minify: false,
  });
}

/**
 * Bundles the `rlm serve` page scripts; with `write`, writes them to {@link SERVE_WEB_SCRIPT_FILES}.
 *
 * The run page draws a trajectory with the viewer's code and reads it with the viewer's reader
 * (src/viewer/trajectory-reader.ts), which imports two Node modules it does not need in a browser:
 * `node:fs/promises` (reading a file, never called there) and `node:module` (loading the maintained
 * price data: without it the reader prices models from our own table only, and the run's cost comes
 * from the API anyway). They are replaced by stubs that throw if called. Minified: the reader brings
 * zod along.
 * @param {{ write: boolean }} options
 * @returns {Promise<{ team: string, run: string }>}
 */
export async function bundleServeWebScripts({ write }) {
  const tsconfig = 'src/service/http/web/browser/tsconfig.json';
  const [team, run] = await Promise.all([
    bundleBrowserScript({ entry: 'src/service/http/web/browser/team-page.ts', tsconfig, file: write ? SERVE_WEB_SCRIPT_FILES.team : null, minify: true }),
    bundleBrowserScript({
      entry: 'src/service/http/web/browser/run-page.ts',
      tsconfig,
      file: write ? SERVE_WEB_SCRIPT_FILES.run : null,
      minify: true,
      plugins: [nodeStubs],
      define: { 'import.meta.url': '""' },
    }),
  ]);
  return { team, run };
}

/** @type {import('esbuild').Plugin} */
const nodeStubs = {
  name: 'node-stubs',
  setup(pluginBuild) {
    const stubs = {
      'node:fs/promises': 'export function readFile() { throw new Error("no file system in a browser"); }',
      'node:module': 'export function createRequire() { return () => { throw new Error("no require in a browser"); }; }',
    };
    pluginBuild.onResolve({ filter: /^node:/ }, (args) =>
      Object.hasOwn(stubs, args.path) ? { path: args.path, namespace: 'node-stub' } : { errors: [{ text: `${args.path} has no browser stub` }] },
    );
    pluginBuild.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({ contents: stubs[/** @type {keyof typeof stubs} */ (args.path)], loader: 'js' }));
  },
};

/**
 * @param {{ entry: string, tsconfig: string, file: string | null, minify: boolean, plugins?: import('esbuild').Plugin[], define?: Record<string, string> }} options
 * @returns {Promise<string>}
 */
async function bundleBrowserScript({ entry, tsconfig, file, minify, plugins = [], define = {} }) {
  const result = await build({
    absWorkingDir: packageRoot,
    entryPoints: [entry],
    bundle: true,
    write: false,
    // A classic script (the page loads it with <script src defer>): no module loader needed.
    format: 'iife',
    platform: 'browser',
    // Browsers of the last few years; the page has no fallback for older ones.
    target: ['es2022'],
    tsconfig,
    // The workspace packages resolve to their TypeScript sources, as in development.
    conditions: ['rlm-source'],
    minify,
    plugins,
    define,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
  });
  const output = result.outputFiles[0];
  if (!output) throw new Error(`viewer-bundle: esbuild produced no script for ${entry}`);
  if (file) {
    const target = path.join(packageRoot, file);
    await mkdir(path.dirname(target), { recursive: true });
    const partial = `${target}.${process.pid}.tmp`;
    await writeFile(partial, output.contents);
    await rename(partial, target);
  }
  return output.text;
}
