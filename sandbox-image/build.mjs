// Bundles the sandbox image's entry points into dist/ (run by `pnpm build` after `tsc` has emitted
// the declarations into dist/types). Everything but Node built-ins is bundled, so the image needs no
// node_modules. Output is deterministic: same sources, same bytes.
//
// Python: Pyodide's runtime files are copied to dist/pyodide/, and a memory snapshot of a booted
// interpreter is made there (python-snapshot.bin, ~30 MB, ~6 s) when Pyodide or the snapshot code
// changed. The image carries dist/pyodide/ as /opt/rlm/pyodide/; nothing is fetched at run time.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { PYODIDE_RUNTIME_FILES, sandboxBundleOptions } from './bundle-options.mjs';

const root = fileURLToPath(new URL('.', import.meta.url));

const entries = [
  { in: 'src/index.ts', out: 'index' },
  { in: 'src/server/main.ts', out: 'repl-server' },
  { in: 'src/cell-process/main.ts', out: 'cell-process' },
  { in: 'src/repl/repl-worker.ts', out: 'repl-worker' },
  { in: 'src/repl/python/python-worker.ts', out: 'python-worker' },
  { in: 'src/repl/python/make-python-snapshot.ts', out: 'make-python-snapshot' },
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

// Pyodide's runtime files, from the pyodide package this workspace depends on.
const pyodideSource = dirname(createRequire(import.meta.url).resolve('pyodide/package.json'));
const pyodideTarget = join(root, 'dist', 'pyodide');
mkdirSync(pyodideTarget, { recursive: true });
for (const file of PYODIDE_RUNTIME_FILES) copyFileSync(join(pyodideSource, file), join(pyodideTarget, file));

// The snapshot depends on Pyodide and on the code that makes it; remade only when either changed.
const snapshotKey = createHash('sha256')
  .update(readFileSync(join(pyodideSource, 'package.json')))
  .update(readFileSync(join(root, 'dist', 'make-python-snapshot.js')))
  .digest('hex');
const stampFile = join(pyodideTarget, 'python-snapshot.key');
const snapshotFile = join(pyodideTarget, 'python-snapshot.bin');
const current = existsSync(snapshotFile) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === snapshotKey;
if (!current) {
  const made = spawnSync(process.execPath, [join(root, 'dist', 'make-python-snapshot.js'), `--pyodide-dir=${pyodideTarget}`, `--out=${snapshotFile}`], {
    stdio: 'inherit',
  });
  if (made.status !== 0) {
    console.error(`build.mjs: making the Python snapshot failed (exit ${made.status ?? made.signal})`);
    process.exit(1);
  }
  writeFileSync(stampFile, snapshotKey);
}

// Content hashes of the files the image carries, so the host can tag the image without reading
// ~75 MB on every start (orchestrator/src/sandbox/image/build-context.ts reads this manifest; the
// name is BUNDLE_MANIFEST_NAME there). Written last: a file changed after it is hashed afresh.
const manifestFiles = [
  'repl-server.js',
  'cell-process.js',
  'repl-worker.js',
  'python-worker.js',
  ...PYODIDE_RUNTIME_FILES.map((f) => `pyodide/${f}`),
  'pyodide/python-snapshot.bin',
];
/** @type {{ files: Record<string, { size: number, sha256: string }> }} */
const manifest = { files: {} };
for (const file of manifestFiles) {
  const data = readFileSync(join(root, 'dist', file));
  manifest.files[file] = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
}
writeFileSync(join(root, 'dist', 'bundle-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
