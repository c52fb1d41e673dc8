// Copies what the sandbox image is built from into dist/sandbox-assets/, so a published `rlm`
// package can build its image without the workspace: Dockerfile.sandbox and the REPL server
// bundle (sandbox-image/dist/repl-server.js, repl-worker.js, python-worker.js, pyodide/…). Run by
// `pnpm build` after tsc.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// The list the image build reads, from the module tsc has just compiled: one list, not two.
import { BUNDLE_MANIFEST_NAME, SANDBOX_BUNDLE_FILES, SANDBOX_DOCKERFILE_NAME } from '../dist/sandbox/image/assets.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workspace = path.resolve(packageRoot, '..');
const target = path.join(packageRoot, 'dist', 'sandbox-assets');
const bundleDir = path.join(workspace, 'sandbox-image', 'dist');
const sources = [
  { from: path.join(workspace, SANDBOX_DOCKERFILE_NAME), to: SANDBOX_DOCKERFILE_NAME },
  ...SANDBOX_BUNDLE_FILES.map((file) => ({ from: path.join(bundleDir, file), to: file })),
  // Last, so it is newer than every file it describes (a file changed after it is hashed again).
  { from: path.join(bundleDir, BUNDLE_MANIFEST_NAME), to: BUNDLE_MANIFEST_NAME },
];

const missing = sources.filter((file) => !existsSync(file.from));
if (missing.length > 0) {
  console.error(
    `copy-sandbox-assets: missing ${missing.map((f) => path.relative(workspace, f.from)).join(', ')}; ` +
      'build the REPL server first (pnpm --filter @rlm/sandbox-image build, or pnpm build at the workspace root)',
  );
  process.exit(1);
}

await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
for (const file of sources) {
  await mkdir(path.dirname(path.join(target, file.to)), { recursive: true });
  await copyFile(file.from, path.join(target, file.to));
}
console.log(`copy-sandbox-assets: ${sources.length} files -> ${path.relative(packageRoot, target)}`);
