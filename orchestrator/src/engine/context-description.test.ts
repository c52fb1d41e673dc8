import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { CONTEXT_FILE_SAMPLE_BYTES, contextFromFile } from '../sandbox/context-files.js';
import { describeContext, formatContextDescription } from './context-description.js';

describe('describeContext', () => {
  it('describes a string as one part', () => {
    expect(describeContext('abc')).toEqual({ type: 'string', totalChars: 3, partLengths: [3] });
  });

  it('describes a list of strings with one part per item', () => {
    expect(describeContext(['ab', '', 'cdef'])).toEqual({ type: 'list', totalChars: 6, partLengths: [2, 0, 4] });
  });

  it('describes an object of strings as a map of path → content, naming the first paths', () => {
    const files = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`src/f${i}.ts`, 'x'.repeat(i)]));
    const d = describeContext(files);
    expect(d.type).toBe('map');
    expect(d.partLengths).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(d.totalChars).toBe(66);
    expect(d.paths).toEqual(Array.from({ length: 10 }, (_, i) => `src/f${i}.ts`));
  });

  it('describes anything else as JSON measured by its serialized length', () => {
    expect(describeContext([1, 'a'])).toEqual({ type: 'json', totalChars: 7, partLengths: [7], jsonKind: 'array' });
    expect(describeContext({ a: { b: 1 } })).toMatchObject({ type: 'json', totalChars: 13, jsonKind: 'object' });
    expect(describeContext(42)).toMatchObject({ type: 'json', totalChars: 2, jsonKind: 'number' });
    expect(describeContext(null)).toMatchObject({ type: 'json', totalChars: 4, jsonKind: 'null' });
    expect(describeContext(new Date(0))).toMatchObject({ type: 'json', jsonKind: 'object' });
  });

  it('refuses values that cannot be loaded into the REPL, naming the option', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const bad of [undefined, () => 1, 1n, cyclic]) {
      expect(() => describeContext(bad)).toThrow(InvalidOptionError);
    }
    expect(() => describeContext(undefined)).toThrow(/^context: /);
  });
});

describe('formatContextDescription', () => {
  it('states a string’s total with thousands separators', () => {
    expect(formatContextDescription(describeContext('x'.repeat(1_234_567)))).toBe('Your context is a string with 1,234,567 total characters.');
  });

  it('lists at most 100 part lengths, then how many others there are', () => {
    const list = Array.from({ length: 130 }, () => 'abc');
    const text = formatContextDescription(describeContext(list));
    expect(text).toContain('a list of 130 strings with 390 total characters');
    expect(text).toContain(`[${Array(100).fill(3).join(', ')}, … [30 others]]`);
  });

  it('names a map’s first paths and says how many more there are', () => {
    const files = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.md`, 'yy']));
    const text = formatContextDescription(describeContext(files));
    expect(text).toContain('an object mapping 12 paths to their contents, with 24 total characters');
    expect(text).toContain('"f0.md", "f1.md"');
    expect(text).toContain('"f9.md", … (2 more)');
    expect(text).not.toContain('"f10.md"');
  });

  it('says a JSON value is parsed, and handles empty lists and maps', () => {
    expect(formatContextDescription(describeContext({ n: 1 }))).toBe(
      'Your context is a JSON object (parsed, not text) of 7 characters when serialized as JSON.',
    );
    expect(formatContextDescription(describeContext([]))).toBe('Your context is an empty list.');
    expect(formatContextDescription(describeContext({}))).toBe('Your context is an empty object (no paths).');
  });
});

describe('describing file-backed contexts', () => {
  async function file(name: string, content: string, format: 'text' | 'json' = 'text') {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-describe-'));
    await writeFile(path.join(dir, name), content);
    return contextFromFile(path.join(dir, name), { format });
  }

  it('describes a small file exactly, as a string', async () => {
    const small = await file('a.txt', 'héllo');
    expect(describeContext(small)).toEqual({ type: 'string', totalChars: 5, partLengths: [5] });
    expect(formatContextDescription(describeContext(small))).toBe('Your context is a string with 5 total characters.');
  });

  it('describes a large file from its size, saying the total is an estimate', async () => {
    const large = await file('big.txt', 'x'.repeat(CONTEXT_FILE_SAMPLE_BYTES + 1000));
    const d = describeContext(large);
    expect(d).toEqual({ type: 'string', totalChars: CONTEXT_FILE_SAMPLE_BYTES + 1000, partLengths: [CONTEXT_FILE_SAMPLE_BYTES + 1000], approximate: true });
    expect(formatContextDescription(d)).toBe(
      `Your context is a string with about ${(CONTEXT_FILE_SAMPLE_BYTES + 1000).toLocaleString('en-US')} total characters.`,
    );
  });

  it('describes maps and lists of files and strings, with estimated lengths marked', async () => {
    const map = { 'a.txt': await file('a.txt', 'AAA'), 'big.txt': await file('big.txt', 'y'.repeat(CONTEXT_FILE_SAMPLE_BYTES * 2)), '<context>': 'lit' };
    const d = describeContext(map);
    expect(d).toMatchObject({ type: 'map', partLengths: [3, CONTEXT_FILE_SAMPLE_BYTES * 2, 3], paths: ['a.txt', 'big.txt', '<context>'], approximate: true });
    expect(formatContextDescription(d)).toContain('Content lengths (those of large files estimated from their size), in the same order');
    expect(describeContext([await file('a.txt', 'AB'), 'c'])).toEqual({ type: 'list', totalChars: 3, partLengths: [2, 1] });
  });

  it('describes a JSON file by what its first character says it holds', async () => {
    const json = await file('rows.json', '[{"id": 1}]', 'json');
    expect(describeContext(json)).toEqual({ type: 'json', totalChars: 11, partLengths: [11], jsonKind: 'array' });
    expect(formatContextDescription(describeContext(json))).toBe('Your context is a JSON array (parsed, not text) of 11 characters when serialized as JSON.');
  });

  it('refuses a file nested where it cannot load', async () => {
    const text = await file('a.txt', 'A');
    expect(() => describeContext({ deep: { a: text } })).toThrow(InvalidOptionError);
    expect(() => describeContext([text, 1])).toThrow(/only texts/);
  });
});
