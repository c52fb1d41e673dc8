import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ToolCall, type JsonValue, type ToolCallParams, type ToolCallResult } from '@rlm/shared';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';
import { errorMessage } from '../to-error.js';
import { ToolDefinitionError } from './javascript-repl.js';

type Handler = (args: JsonValue[], signal: AbortSignal) => JsonValue | Promise<JsonValue>;

/** A fake host for tool calls: runs the named handler, records every call, turns a throw into a failure result. */
function fakeToolHost(handlers: Record<string, Handler>) {
  const calls: Array<ToolCallParams & { signal: AbortSignal }> = [];
  const onToolCall = async (params: ToolCallParams, { signal }: { signal: AbortSignal }): Promise<ToolCallResult> => {
    calls.push({ ...params, signal });
    const handler = handlers[params.name];
    if (!handler) return { ok: false, error: `no tool named ${params.name}` };
    try {
      return { ok: true, value: await handler(params.args, signal) };
    } catch (error) {
      return { ok: false, error: errorMessage(error) };
    }
  };
  return { calls, onToolCall };
}

let fixture: ReplFixture | undefined;
afterEach(async () => {
  await fixture?.dispose();
  fixture = undefined;
});

async function withTools(handlers: Record<string, Handler>) {
  const host = fakeToolHost(handlers);
  fixture = await startReplFixture({ onToolCall: host.onToolCall });
  const { defined } = await fixture.repl.defineTools({ tools: Object.keys(handlers).map((name) => ({ name, description: `the ${name} tool` })) });
  expect(defined).toEqual(Object.keys(handlers));
  return { fixture, calls: host.calls };
}

const customers: Handler = ([id, options]) => {
  const fields = (options as { fields?: string[] } | null)?.fields ?? ['name', 'city'];
  const record: Record<string, JsonValue> = { name: 'Ada', city: 'London' };
  return [Object.fromEntries(fields.map((field) => [field, record[field] ?? null])), { id: id ?? null }];
};

describe('custom tools', () => {
  test('a tool is a synchronous global function: JSON arguments go to the host, its JSON result comes back', async () => {
    const { fixture, calls } = await withTools({ lookup_customer: customers });
    const result = await fixture.run(
      'const rows = lookup_customer("c-42", { fields: ["name"], when: new Date(0), skip: undefined }, undefined);\n' +
        '[Array.isArray(rows), rows[0].name, rows[1].id, typeof lookup_customer, lookup_customer.name]',
    );
    expect(result.error).toBeNull();
    expect(result.value).toBe("[ true, 'Ada', 'c-42', 'function', 'lookup_customer' ]");
    // Trailing undefined is dropped, a property that is undefined is left out, a Date travels as its ISO string.
    expect(calls.map(({ name, args }) => ({ name, args }))).toEqual([
      { name: 'lookup_customer', args: ['c-42', { fields: ['name'], when: '1970-01-01T00:00:00.000Z' }] },
    ]);
  });

  test('a failing tool throws ToolError in the cell, which the cell can catch', async () => {
    const { fixture } = await withTools({
      flaky_tool: ([mode]) => {
        if (mode === 'fail') throw new Error('no such customer');
        return 'fine';
      },
    });
    const caught = await fixture.run(
      'let seen; try { flaky_tool("fail") } catch (e) { seen = [e.name, e.message, e instanceof Error] }\nseen.concat(flaky_tool("ok"))',
    );
    expect(caught.value).toBe("[ 'ToolError', 'flaky_tool failed: no such customer', true, 'fine' ]");
    const uncaught = await fixture.run('flaky_tool("fail")');
    expect(uncaught.status).toBe('error');
    expect(uncaught.error).toMatchObject({ type: 'ToolError', message: 'flaky_tool failed: no such customer' });
  });

  test('a host that cannot be reached is a ToolError too', async () => {
    fixture = await startReplFixture({ onToolCall: () => Promise.reject(new Error('control channel closed')) });
    await fixture.repl.defineTools({ tools: [{ name: 'lookup_customer' }] });
    const result = await fixture.run('lookup_customer(1)');
    expect(result.error).toMatchObject({ type: 'ToolError', message: 'lookup_customer failed: control channel closed' });
  });

  test('a tool overwritten or deleted by a cell is restored after it, with a note, and is never listed as a variable', async () => {
    const { fixture } = await withTools({ lookup_customer: customers, echo: (args) => args });
    const clobber = await fixture.run('lookup_customer = 5; delete globalThis.echo; const mine = 1; SHOW_VARS()');
    expect(clobber.status).toBe('ok');
    expect(clobber.stderr.text).toMatch(/"echo", "lookup_customer" are tools of the host; they were restored after this cell/);
    expect(clobber.stdout.text).toBe('Variables:\n  mine: number\n');
    expect(clobber.variables).toEqual([{ name: 'mine', type: 'number' }]);
    const after = await fixture.run('[typeof lookup_customer, echo("x", 2)]');
    expect(after.value).toBe("[ 'function', [ 'x', 2 ] ]");
    const final = await fixture.run('FINAL_VAR("echo")');
    expect(final.final).toBeNull();
    expect(final.stderr.text).toMatch(/no variable named "echo"\. Variables: mine/);
  });

  test('tools survive a restart of the worker', async () => {
    const { fixture } = await withTools({ echo: (args) => args });
    const exited = await fixture.run('process.exit(2)');
    expect(exited.stateLost).toBe(true);
    const after = await fixture.run('echo("still here")');
    expect(after.error).toBeNull();
    expect(after.value).toBe("[ 'still here' ]");
  });

  test('a tool call still running at the cell deadline times the cell out even if the cell catches the error, keeps the state and aborts the host call', async () => {
    const { fixture, calls } = await withTools({ slow: () => new Promise<JsonValue>(() => {}) });
    await fixture.run('const kept = 1');
    const result = await fixture.run('let got; try { got = slow() } catch (e) { got = e.name }\ngot', { timeoutMs: 100 });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(result.error?.type).toBe('TimeoutError');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.signal.aborted).toBe(true);
    expect((await fixture.run('kept + 1')).value).toBe('2');
  });

  test('defining tools again replaces the set', async () => {
    const { fixture } = await withTools({ first: () => 1, second: () => 2 });
    const { defined } = await fixture.repl.defineTools({ tools: [{ name: 'second' }, { name: 'third' }] });
    expect(defined).toEqual(['second', 'third']);
    const result = await fixture.run('[typeof first, second(), typeof third]');
    expect(result.value).toBe("[ 'undefined', 2, 'function' ]");
  });

  test('reserved names, keywords and built-in globals are refused with the tool named, and nothing changes', async () => {
    const { fixture } = await withTools({ echo: (args) => args });
    for (const [name, reason] of [
      ['print', /tool "print": the name is a reserved name of the REPL/],
      ['fetch', /tool "fetch": the name is a built-in global/],
      ['class', /tool "class": the name is a keyword/],
      ['context_2', /tool "context_2": the name is a name the REPL keeps for contexts/],
      ['two words', /tool "two words": the name is not an identifier/],
    ] as const) {
      const refusal = fixture.repl.defineTools({ tools: [{ name: 'ok_tool' }, { name }] });
      await expect(refusal).rejects.toBeInstanceOf(ToolDefinitionError);
      await expect(refusal).rejects.toThrow(reason);
    }
    expect((await fixture.run('[typeof echo, typeof ok_tool]')).value).toBe("[ 'function', 'undefined' ]");
  });

  test('a tool may not take the name of a loaded context, nor a context the name of a tool', async () => {
    const { fixture } = await withTools({ echo: (args) => args });
    fixture.writeContext('data.txt', 'text');
    await fixture.repl.loadContext({ variable: 'notes', file: 'data.txt', format: 'text' });
    await expect(fixture.repl.defineTools({ tools: [{ name: 'notes' }] })).rejects.toThrow(ToolDefinitionError);
    await expect(fixture.repl.defineTools({ tools: [{ name: 'notes' }] })).rejects.toThrow(/tool "notes": the name is bound to a context/);
    await expect(fixture.repl.loadContext({ variable: 'echo', file: 'data.txt', format: 'text' })).rejects.toThrow(/"echo" is the name of a tool/);
    expect((await fixture.run('[notes, echo(1)]')).value).toBe("[ 'text', [ 1 ] ]");
  });
});

