/**
 * Finding the files the sandbox image is built from: `Dockerfile.sandbox` and the REPL server
 * bundle. A published `rlm` package carries them in `dist/sandbox-assets/` (copied there by
 * `scripts/copy-sandbox-assets.mjs`) except Pyodide's runtime files, which come from the `pyodide`
 * package it depends on; a workspace checkout also has them all at their source.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SandboxImageError } from '../../errors.js';

/**
 * The bundle files the image carries at `/opt/rlm/`, paths relative to the bundle directory: the
 * REPL server, the cell process it runs cells in, the JavaScript and Python cell workers, and
 * Pyodide's runtime with the memory snapshot `pnpm build` makes of it (sandbox-image/build.mjs
 * keeps the same list of files in its manifest).
 */
export const SANDBOX_BUNDLE_FILES = [
  'repl-server.js',
  'cell-process.js',
  'repl-worker.js',
  'python-worker.js',
  'pyodide/pyodide.mjs',
  'pyodide/pyodide.asm.mjs',
  'pyodide/pyodide.asm.wasm',
  'pyodide/python_stdlib.zip',
  'pyodide/pyodide-lock.json',
  'pyodide/python-snapshot.bin',
] as const;

/** The bundle files under this prefix, but for the snapshot, are Pyodide's runtime: the files the `pyodide` package provides. */
const PYODIDE_RUNTIME_PREFIX = 'pyodide/';
const PYODIDE_SNAPSHOT_FILE = 'pyodide/python-snapshot.bin';

/**
 * The content hashes of the bundle files, written by the sandbox-image build next to them, so the
 * image tag needs no pass over ~75 MB at every start. Optional: without it the files are hashed.
 */
export const BUNDLE_MANIFEST_NAME = 'bundle-manifest.json';

/** Name of the Dockerfile in `dist/sandbox-assets/` and at the workspace root. */
export const SANDBOX_DOCKERFILE_NAME = 'Dockerfile.sandbox';

/** Environment variable that points at a directory holding another REPL server bundle. */
export const SANDBOX_BUNDLE_DIR_ENV = 'RLM_SANDBOX_BUNDLE_DIR';

export interface SandboxAssets {
  /** Absolute path of the Dockerfile. */
  dockerfile: string;
  /** Absolute path of the directory holding {@link SANDBOX_BUNDLE_FILES}. */
  bundleDir: string;
  /**
   * Absolute path of a directory holding Pyodide's runtime files (`pyodide.mjs`…, the `pyodide`
   * package's directory) instead of `<bundleDir>/pyodide/`; the snapshot stays in the bundle.
   */
  pyodideDir?: string;
}

/** The absolute path a bundle file (a name from {@link SANDBOX_BUNDLE_FILES}) is read from. */
export function sandboxAssetPath(assets: SandboxAssets, name: string): string {
  if (assets.pyodideDir !== undefined && name.startsWith(PYODIDE_RUNTIME_PREFIX) && name !== PYODIDE_SNAPSHOT_FILE) {
    return path.join(assets.pyodideDir, name.slice(PYODIDE_RUNTIME_PREFIX.length));
  }
  return path.join(assets.bundleDir, name);
}

export interface LocateSandboxAssetsOptions {
  /** A directory holding {@link SANDBOX_BUNDLE_FILES}; defaults to `RLM_SANDBOX_BUNDLE_DIR`, then the packaged bundle. */
  bundleDir?: string;
  /** A Dockerfile to use instead of the packaged one. */
  dockerfile?: string;
  /** Where to start looking for the `rlm` package root; defaults to this module's location. */
  from?: string;
}

/**
 * Locates the Dockerfile and the REPL bundle: `dist/sandbox-assets/` of the `rlm` package, else the
 * workspace (`../Dockerfile.sandbox`, `../sandbox-image/dist/`). When this module runs from its
 * TypeScript source (tests, development), the workspace comes first, so a stale
 * `dist/sandbox-assets/` cannot shadow a fresh bundle.
 *
 * @throws SandboxImageError when no complete set is found; the message says to run `pnpm build`.
 */
