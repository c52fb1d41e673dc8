// Bundles the sandbox image's entry points into dist/ (run by `pnpm build` after `tsc` has emitted
// the declarations into dist/types). Everything but Node built-ins is bundled, so the image needs no
// node_modules. Output is deterministic: same sources, same bytes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

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
  absWorkingDir: root,
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  // Workspace packages resolve to their TypeScript sources, so a build does not depend on theirs.
  conditions: ['rlm-source'],
  // Dependencies written as CommonJS (ws) call `require` for Node built-ins.
  banner: {
    js: "import { createRequire as __rlmCreateRequire } from 'node:module'; const require = __rlmCreateRequire(import.meta.url);",
  },
  // One file per entry: the worker is loaded by URL, and chunks would make that fragile.
  splitting: false,
  legalComments: 'none',
  logLevel: 'warning',
});
