// Bundles the sandbox image's entry points into dist/ (run by `pnpm build` after `tsc` has emitted
// the declarations into dist/types). Everything but Node built-ins is bundled, so the image needs no
// node_modules. Output is deterministic: same sources, same bytes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { sandboxBundleOptions } from './bundle-options.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));

const entries = [
  { in: 'src/index.ts', out: 'index' },
  { in: 'src/server/main.ts', out: 'repl-server' },
  { in: 'src/repl/repl-worker.ts', out: 'repl-worker' },
];

const missing = entries.filter((entry) => !existsSync(new URL(entry.in, import.meta.url)));
if (missing.length > 0) {
  console.error(`build.mjs: missing entry point(s): ${missing.map((entry) => entry.in).join(', ')}`);
  process.exit(1);
}

await build({
  ...sandboxBundleOptions,
  absWorkingDir: root,
  entryPoints: entries,
  outdir: 'dist',
  // One file per entry: the worker is loaded by URL, and chunks would make that fragile.
  splitting: false,
  logLevel: 'warning',
});
