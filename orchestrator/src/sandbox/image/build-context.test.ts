import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUNDLE_MANIFEST_NAME, SANDBOX_BUNDLE_FILES } from './assets.js';
import { createBuildContext } from './build-context.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-build-context-'));
  await writeFile(path.join(dir, 'Dockerfile.sandbox'), 'FROM scratch\n');
  for (const name of SANDBOX_BUNDLE_FILES) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), `content of ${name}`);
  }
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const hashOf = async () =>
  (await createBuildContext({ assets: { dockerfile: path.join(dir, 'Dockerfile.sandbox'), bundleDir: dir }, baseImage: 'node:24', node: undefined }))
    .inputsHash;

/** Writes a manifest listing every bundle file with `hashFor(name)` and its real size. */
async function writeManifest(hashFor: (name: string) => string) {
  const files = Object.fromEntries(SANDBOX_BUNDLE_FILES.map((name) => [name, { size: `content of ${name}`.length, sha256: hashFor(name) }]));
  await writeFile(path.join(dir, BUNDLE_MANIFEST_NAME), JSON.stringify({ files }));
}

describe('the image tag and the bundle manifest', () => {
  it('gives the same tag from a correct manifest as from reading the files', async () => {
    const read = await hashOf();
    await writeManifest((name) => sha256(`content of ${name}`));
    expect(await hashOf()).toBe(read);
  });

  it('takes a file hash from the manifest instead of reading the file', async () => {
    const read = await hashOf();
    await writeManifest(() => 'f'.repeat(64));
    expect(await hashOf()).not.toBe(read);
  });

  it('reads a file again when it changed after the manifest was written', async () => {
    await writeManifest(() => 'f'.repeat(64));
    const fromManifest = await hashOf();
    const name = SANDBOX_BUNDLE_FILES[0];
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(dir, name), later, later);
    expect(await hashOf()).not.toBe(fromManifest);
  });
});
