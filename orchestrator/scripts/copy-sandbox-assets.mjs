// Copies what the sandbox image is built from into dist/sandbox-assets/, so a published `rlm`
// package can build its image without the workspace: Dockerfile.sandbox, the REPL server bundle
// (sandbox-image/dist/repl-server.js, cell-process.js, repl-worker.js, python-worker.js) and the
// Python memory snapshot (pyodide/python-snapshot.bin). Pyodide's own runtime files are not copied:
// the package depends on `pyodide` at the version the snapshot was made with, and
// src/sandbox/image/assets.ts reads them from there. Run by `pnpm build` after tsc.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workspace = path.resolve(packageRoot, '..');
const target = path.join(packageRoot, 'dist', 'sandbox-assets');
const bundleDir = path.join(workspace, 'sandbox-image', 'dist');
// The sandbox-image build lists every file the image carries, with its hash, in this manifest
// (BUNDLE_MANIFEST_NAME in src/sandbox/image/assets.ts): one list, read here, not written twice.
const manifestFile = path.join(bundleDir, 'bundle-manifest.json');
if (!existsSync(manifestFile)) {
  console.error(
    `copy-sandbox-assets: missing ${path.relative(workspace, manifestFile)}; ` +
      'build the REPL server first (pnpm --filter @rlm/sandbox-image build, or pnpm build at the workspace root)',
  );
  process.exit(1);
}
/** @type {{ files: Record<string, unknown> }} */
const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));

// The snapshot only boots the Pyodide it was made from: the version the sandbox image was built
// with must be the one this package depends on (both pin it exactly).
/** @param {string} from */
const pyodideVersion = (from) =>
  /** @type {{ version: string }} */ (JSON.parse(readFileSync(createRequire(from).resolve('pyodide/package.json'), 'utf8'))).version;
const bundled = pyodideVersion(path.join(workspace, 'sandbox-image', 'package.json'));
const declared = pyodideVersion(path.join(packageRoot, 'package.json'));
if (bundled !== declared) {
  console.error(`copy-sandbox-assets: sandbox-image uses pyodide ${bundled} but rlm depends on ${declared}; pin the same version in both package.json files`);
  process.exit(1);
}
const isPyodideRuntime = (/** @type {string} */ file) => file.startsWith('pyodide/') && file !== 'pyodide/python-snapshot.bin';

const sources = [
  { from: path.join(workspace, 'Dockerfile.sandbox'), to: 'Dockerfile.sandbox' },
  ...Object.keys(manifest.files)
    .filter((file) => !isPyodideRuntime(file))
    .map((file) => ({ from: path.join(bundleDir, file), to: file })),
  // Last, so it is newer than every file it describes (a file changed after it is hashed again).
  { from: manifestFile, to: 'bundle-manifest.json' },
];

const missing = sources.filter((file) => !existsSync(file.from));
if (missing.length > 0) {
  console.error(`copy-sandbox-assets: missing ${missing.map((f) => path.relative(workspace, f.from)).join(', ')}; build the REPL server again (pnpm build)`);
  process.exit(1);
}

await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
for (const file of sources) {
  await mkdir(path.dirname(path.join(target, file.to)), { recursive: true });
  await copyFile(file.from, path.join(target, file.to));
}
console.log(`copy-sandbox-assets: ${sources.length} files -> ${path.relative(packageRoot, target)}`);
