// Copies what the sandbox image is built from into dist/sandbox-assets/, so a published `rlm`
// package can build its image without the workspace: Dockerfile.sandbox and the REPL server
// bundle (sandbox-image/dist/repl-server.js, repl-worker.js, python-worker.js, pyodide/…). Run by
// `pnpm build` after tsc.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workspace = path.resolve(packageRoot, '..');
const target = path.join(packageRoot, 'dist', 'sandbox-assets');
// Keep in step with SANDBOX_BUNDLE_FILES in src/sandbox/image/assets.ts.
const bundleFiles = [
  'repl-server.js',
  'repl-worker.js',
  'python-worker.js',
  'pyodide/pyodide.mjs',
  'pyodide/pyodide.asm.mjs',
  'pyodide/pyodide.asm.wasm',
  'pyodide/python_stdlib.zip',
  'pyodide/pyodide-lock.json',
  'pyodide/python-snapshot.bin',
];
const bundleDir = path.join(workspace, 'sandbox-image', 'dist');
const sources = [
  { from: path.join(workspace, 'Dockerfile.sandbox'), to: 'Dockerfile.sandbox' },
  ...bundleFiles.map((file) => ({ from: path.join(bundleDir, file), to: file })),
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
