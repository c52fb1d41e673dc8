/**
 * Cells that attack the JavaScript REPL's limits: answers too large or too deep to carry, more
 * variables than a result lists, memory bombs inside and outside V8's heap, and reports or messages
 * a cell forges from inside the worker. Each result must fit the protocol's schema (the fixture
 * parses it with `ExecuteResult`), and the REPL must carry on.
 */
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES } from '@rlm/shared';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';

let fixture: ReplFixture;
const run: ReplFixture['run'] = (code, params) => fixture.run(code, params);

beforeAll(async () => {
  fixture = await startReplFixture();
});
afterAll(async () => {
  await fixture?.dispose();
});

describe('answers past the limit', () => {
  test('FINAL of a string longer than MAX_FINAL_CHARS is a FinalTooLargeError result the model sees, with no answer', async () => {
    const result = await run(`FINAL("x".repeat(${MAX_FINAL_CHARS + 1}))`);
    expect(result.status).toBe('error');
    expect(result.final).toBeNull();
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toContain(`is ${(MAX_FINAL_CHARS + 1).toLocaleString('en-US')} characters long`);
    expect(result.error?.message).toContain(`limit of ${MAX_FINAL_CHARS.toLocaleString('en-US')} characters`);
    expect(result.error?.message).toMatch(/summarize/);
    expect(result.error?.stack[0]).toMatch(/^at cell \d+, line 1:\d+$/);
  });

  test('FINAL of a 100 MB string is refused the same way, and the next cell runs', async () => {
    const result = await run('FINAL("y".repeat(100 * 1024 * 1024))', { timeoutMs: 30_000 });
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.final).toBeNull();
    expect((await run('1 + 1')).value).toBe('2');
  });

  test('FINAL_VAR of a huge array stops rendering at the limit and is refused', async () => {
    const result = await run('const rows = Array.from({ length: 2_000_000 }, (_, i) => i); FINAL_VAR("rows")');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toMatch(/^The answer passed to FINAL_VAR is more than [\d,]+ characters long/);
    expect(result.final).toBeNull();
  });

  test('a refused answer the cell catches still makes the cell an error', async () => {
    const result = await run(`try { FINAL("z".repeat(${MAX_FINAL_CHARS + 10})) } catch {} print("went on")`);
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.stdout.text).toBe('went on\n');
  });

  test('an answer of exactly MAX_FINAL_CHARS is taken', async () => {
    const result = await run(`FINAL("a".repeat(${MAX_FINAL_CHARS}))`);
    expect(result.status).toBe('ok');
    expect(result.final?.value.length).toBe(MAX_FINAL_CHARS);
  });

  test('a shorter answer after a refused one is taken', async () => {
    const result = await run(`try { FINAL("z".repeat(${MAX_FINAL_CHARS + 10})) } catch {} FINAL("short")`);
    expect(result.status).toBe('ok');
    expect(result.final).toEqual({ value: 'short', via: 'FINAL' });
  });
});

