import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EvalManifest } from '../eval-types.js';
import { MANIFEST_FILE, manifestDifferences, readManifest, writeManifest } from './manifest.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-manifest-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const manifest = (overrides: Partial<EvalManifest> = {}, options: Record<string, unknown> = {}): EvalManifest => ({
  version: 1,
  dataset: { path: '/data/niah.jsonl', sha256: 'a'.repeat(64), tasks: 10 },
  options: {
    methods: ['rlm', 'direct'],
    scorer: 'em',
    epochs: 1,
    limit: null,
    root: { backend: 'anthropic', model: 'claude-sonnet-4-5' },
    limits: { maxIterations: 30 },
    ...options,
  },
  task_ids: ['1', '2', '3'],
  created_at: '2026-12-03T09:00:00.000Z',
  rlm_version: '0.1.0',
  ...overrides,
});

describe('eval.json', () => {
  it('reads as undefined when there is none, and reads back what was written', async () => {
    expect(await readManifest(dir)).toBeUndefined();
    await writeManifest(dir, manifest());
    expect(await readManifest(dir)).toEqual(manifest());
    // Written through a temporary file that is gone once renamed.
    expect(await readdir(dir)).toEqual([MANIFEST_FILE]);
  });

  it('replaces an earlier manifest whole', async () => {
    await writeManifest(dir, manifest());
    await writeManifest(dir, manifest({}, { epochs: 3 }));
    expect((await readManifest(dir))?.options.epochs).toBe(3);
    expect(JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8')).options.epochs).toBe(3);
  });

  it('says what to do with a manifest that is not one', async () => {
    await writeFile(path.join(dir, MANIFEST_FILE), '{"version": 1');
    await expect(readManifest(dir)).rejects.toThrow(/eval\.json cannot be read: it is not JSON.*another --out directory/);
    await writeFile(path.join(dir, MANIFEST_FILE), '{"version": 2}');
    await expect(readManifest(dir)).rejects.toThrow(/not an evaluation manifest/);
  });
});

describe('manifestDifferences', () => {
  it('finds none between equal manifests, whatever the key order, creation time or version', () => {
    const reordered = manifest(
      { created_at: '2027-01-01T00:00:00.000Z', rlm_version: '0.2.0' },
      { root: { model: 'claude-sonnet-4-5', backend: 'anthropic' } },
    );
    expect(manifestDifferences(manifest(), reordered)).toEqual([]);
  });

  it('treats an option recorded as null and one left out alike, and a moved dataset with the same bytes as the same', () => {
    const { limit: _limit, ...options } = manifest().options;
    expect(manifestDifferences(manifest(), { ...manifest(), options, dataset: { ...manifest().dataset, path: '/elsewhere/niah.jsonl' } })).toEqual([]);
  });

  it('names each differing option with its old and new value', () => {
    const now = manifest(
      { dataset: { path: '/data/niah.jsonl', sha256: 'b'.repeat(64), tasks: 10 }, task_ids: ['1', '2', '4', '5'] },
      {
        epochs: 3,
        scorer: 'f1',
        methods: ['rlm'],
        limit: 5,
        root: { backend: 'anthropic', model: 'claude-haiku-4-5' },
        limits: { maxIterations: 10 },
        seed: 7,
      },
    );
    expect(manifestDifferences(manifest(), now)).toEqual([
      `the dataset changed (sha256 ${'a'.repeat(12)}… was, now ${'b'.repeat(12)}…)`,
      '--epochs was 1, now 3',
      '--limit was not set, now 5',
      'limits.maxIterations was 30, now 10',
      '--methods was rlm,direct, now rlm',
      'root.model was claude-sonnet-4-5, now claude-haiku-4-5',
      '--scorer was em, now f1',
      '--seed was not set, now 7',
      'the selected tasks differ (3 were selected, now 4: 2 added, 1 removed)',
    ]);
  });
});
