// The esbuild settings every sandbox bundle is built with: build.mjs for dist/, and the tests'
// worker bundle, so what the tests run is built the way the image's files are.

/** @type {import('esbuild').BuildOptions} */
export const sandboxBundleOptions = {
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
  // The Python REPL's runtime is a Python file, bundled as text.
  loader: { '.py': 'text' },
  legalComments: 'none',
};

/** Pyodide's files the Python REPL loads at run time (from dist/pyodide/ or the image's /opt/rlm/pyodide/). */
export const PYODIDE_RUNTIME_FILES = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'];