describe('deeply nested answers', () => {
  test('an array nested 100,000 deep as FINAL renders a few levels deep, within the limits', async () => {
    const result = await run('let deep = []; for (let i = 0; i < 100_000; i++) deep = [deep]; FINAL(deep)');
    expect(result.status).toBe('ok');
    expect(result.final?.value).toMatch(/^\[\s*\[/);
    expect(result.final?.value).toContain('[Array]');
  });

  test('an object nested 100,000 deep with a cycle and a BigInt renders too', async () => {
    const result = await run('let node = { n: 1n }; node.self = node; for (let i = 0; i < 100_000; i++) node = { child: node }; FINAL(node)');
    expect(result.status).toBe('ok');
    expect(result.final?.value).toContain('child');
  });

  test('a 600-deep array is still JSON', async () => {
    const result = await run('let d = 1; for (let i = 0; i < 500; i++) d = [d]; FINAL(d)');
    expect(result.final?.value.startsWith('[\n  [\n    [')).toBe(true);
  });
});

describe('variables', () => {
  test(`a result lists at most ${MAX_LISTED_VARIABLES} variables and SHOW_VARS says how many were left out`, async () => {
    const result = await run('for (let i = 0; i < 1500; i++) globalThis["many_" + String(i).padStart(4, "0")] = i; SHOW_VARS()');
    expect(result.variables).toHaveLength(MAX_LISTED_VARIABLES);
    expect(result.stdout.text).toMatch(/… and 5\d\d more \(only the first 1,000 by name are listed\)\n$/);
    await run('for (let i = 0; i < 1500; i++) delete globalThis["many_" + String(i).padStart(4, "0")]');
  });

  test('names and types longer than 256 characters are cut to 256', async () => {
    const result = await run(
      'globalThis["n".repeat(5000)] = 1; const Long = { ["K".repeat(5000)]: class {} }["K".repeat(5000)]; var instance = new Long(); ' +
        'var typed = new ({ ["T".repeat(5000)]: class extends Uint8Array {} }["T".repeat(5000)])(3)',
    );
    const long = result.variables.find((variable) => variable.name.startsWith('nnn'));
    expect(long?.name).toHaveLength(256);
    expect(result.variables.find((variable) => variable.name === 'instance')?.type).toHaveLength(256);
    expect(result.variables.find((variable) => variable.name === 'typed')?.type.length).toBeLessThanOrEqual(256);
    await run('delete globalThis["n".repeat(5000)]; delete globalThis.instance; delete globalThis.typed; delete globalThis.Long');
  });
});

describe('errors past the schema', () => {
  test('an error with a 1 MB message, a 5,000-character class name and deep recursion fits the schema', async () => {
    const result = await run(
      'const Named = { ["E".repeat(5000)]: class extends Error {} }["E".repeat(5000)]; function down(n) { if (n === 0) throw new Named("m".repeat(1024 * 1024)); down(n - 1) } down(200)',
    );
    expect(result.status).toBe('error');
    expect(result.error?.type).toHaveLength(256);
    expect(result.error?.message.length).toBeLessThanOrEqual(64 * 1024);
    expect(result.error?.message).toMatch(/more characters\)$/);
    expect(result.error?.stack.length).toBeLessThanOrEqual(32);
  });
});

describe('forged messages from the worker', () => {
  // A cell owns its worker's realm, so it can post on the worker's ports: what it forges is only
  // its own result, and must still fit the protocol. A fresh REPL's first request has id 1.
  let own: ReplFixture | undefined;
  afterEach(async () => {
    await own?.dispose();
    own = undefined;
  });

  test('a forged execute report with oversized fields is cut to the limits; the answer is refused', async () => {
    own = await startReplFixture();
    const result = await own.run(`
      const { parentPort } = require("node:worker_threads");
      parentPort.postMessage({ type: "executed", id: 1, report: {
        status: "ok",
        stdout: { text: "o".repeat(5_000_000), truncatedChars: -5 },
        stderr: { text: "", truncatedChars: 0 },
        value: "v".repeat(100_000),
        error: null,
        final: { value: "f".repeat(${MAX_FINAL_CHARS + 1}), via: "FINAL", variable: "w".repeat(1000) },
        variables: Array.from({ length: 20_000 }, (_, i) => ({ name: "n".repeat(300) + i, type: "t".repeat(300) })),
      } });
    `);
    expect(result.final).toBeNull();
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.stdout.text.length).toBeLessThanOrEqual(20_000);
    expect(result.stdout.truncatedChars).toBeGreaterThan(0);
    expect(result.value?.length).toBeLessThanOrEqual(2000);
    expect(result.variables).toHaveLength(MAX_LISTED_VARIABLES);
    expect((await own.run('1 + 2')).value).toBe('3');
  });

  test('a forged report of another shape or kind for the running cell is an InternalError result, not a throw', async () => {
    own = await startReplFixture();
    const malformed = await own.run(
      'require("node:worker_threads").parentPort.postMessage({ type: "executed", id: 1, report: { status: "fine", stdout: 5 } })',
    );
    expect(malformed.error?.type).toBe('InternalError');
    const otherKind = await own.run('require("node:worker_threads").parentPort.postMessage({ type: "context-loaded", id: 2, bytes: 1, valueType: "x" })');
    expect(otherKind.error?.type).toBe('InternalError');
    expect((await own.run('"still fine"')).value).toBe("'still fine'");
  });

  test('malformed messages on the worker port and the host-call port are dropped; the REPL carries on', async () => {
    const result = await run(`
      const { parentPort, workerData } = require("node:worker_threads");
      for (const junk of [null, 7, "text", { type: 5 }, { type: "executed", id: "x" }, { type: "executed" }]) parentPort.postMessage(junk);
      for (const junk of [null, 7, { id: -1, kind: "subcall" }, { id: 1 }, { id: 2, kind: "nope" }, { id: 3, kind: "subcall", params: null }]) workerData.hostCallPort.postMessage(junk);
      "survived"
    `);
    expect(result.value).toBe("'survived'");
    expect((await run('1 + 2')).value).toBe('3');
  });
});
