// Copies what the sandbox image is built from into dist/sandbox-assets/, so a published `rlm`
// package can build its image without the workspace: Dockerfile.sandbox and the REPL server
// bundle (sandbox-image/dist/repl-server.js, repl-worker.js). Run by `pnpm build` after tsc.
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workspace = path.resolve(packageRoot, '..');
const target = path.join(packageRoot, 'dist', 'sandbox-assets');
// Keep in step with SANDBOX_BUNDLE_FILES in src/sandbox/image/assets.ts.
const sources = [
  path.join(workspace, 'Dockerfile.sandbox'),
  path.join(workspace, 'sandbox-image', 'dist', 'repl-server.js'),
  path.join(workspace, 'sandbox-image', 'dist', 'repl-worker.js'),
];

const missing = sources.filter((file) => !existsSync(file));
if (missing.length > 0) {
  console.error(
    `copy-sandbox-assets: missing ${missing.map((f) => path.relative(workspace, f)).join(', ')}; ` +
      'build the REPL server first (pnpm --filter @rlm/sandbox-image build, or pnpm build at the workspace root)',
  );
  process.exit(1);
}

await rm(target, { recursive: true, force: true });
await mkdir(target, { recursive: true });
for (const file of sources) await copyFile(file, path.join(target, path.basename(file)));
console.log(`copy-sandbox-assets: ${sources.length} files -> ${path.relative(packageRoot, target)}`);
