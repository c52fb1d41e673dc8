import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxImageError } from '../../errors.js';
import { SANDBOX_BUNDLE_FILES, locateSandboxAssets, sandboxAssetPath } from './assets.js';

let root: string;
const pkg = () => path.join(root, 'orchestrator');

async function put(file: string, text = ''): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
}

async function packaged(): Promise<void> {
  for (const name of ['Dockerfile.sandbox', ...SANDBOX_BUNDLE_FILES]) await put(path.join(pkg(), 'dist', 'sandbox-assets', name));
}

async function workspace(): Promise<void> {
  await put(path.join(root, 'Dockerfile.sandbox'));
  for (const name of SANDBOX_BUNDLE_FILES) await put(path.join(root, 'sandbox-image', 'dist', name));
}

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'rlm-assets-'));
  await put(path.join(pkg(), 'package.json'), JSON.stringify({ name: 'rlm' }));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('locateSandboxAssets', () => {
  const fromDist = () => path.join(pkg(), 'dist', 'sandbox', 'image', 'assets.js');
  const fromSource = () => path.join(pkg(), 'src', 'sandbox', 'image', 'assets.ts');

  it('uses dist/sandbox-assets of the installed package first', async () => {
    await packaged();
    await workspace();
    expect(locateSandboxAssets({ from: fromDist() })).toEqual({
      dockerfile: path.join(pkg(), 'dist', 'sandbox-assets', 'Dockerfile.sandbox'),
      bundleDir: path.join(pkg(), 'dist', 'sandbox-assets'),
    });
  });

  it("reads Pyodide's runtime files from the pyodide package when the package does not carry them", async () => {
    const pyodidePackage = path.join(pkg(), 'node_modules', 'pyodide');
    await put(path.join(pyodidePackage, 'package.json'), JSON.stringify({ name: 'pyodide', version: '0.0.0' }));
    for (const name of SANDBOX_BUNDLE_FILES) {
      const runtime = name.startsWith('pyodide/') && name !== 'pyodide/python-snapshot.bin';
      await put(runtime ? path.join(pyodidePackage, name.slice('pyodide/'.length)) : path.join(pkg(), 'dist', 'sandbox-assets', name));
    }
    await put(path.join(pkg(), 'dist', 'sandbox-assets', 'Dockerfile.sandbox'));
    const assets = locateSandboxAssets({ from: fromDist() });
    expect(assets).toEqual({
      dockerfile: path.join(pkg(), 'dist', 'sandbox-assets', 'Dockerfile.sandbox'),
      bundleDir: path.join(pkg(), 'dist', 'sandbox-assets'),
      pyodideDir: pyodidePackage,
    });
    expect(sandboxAssetPath(assets, 'pyodide/pyodide.asm.wasm')).toBe(path.join(pyodidePackage, 'pyodide.asm.wasm'));
    expect(sandboxAssetPath(assets, 'pyodide/python-snapshot.bin')).toBe(path.join(pkg(), 'dist', 'sandbox-assets', 'pyodide', 'python-snapshot.bin'));
    expect(sandboxAssetPath(assets, 'repl-server.js')).toBe(path.join(pkg(), 'dist', 'sandbox-assets', 'repl-server.js'));
  });

  it('falls back to the workspace, and prefers it when running from source', async () => {
    await workspace();
    const expected = { dockerfile: path.join(pkg(), '..', 'Dockerfile.sandbox'), bundleDir: path.join(pkg(), '..', 'sandbox-image', 'dist') };
    expect(locateSandboxAssets({ from: fromDist() })).toEqual(expected);
    await packaged();
    expect(locateSandboxAssets({ from: fromSource() })).toEqual(expected);
  });

  it('takes another bundle directory', async () => {
    await packaged();
    const other = path.join(root, 'other');
    for (const name of SANDBOX_BUNDLE_FILES) await put(path.join(other, name));
    expect(locateSandboxAssets({ from: fromDist(), bundleDir: other }).bundleDir).toBe(other);
    await rm(path.join(other, 'repl-worker.js'));
    await rm(path.join(other, 'pyodide', 'python-snapshot.bin'));
    expect(() => locateSandboxAssets({ from: fromDist(), bundleDir: other })).toThrow(/lacks repl-worker\.js, pyodide\/python-snapshot\.bin/);
  });

  it('tells the user to run pnpm build when nothing is there', () => {
    expect(() => locateSandboxAssets({ from: fromDist() })).toThrow(SandboxImageError);
    expect(() => locateSandboxAssets({ from: fromDist() })).toThrow(/not found.*run `pnpm build`/);
  });
});
