import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonChunks } from './json-chunks.js';

const joined = (value: unknown) => [...jsonChunks(value)].join('');

describe('jsonChunks', () => {
  it('gives the text JSON.stringify gives, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(joined(value)).toBe(JSON.stringify(value));
      }),
      { numRuns: 500 },
    );
  });

  it('writes a long string in slices that parse back to the same string, surrogate pairs split across slices included', () => {
    // 64 Ki code units per slice: an emoji (a surrogate pair) straddles the first boundary.
    const text = `${'a'.repeat(64 * 1024 - 1)}😀${'"\\\n'.repeat(50_000)}é${'b'.repeat(10)}\ud800`;
    const chunks = [...jsonChunks({ text })];
    expect(chunks.length).toBeGreaterThan(3);
    expect(Math.max(...chunks.map((c) => c.length))).toBeLessThan(64 * 1024 * 6 + 2);
    expect(JSON.parse(chunks.join(''))).toEqual({ text });
  });

  it('leaves undefined and functions out of objects, writes them as null in arrays, and honours toJSON', () => {
    const value = { a: undefined, b: () => 1, c: [undefined, Number.NaN], d: new Date('2026-01-02T03:04:05.000Z') };
    expect(joined(value)).toBe(JSON.stringify(value));
  });

  it('refuses a cycle and a bigint as JSON.stringify does', () => {
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    expect(() => joined(cycle)).toThrow(TypeError);
    expect(() => joined({ n: 1n })).toThrow(/bigint/);
  });
});
