import { runInNewContext } from 'node:vm';
import { describe, expect, test } from 'vitest';
import { CellSyntaxError, DECLARE_GLOBALS, transformCell } from './transform-cell.js';

/** Runs a transformed cell against a fresh global object and returns its completion and the globals. */
async function evaluate(code: string, globals: Record<string, unknown> = {}) {
  const sandbox: Record<string, unknown> = { ...globals };
  // The cell runner installs this helper in the worker; the tests' fresh global needs its own.
  Object.defineProperty(sandbox, DECLARE_GLOBALS, {
    value: (names: string[]) => {
      for (const name of names) if (!(name in sandbox)) sandbox[name] = undefined;
    },
  });
  const completion = (await runInNewContext(transformCell(code).code, sandbox)) as [unknown] | undefined;
  return { completion, globals: sandbox as Record<string, unknown> };
}

describe('transformCell', () => {
  test('keeps every line of the cell on its own line', () => {
    const source = 'const a = 1\nlet [b, {c}] = [2, {c: 3}]\nclass D {}\nfunction e() {}\nvar f\na + b';
    const { code } = transformCell(source);
    const lines = code.split('\n');
    expect(lines).toHaveLength(source.split('\n').length + 1);
    expect(lines.at(-1)).toBe('}).call(this)');
  });

  test('turns top-level declarations, destructuring included, into globals', async () => {
    const { globals } = await evaluate(
      'const a = 1; let {b, c: [d = 4, ...rest]} = {b: 2, c: [undefined, 5, 6]}; var e = 7, f; class G {}; function h() { return a }\nasync function* i() {}',
    );
    expect(globals).toMatchObject({ a: 1, b: 2, d: 4, rest: [5, 6], e: 7, f: undefined });
    expect(typeof globals.G).toBe('function');
    expect((globals.h as () => number)()).toBe(1);
    expect(typeof globals.i).toBe('function');
  });

  test('a later cell may declare the same const again', async () => {
    const first = await evaluate('const a = 1');
    const { globals } = await evaluate('const a = 2; a', first.globals);
    expect(globals.a).toBe(2);
  });

  test('keeps block-scoped declarations and function-local vars local', async () => {
    const { globals } = await evaluate('{ const inner = 1 } for (let i = 0; i < 2; i++) {} function f() { var local = 1 } f()');
    expect(Object.keys(globals)).toEqual(['f']);
  });

  test('makes vars in nested blocks and loop heads global', async () => {
    const { globals } = await evaluate('if (true) { var x = 1 } for (var i = 0; i < 3; i++) {} for (var k in {p: 1}) {} for (var [m] of [[9]]) {}');
    expect(globals).toMatchObject({ x: 1, i: 3, k: 'p', m: 9 });
  });

  test('a var without initialiser keeps the value an earlier cell gave it', async () => {
    const { globals } = await evaluate('var kept; kept', { kept: 5 });
    expect(globals.kept).toBe(5);
  });

  test('returns the last expression boxed, without awaiting a promise', async () => {
    expect((await evaluate('1 + 1')).completion).toEqual([2]);
    expect((await evaluate('await Promise.resolve(3)')).completion).toEqual([3]);
    const [promise] = (await evaluate('Promise.resolve(4)')).completion ?? [];
    expect(typeof (promise as { then?: unknown }).then).toBe('function');
    expect((await evaluate('const x = 1')).completion).toBeUndefined();
    expect((await evaluate('1, 2')).completion).toEqual([2]);
  });

  test('does not let ASI join a rewritten declaration with the next line', async () => {
    const { globals } = await evaluate('let x\n[1, 2].forEach(n => { total = (typeof total === "number" ? total : 0) + n })');
    expect(globals.total).toBe(3);
  });

  test('maps generated positions back to the cell, columns included', () => {
    const transformed = transformCell('const value = missing + 1\n  let y = other');
    const code = transformed.code.split('\n');
    const line1 = code[0] ?? '';
    const line2 = code[1] ?? '';
    expect(transformed.mapPosition(1, line1.indexOf('missing') + 1)).toEqual({ line: 1, column: 15 });
    expect(transformed.mapPosition(2, line2.indexOf('other') + 1)).toEqual({ line: 2, column: 11 });
    expect(transformed.mapPosition(3, 1)).toBeUndefined();
  });

  test('reports a syntax error at the cell line and column', () => {
    let caught: unknown;
    try {
      transformCell('const a = 1\nconst b = ;');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CellSyntaxError);
    expect(caught).toMatchObject({ line: 2, column: 11, message: 'Unexpected token' });
  });

  test('a "use strict" cell still gets its declarations made global', async () => {
    const { globals } = await evaluate('"use strict"; const a = 1');
    expect(globals.a).toBe(1);
  });
});
