import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SandboxImageError } from '../../errors.js';
import { SANDBOX_BUNDLE_FILES, locateSandboxAssets } from './assets.js';

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
