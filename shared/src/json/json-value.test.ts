import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../limits.js';
import { DefineToolsParams, ToolCallParams, ToolCallResult } from '../protocol/messages.js';
import { isJsonValue, toJsonValue } from './json-value.js';

describe('toJsonValue', () => {
  it('copies JSON values and follows JSON.stringify where it loses nothing', () => {
    const shared = { n: 1 };
    const input = {
      s: 'x',
      n: -0.5,
      b: true,
      z: null,
      list: [1, undefined, 'a'],
      gone: undefined,
      when: new Date(0),
      shared,
      again: shared,
      boxed: Object('s'),
    };
    const result = toJsonValue(input);
    expect(result).toEqual({
      ok: true,
      value: { s: 'x', n: -0.5, b: true, z: null, list: [1, null, 'a'], when: '1970-01-01T00:00:00.000Z', shared: { n: 1 }, again: { n: 1 }, boxed: 's' },
    });
    expect(result.ok && (result.value as { shared: unknown }).shared).not.toBe(shared);
  });

  it('keeps a "__proto__" key as an own property', () => {
    const result = toJsonValue(JSON.parse('{"__proto__": {"polluted": true}}'));
    expect(result.ok && Object.keys(result.value as object)).toEqual(['__proto__']);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it.each([
    [undefined, '', 'is undefined'],
    [() => 1, '', 'is a function'],
    [{ a: [1, Symbol('s')] }, '.a[1]', 'is a symbol'],
    [{ 'a key': 1n }, '["a key"]', 'is a BigInt'],
    [[Number.NaN], '[0]', 'is NaN'],
    [{ m: new Map() }, '.m', 'is a Map'],
    [new Set([1]), '', 'is a Set'],
    [new Uint8Array(2), '', 'is a Uint8Array'],
    [new Error('x'), '', 'is an Error'],
    [Promise.resolve(1), '', 'is a Promise'],
  ])('refuses %s at %j', (value, path, problem) => {
    const result = toJsonValue(value);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.path).toBe(path);
    expect(!result.ok && result.problem).toContain(problem);
  });

  it('refuses a cycle and says where it closes', () => {
    const root: Record<string, unknown> = { child: {} };
    (root.child as Record<string, unknown>).up = root;
    expect(toJsonValue(root)).toEqual({ ok: false, path: '.child.up', problem: 'refers back to the value itself (a cycle)' });
  });

  it('refuses nesting past MAX_JSON_DEPTH instead of overflowing the stack', () => {
    let deep: unknown = 1;
    for (let level = 0; level < MAX_JSON_DEPTH + 1; level += 1) deep = [deep];
    const result = toJsonValue(deep);
    expect(!result.ok && result.problem).toContain(`deeper than ${MAX_JSON_DEPTH}`);
    expect(isJsonValue(deep)).toBe(false);
  });
});

describe('isJsonValue', () => {
  it('accepts parsed JSON and refuses what JSON cannot hold', () => {
    expect(isJsonValue(JSON.parse('{"a": [1, "x", null, true, {"b": {}}]}'))).toBe(true);
    expect(isJsonValue(Object.create(null))).toBe(true);
    for (const value of [undefined, Number.POSITIVE_INFINITY, 1n, new Date(), [() => 1], { s: Symbol('s') }]) {
      expect(isJsonValue(value)).toBe(false);
    }
  });
});

describe('tool schemas', () => {
  it('refuse a reserved or built-in name with a message naming the tool', () => {
    const parsed = DefineToolsParams.safeParse({ tools: [{ name: 'lookup' }, { name: 'FINAL' }, { name: 'setTimeout' }] });
    expect(parsed.success).toBe(false);
    const messages = parsed.error?.issues.map((issue) => issue.message);
    expect(messages).toEqual([
      expect.stringMatching(/^tool "FINAL": the name is a reserved name of the REPL/),
      expect.stringMatching(/^tool "setTimeout": the name is a built-in global/),
    ]);
  });

  it('refuse a tool defined twice', () => {
    const parsed = DefineToolsParams.safeParse({ tools: [{ name: 'twice' }, { name: 'twice' }] });
    expect(parsed.error?.issues[0]).toMatchObject({ message: 'tool "twice" is defined twice', path: ['tools', 1, 'name'] });
  });

  it('carry JSON arguments and results, and nothing else', () => {
    expect(ToolCallParams.safeParse({ name: 'lookup', args: ['c-42', { fields: ['name'] }] }).success).toBe(true);
    expect(ToolCallParams.safeParse({ name: 'lookup', args: [Number.NaN] }).success).toBe(false);
    expect(ToolCallResult.safeParse({ ok: true, value: null }).success).toBe(true);
    expect(ToolCallResult.safeParse({ ok: true }).success).toBe(false);
    expect(ToolCallResult.safeParse({ ok: false, error: 'x'.repeat(64 * 1024 + 1) }).success).toBe(false);
  });
});