// Nothing reaches the host in these, so they share one REPL.
describe('tool arguments refused in the cell', () => {
  let shared: { fixture: ReplFixture; calls: ToolCallParams[] };
  beforeAll(async () => {
    const host = fakeToolHost({ lookup_customer: customers });
    const own = await startReplFixture({ onToolCall: host.onToolCall });
    await own.repl.defineTools({ tools: [{ name: 'lookup_customer' }] });
    shared = { fixture: own, calls: host.calls };
  });
  afterAll(async () => {
    await shared.fixture.dispose();
  });

  test.each([
    ['a function', 'lookup_customer("c", { pick() {} })', /argument 2 is not JSON: \.pick is a function/],
    ['a BigInt', 'lookup_customer(10n)', /argument 1 is not JSON: it is a BigInt/],
    ['a symbol in an array', 'lookup_customer([1, Symbol("s")])', /argument 1 is not JSON: \[1\] is a symbol/],
    [
      'a cyclic object',
      'const loop = { a: {} }; loop.a.back = loop; lookup_customer(loop)',
      /argument 1 is not JSON: \.a\.back refers back to the value itself \(a cycle\)/,
    ],
    ['a Map', 'lookup_customer(1, 2, new Map())', /argument 3 is not JSON: it is a Map/],
    ['NaN', 'lookup_customer(0 / 0)', /argument 1 is not JSON: it is NaN/],
  ])('an argument that is %s is a TypeError naming it, and nothing reaches the host', async (_, code, message) => {
    const result = await shared.fixture.run(code);
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('TypeError');
    expect(result.error?.message).toMatch(message);
    expect(result.error?.message).toMatch(/^lookup_customer: /);
    expect(shared.calls).toEqual([]);
  });

  test('arguments over the control channel limit are a RangeError in the cell, before anything is sent', async () => {
    const result = await shared.fixture.run(`lookup_customer("x".repeat(${ToolCall.maxRequestBytes}))`);
    expect(result.error?.type).toBe('RangeError');
    expect(result.error?.message).toMatch(/^lookup_customer: the arguments are 8\.0 MiB of JSON, over the control channel's limit of 8\.0 MiB/);
    expect(shared.calls).toEqual([]);
  });
});