export function locateSandboxAssets(options: LocateSandboxAssetsOptions = {}): SandboxAssets {
  const from = options.from ?? fileURLToPath(import.meta.url);
  const packageRoot = findPackageRoot(from);
  const candidates: SandboxAssets[] = [];
  if (packageRoot !== undefined) {
    const packaged: SandboxAssets = {
      dockerfile: path.join(packageRoot, 'dist', 'sandbox-assets', SANDBOX_DOCKERFILE_NAME),
      bundleDir: path.join(packageRoot, 'dist', 'sandbox-assets'),
    };
    // The published package leaves Pyodide's files to the `pyodide` dependency (the same pinned
    // version the snapshot was made with; scripts/copy-sandbox-assets.mjs checks that).
    if (!existsSync(path.join(packaged.bundleDir, 'pyodide', 'pyodide.mjs'))) {
      const pyodideDir = pyodidePackageDir(packageRoot);
      if (pyodideDir !== undefined) packaged.pyodideDir = pyodideDir;
    }
    candidates.push(packaged, {
      dockerfile: path.join(packageRoot, '..', SANDBOX_DOCKERFILE_NAME),
      bundleDir: path.join(packageRoot, '..', 'sandbox-image', 'dist'),
    });
    const fromSource = !path.relative(path.join(packageRoot, 'src'), from).startsWith('..');
    if (fromSource) candidates.reverse();
  }

  const bundleDir = options.bundleDir ?? (process.env[SANDBOX_BUNDLE_DIR_ENV] || undefined);
  const dockerfile = options.dockerfile;
  const complete = (c: SandboxAssets) => existsSync(c.dockerfile) && missingBundleFiles(c).length === 0;

  if (bundleDir !== undefined || dockerfile !== undefined) {
    const bundle =
      bundleDir !== undefined
        ? { bundleDir: path.resolve(bundleDir) }
        : (candidates.find((c) => missingBundleFiles(c).length === 0) ?? { bundleDir: path.resolve('.') });
    const chosen: SandboxAssets = {
      dockerfile: path.resolve(dockerfile ?? candidates.find((c) => existsSync(c.dockerfile))?.dockerfile ?? SANDBOX_DOCKERFILE_NAME),
      bundleDir: bundle.bundleDir,
      ...('pyodideDir' in bundle && bundle.pyodideDir !== undefined ? { pyodideDir: bundle.pyodideDir } : {}),
    };
    if (!existsSync(chosen.dockerfile)) {
      throw new SandboxImageError(`sandbox image Dockerfile not found at ${chosen.dockerfile}: run \`pnpm build\``, '');
    }
    if (missingBundleFiles(chosen).length > 0) {
      throw new SandboxImageError(
        `the REPL bundle directory ${chosen.bundleDir}${bundleDir !== undefined && !options.bundleDir ? ` (from ${SANDBOX_BUNDLE_DIR_ENV})` : ''} lacks ${missingBundleFiles(chosen).join(', ')}: point it at a built bundle (pnpm --filter @rlm/sandbox-image build writes sandbox-image/dist/)`,
        '',
      );
    }
    return chosen;
  }

  const found = candidates.find(complete);
  if (found) return found;
  const looked = candidates.map((c) => `${c.dockerfile} + ${c.bundleDir}/{${SANDBOX_BUNDLE_FILES.slice(0, 3).join(',')},pyodide/…}`).join('; ');
  throw new SandboxImageError(
    `sandbox image assets (Dockerfile.sandbox and the REPL server bundle) not found${looked ? ` (looked for ${looked})` : ''}: run \`pnpm build\` in the rlm workspace, or reinstall the rlm package`,
    '',
  );
}

function missingBundleFiles(assets: SandboxAssets): string[] {
  return SANDBOX_BUNDLE_FILES.filter((file) => !existsSync(sandboxAssetPath(assets, file)));
}

/** The directory of the `pyodide` package as the `rlm` package at `packageRoot` resolves it, if installed. */
function pyodidePackageDir(packageRoot: string): string | undefined {
  try {
    return path.dirname(createRequire(path.join(packageRoot, 'package.json')).resolve('pyodide/package.json'));
  } catch {
    return undefined;
  }
}

/** The nearest directory at or above `from` (a file's path) whose package.json is named `rlm`: the package's root, from src/ or from dist/bundle/ alike. */
export function findPackageRoot(from: string): string | undefined {
  let dir = path.dirname(from);
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'rlm') return dir;
      } catch {
        // An unreadable package.json on the way up is not ours; keep walking.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
