import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
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
