import { describe, expect, test } from 'vitest';
import { capText, renderFinal, shortType } from './render.js';

describe('capText', () => {
  test.each([10, 100, 2000, 64 * 1024])('a text cut to %i characters is never longer, marker included', (limit) => {
    for (const length of [limit + 1, limit * 3, 10_000_000]) {
      const cut = capText('x'.repeat(length), limit);
      expect(cut.length).toBeLessThanOrEqual(limit);
      if (limit >= 100) expect(cut).toMatch(/… \([\d,]+ more characters\)$/);
    }
  });

  test('the marker counts exactly the characters cut', () => {
    const cut = capText('a'.repeat(5000), 2000);
    const shown = /^(a*)… \(([\d,]+) more characters\)$/.exec(cut);
    expect(Number(shown?.[2]?.replaceAll(',', '')) + (shown?.[1]?.length ?? 0)).toBe(5000);
  });

  test('a cut never leaves half a surrogate pair', () => {
    const cut = capText('😀'.repeat(5000), 2000);
    expect(cut.length).toBeLessThanOrEqual(2000);
    expect(() => encodeURIComponent(cut)).not.toThrow();
  });
});

describe('renderFinal', () => {
  test('strings are taken as they are up to the limit, and refused with their length past it', () => {
    expect(renderFinal('abc', 3)).toEqual({ ok: true, text: 'abc' });
    expect(renderFinal('abcd', 3)).toEqual({ ok: false, chars: 4, atLeast: false });
  });

  test('other values are exactly JSON.stringify(value, null, 2) when that fits', () => {
    const values = [
      { a: [1, 'two', null, true], b: { c: undefined, d: () => 1 } },
      [undefined, Symbol('s')],
      new Date(0),
      { toJSON: () => 'custom' },
      1.5e300,
      -0,
      [[[]]],
    ];
    for (const value of values) expect(renderFinal(value)).toEqual({ ok: true, text: JSON.stringify(value, null, 2) });
  });

  test('the JSON rendering stops once the text is sure to pass the limit, for wide and for shared values', () => {
    const wide = renderFinal(
      Array.from({ length: 1_000_000 }, (_, i) => i),
      1000,
    );
    expect(wide).toMatchObject({ ok: false, atLeast: true });
    expect(wide.ok ? 0 : wide.chars).toBeLessThan(1100);
    // 2^40 paths through 80 objects: a rendering that did not stop would never end.
    let shared: unknown = 'leaf';
    for (let i = 0; i < 40; i++) shared = [shared, shared];
    expect(renderFinal(shared, 10_000)).toMatchObject({ ok: false, atLeast: true });
  });

  test('a value just over the limit as JSON is refused, one just under is taken', () => {
    const value = { key: 'v'.repeat(100) };
    const length = JSON.stringify(value, null, 2).length;
    expect(renderFinal(value, length)).toEqual({ ok: true, text: JSON.stringify(value, null, 2) });
    expect(renderFinal(value, length - 1)).toMatchObject({ ok: false });
  });

  test('cycles, BigInt and nesting deeper than JSON takes are inspected instead', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(renderFinal(cyclic)).toEqual({ ok: true, text: "<ref *1> { name: 'loop', self: [Circular *1] }" });
    expect(renderFinal({ n: 10n })).toEqual({ ok: true, text: '{ n: 10n }' });
    let deep: unknown = [];
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const rendered = renderFinal(deep);
    expect(rendered.ok && rendered.text).toContain('[Array]');
  });

  test('a cell that replaced JSON.stringify does not change how answers render', () => {
    const original = JSON.stringify;
    JSON.stringify = () => 'x'.repeat(10_000_000);
    try {
      expect(renderFinal({ a: 1 })).toEqual({ ok: true, text: '{\n  "a": 1\n}' });
    } finally {
      JSON.stringify = original;
    }
  });
});

describe('shortType', () => {
  test('a type named by a 5,000-character class is cut to 256 characters, typed arrays included', () => {
    const Long = { ['K'.repeat(5000)]: class {} }['K'.repeat(5000)] as new () => object;
    const LongArray = { ['T'.repeat(5000)]: class extends Uint8Array {} }['T'.repeat(5000)] as new (length: number) => Uint8Array;
    expect(shortType(new Long())).toHaveLength(256);
    expect(shortType(new LongArray(3)).length).toBeLessThanOrEqual(256);
    expect(shortType(new LongArray(3))).toMatch(/\(3\)$/);
  });
});
