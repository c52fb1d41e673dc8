// Copies what the sandbox image is built from into dist/sandbox-assets/, so a published `rlm`
// package can build its image without the workspace: Dockerfile.sandbox and the REPL server
// bundle (sandbox-image/dist/repl-server.js, repl-worker.js, python-worker.js, pyodide/…). Run by
// `pnpm build` after tsc.
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, rm } from 'node:fs/promises';
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
const sources = [
  { from: path.join(workspace, 'Dockerfile.sandbox'), to: 'Dockerfile.sandbox' },
  ...Object.keys(manifest.files).map((file) => ({ from: path.join(bundleDir, file), to: file })),
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
