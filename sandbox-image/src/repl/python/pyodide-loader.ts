/**
 * Loading Pyodide from local files only (its `indexURL` is a directory of the image, or
 * node_modules/pyodide in tests), from a memory snapshot when there is one, with the
 * interpreter's WebAssembly memory capped; and making that snapshot.
 *
 * Booting CPython in Pyodide takes about 5 s (on 1 CPU); restoring a snapshot of a booted
 * interpreter with the standard modules the REPL needs already imported takes about 0.4 s.
 */
import { existsSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PyodideAPI, loadPyodide as LoadPyodide } from 'pyodide';
import { errorMessage } from '../../to-error.js';

/** The standard modules imported before the snapshot is taken: the cells' pre-imports and what the runtime uses. */
export const SNAPSHOT_IMPORTS = ['re', 'json', 'math', 'collections', 'itertools', 'ast', 'io', 'keyword', 'linecache', 'reprlib', 'types', 'random'];

/** File name of the snapshot next to Pyodide's files. */
export const PYTHON_SNAPSHOT_FILE = 'python-snapshot.bin';

export interface LoadPyodideOptions {
  /** Directory holding pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip and pyodide-lock.json. */
  readonly indexDir: string;
  /** A snapshot made by {@link makePythonSnapshot} with the same Pyodide; absent: boot from scratch. */
  readonly snapshotFile?: string | undefined;
  /** Largest size of the interpreter's memory in MiB: past it allocations fail with Python's MemoryError. */
  readonly memoryLimitMb?: number | undefined;
}

type PyodideModuleFactory = (settings: EmscriptenSettings) => Promise<unknown>;
interface EmscriptenSettings {
  instantiateWasm?: (imports: { env: Record<string, unknown> }, done: (...args: unknown[]) => void) => unknown;
}

/**
 * Loads Pyodide from `options.indexDir`, from the snapshot when there is one; a snapshot that fails
 * to restore (made by another Pyodide) is reported on stderr and skipped, so the REPL still starts.
 * What the interpreter writes to file descriptors 1 and 2 is dropped until the caller installs its
 * own writers (`setStdout` / `setStderr` with `write`); it never reaches this process's own stdout.
 * @throws when Pyodide's files are missing or broken.
 */
export async function loadPyodideFrom(options: LoadPyodideOptions): Promise<PyodideAPI> {
  if (options.snapshotFile !== undefined && existsSync(options.snapshotFile)) {
    try {
      return await load(options, readFileSync(options.snapshotFile));
    } catch (error) {
      process.stderr.write(`python: the snapshot ${options.snapshotFile} could not be restored (${errorMessage(error)}); booting without it\n`);
    }
  }
  return load(options, undefined);
}

async function load(options: LoadPyodideOptions, snapshot: Buffer | undefined): Promise<PyodideAPI> {
  const indexDir = options.indexDir.endsWith('/') ? options.indexDir : `${options.indexDir}/`;
  const [{ loadPyodide }, asm] = await Promise.all([
    import(pathToFileURL(join(indexDir, 'pyodide.mjs')).href) as Promise<{ loadPyodide: typeof LoadPyodide }>,
    import(pathToFileURL(join(indexDir, 'pyodide.asm.mjs')).href) as Promise<{ default: PyodideModuleFactory }>,
  ]);
  const limitBytes = options.memoryLimitMb === undefined ? undefined : options.memoryLimitMb * 1024 * 1024;
  const pyodide = await loadPyodide({
    indexURL: indexDir,
    ...(snapshot ? { _loadSnapshot: snapshot } : {}),
    // Start-up writes nothing that matters; without these, Pyodide would write to this process's fds.
    stdout: () => {},
    stderr: () => {},
    // No package manager work at start: nothing is installed, nothing is fetched.
    checkAPIVersion: true,
    createPyodideModule: (async (settings: EmscriptenSettings) => {
      if (limitBytes !== undefined) capMemory(settings, limitBytes);
      return asm.default(settings);
    }) as never,
  });
  pyodide.setStdin({ error: true });
  // Pyodide's `batched` writers gather a line as an array of numbers, without bound: drop instead.
  const drop = { write: (bytes: Uint8Array) => bytes.length, isatty: false };
  pyodide.setStdout(drop);
  pyodide.setStderr(drop);
  return pyodide;
}

/**
 * Makes the interpreter's memory refuse to grow past `limitBytes`, by wrapping the import that
 * grows it: malloc then fails and Python raises MemoryError, which a cell can survive, instead of
 * the container's memory limit killing the whole sandbox.
 */
function capMemory(settings: EmscriptenSettings, limitBytes: number): void {
  const instantiate = settings.instantiateWasm;
  if (!instantiate) throw new Error('this Pyodide has no instantiateWasm hook; the memory cap cannot be installed');
  settings.instantiateWasm = (imports, done) => {
    const resize = imports.env.emscripten_resize_heap as ((requested: number) => number) | undefined;
    if (typeof resize !== 'function') throw new Error('this Pyodide has no emscripten_resize_heap import; the memory cap cannot be installed');
    imports.env.emscripten_resize_heap = (requested: number) => (requested >>> 0 > limitBytes ? 0 : resize(requested));
    return instantiate(imports, done);
  };
}

/**
 * Boots Pyodide from scratch, imports {@link SNAPSHOT_IMPORTS}, and writes a memory snapshot to
 * `outFile` (about 30 MB; written atomically). Run once per Pyodide version: at image build time
 * in the container, or by tests into a cache.
 */
export async function makePythonSnapshot(indexDir: string, outFile: string): Promise<{ bytes: number; durationMs: number }> {
  const started = performance.now();
  const { loadPyodide } = (await import(pathToFileURL(join(indexDir, 'pyodide.mjs')).href)) as { loadPyodide: typeof LoadPyodide };
  const pyodide = await loadPyodide({ indexURL: indexDir.endsWith('/') ? indexDir : `${indexDir}/`, _makeSnapshot: true });
  pyodide.runPython(`import ${SNAPSHOT_IMPORTS.join(', ')}`);
  const snapshot = pyodide.makeMemorySnapshot();
  const partial = `${outFile}.${process.pid}.tmp`;
  writeFileSync(partial, snapshot);
  renameSync(partial, outFile);
  return { bytes: snapshot.length, durationMs: performance.now() - started };
}
