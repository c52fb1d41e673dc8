import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../errors.js';
import { readDataset } from '../read-dataset.js';
import { writeJsonl } from '../write-jsonl.js';
import { COUNTING_LABELS, generateDataset } from './index.js';

interface Row {
  id: string;
  query: string;
  context: string;
  answer: string;
  scorer?: string;
  metadata: Record<string, unknown>;
}
const rowsOf = (kind: 'niah' | 'counting', options: { n: number; contextChars: number; seed: number }) =>
  [...generateDataset(kind, options)] as unknown as Row[];

describe('generated datasets', () => {
  it('are the same for the same seed and differ for another, and read back as datasets', async () => {
    for (const kind of ['niah', 'counting'] as const) {
      const options = { n: 6, contextChars: 5_000, seed: 1 };
      expect(JSON.stringify(rowsOf(kind, options))).toBe(JSON.stringify(rowsOf(kind, options)));
      expect(rowsOf(kind, { ...options, seed: 2 })[0]?.context).not.toBe(rowsOf(kind, options)[0]?.context);
      const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-generated-'));
      const written = await writeJsonl(path.join(dir, `${kind}.jsonl`), generateDataset(kind, options));
      expect(written.rows).toBe(6);
      const { tasks } = await readDataset(path.join(dir, `${kind}.jsonl`));
      expect(tasks.map((task) => task.id)).toEqual(Array.from({ length: 6 }, (_, i) => `${kind}-${i + 1}`));
      expect(tasks.every((task) => task.expected.length === 1 && task.context?.kind === 'inline')).toBe(true);
    }
  });

  it('niah: one needle with the answer at the recorded position and depth, a key asked for by the query, depths spread over [0, 1]', () => {
    const rows = rowsOf('niah', { n: 11, contextChars: 20_000, seed: 5 });
    for (const row of rows) {
      const { key, depth, context_chars, needle_position } = row.metadata as { key: string; depth: number; context_chars: number; needle_position: number };
      const needle = `The special magic number for ${key} is ${row.answer}.`;
      expect(row.answer).toMatch(/^[1-9]\d{6}$/);
      expect(row.query).toContain(key);
      expect(row.context.indexOf(needle)).toBe(needle_position);
      expect(row.context.split('special magic number')).toHaveLength(2);
      expect(row.context.split(row.answer)).toHaveLength(2);
      expect(context_chars).toBe(row.context.length);
      expect(Math.abs(row.context.length - 20_000)).toBeLessThan(200);
      expect(Math.abs(needle_position / row.context.length - depth)).toBeLessThan(0.02);
      // The haystack is prose, not a repeated line: nearly every sentence is different, and other seven-digit numbers occur.
      const sentences = row.context.replace(needle, '').split(/(?<=\.)\s+/);
      expect(new Set(sentences).size / sentences.length).toBeGreaterThan(0.95);
      expect(row.context.match(/\b\d{7}\b/g)?.length ?? 0).toBeGreaterThan(3);
    }
    expect(rows.map((row) => row.metadata.depth).sort()).toEqual(Array.from({ length: 11 }, (_, i) => i / 10));
    // Dealt in a seeded order: the first few tasks are not all near the start.
    expect(Math.max(...rows.slice(0, 4).map((row) => row.metadata.depth as number))).toBeGreaterThan(0.3);
  });

  it('counting: every answer is computable from the records by code, each question kind appears, scored with oolong', () => {
    const rows = rowsOf('counting', { n: 9, contextChars: 30_000, seed: 3 });
    for (const row of rows) {
      const labels = [...row.context.matchAll(/^Date: \w{3} \d{2}, \d{4} \|\| User: \d{5} \|\| Instance: .+ \|\| Label: (.+)$/gm)].map(
        (match) => match[1] as string,
      );
      expect(labels.length).toBe(row.metadata.records);
      expect(labels.every((label) => (COUNTING_LABELS as readonly string[]).includes(label))).toBe(true);
      const count = (label: string) => labels.filter((found) => found === label).length;
      const asked = row.metadata.labels as string[];
      if (row.metadata.task === 'count') expect(row.answer).toBe(String(count(asked[0] as string)));
      if (row.metadata.task === 'compare') expect(row.answer).toBe(count(asked[0] as string) > count(asked[1] as string) ? asked[0] : asked[1]);
      if (row.metadata.task === 'most_common') expect(Math.max(...COUNTING_LABELS.map(count))).toBe(count(row.answer));
      for (const label of asked) expect(row.query).toContain(label);
      expect(row.scorer).toBe('oolong');
      expect(Math.abs(row.context.length - 30_000)).toBeLessThan(200);
      expect(row.metadata.context_chars).toBe(row.context.length);
    }
    expect(new Set(rows.map((row) => row.metadata.task))).toEqual(new Set(['count', 'compare', 'most_common']));
  });

  it('makes the context about the size asked for, from tiny (the needle alone, or three records) to large', () => {
    for (const contextChars of [1, 300, 250_000]) {
      for (const kind of ['niah', 'counting'] as const) {
        const [row] = rowsOf(kind, { n: 1, contextChars, seed: 0 });
        expect(row?.context.length, `${kind} ${contextChars}`).toBeLessThan(Math.max(contextChars + 200, 700));
        expect(row?.context.length, `${kind} ${contextChars}`).toBeGreaterThan(contextChars - 200);
      }
    }
  });

  it('refuses an unknown kind (with the nearest) and counts, sizes or seeds that are not integers, before making any row', () => {
    expect(() => generateDataset('naih' as 'niah', { n: 1, contextChars: 10, seed: 0 })).toThrow(
      'kind: "naih" is not a dataset rlm generates (did you mean "niah"?)',
    );
    expect(() => generateDataset('niah', { n: 0, contextChars: 10, seed: 0 })).toThrow(InvalidOptionError);
    expect(() => generateDataset('niah', { n: 1, contextChars: 1.5, seed: 0 })).toThrow(
      '--context-chars: must be a whole number of characters, at least 1; got 1.5',
    );
    expect(() => generateDataset('counting', { n: 1, contextChars: 10, seed: Number.NaN })).toThrow('--seed: must be an integer; got NaN');
  });

  it('writes JSONL whole or not at all: an aborted write leaves the previous file and no temporary file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-generated-'));
    const file = path.join(dir, 'set.jsonl');
    await writeJsonl(file, [{ query: 'old' }]);
    const controller = new AbortController();
    function* rows() {
      yield { query: 'new 1' };
      // As Ctrl-C would: between two rows, from the event loop.
      queueMicrotask(() => controller.abort());
      for (let i = 2; i < 100_000; i++) yield { query: `new ${i}` };
    }
    await expect(writeJsonl(file, rows(), { signal: controller.signal })).rejects.toThrow(/abort/i);
    expect(await readFile(file, 'utf8')).toBe('{"query":"old"}\n');
    expect(await readdir(dir)).toEqual(['set.jsonl']);
    await expect(writeJsonl(path.join(dir, 'missing', 'set.jsonl'), [{ query: 'q' }])).rejects.toThrow(/ENOENT/);
  });
});
