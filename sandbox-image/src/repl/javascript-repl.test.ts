import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_FINAL_CHARS, Subcall } from '@rlm/shared';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';

let fixture: ReplFixture;
const run: ReplFixture['run'] = (code, params) => fixture.run(code, params);

beforeAll(async () => {
  fixture = await startReplFixture({
    answer: (prompt, params) => (prompt === 'fail me' ? new Error('model overloaded') : `${params.model ?? 'default'}: ${prompt.toUpperCase()}`),
  });
});
afterAll(async () => {
  await fixture.dispose();
});

describe('state across cells', () => {
  test('top-level const, let, var, class, function and destructured names persist', async () => {
    const first = await run(
      'const a = 1; let b = 2; var c = 3; class D { get x() { return 4 } }\nfunction e() { return 5 }\nconst {f, g: [h]} = {f: 6, g: [7]};',
    );
    expect(first.status).toBe('ok');
    const second = await run('[a, b, c, new D().x, e(), f, h]');
    expect(second.value).toBe('[\n  1, 2, 3, 4,\n  5, 6, 7\n]');
  });

  test('a const may be declared again in a later cell', async () => {
    await run('const again = 1');
    const result = await run('const again = 2; again');
    expect(result.status).toBe('ok');
    expect(result.value).toBe('2');
  });

  test('a declaration may shadow a getter-only global of the runtime such as crypto', async () => {
    const first = await run("const crypto = require('node:crypto'); class navigator {}\nfunction performanceNow() { return 1 }");
    expect(first.status).toBe('ok');
    const second = await run('[typeof crypto.randomBytes, typeof navigator, performanceNow()]');
    expect(second.value).toBe("[ 'function', 'function', 1 ]");
  });

  test('declaring a read-only global of the runtime is a clear error', async () => {
    const result = await run('const undefined = 1');
    expect(result.status).toBe('error');
    expect(result.error?.message).toMatch(/Cannot declare "undefined": it is a read-only global/);
  });

  test('top-level await works and the last expression is the value', async () => {
    const result = await run('const waited = await new Promise((resolve) => setTimeout(() => resolve(41), 10));\nwaited + 1');
    expect(result.value).toBe('42');
  });

  test('a cell ending in a statement or undefined has no value', async () => {
    expect((await run('const nothing = 1')).value).toBeUndefined();
    expect((await run('undefined')).value).toBeUndefined();
  });

  test('variables lists the user variables with short types', async () => {
    const result = await run('const listed = "s"; const listMap = new Map([[1, 2]]); const listArr = [1, 2, 3]');
    expect(result.variables).toEqual(
      expect.arrayContaining([
        { name: 'listed', type: 'string' },
        { name: 'listMap', type: 'Map(1)' },
        { name: 'listArr', type: 'Array(3)' },
      ]),
    );
    expect(result.variables.map((variable) => variable.name)).not.toContain('require');
    expect(result.variables.map((variable) => variable.name)).not.toContain('llm_query');
  });
});

describe('output', () => {
  test('print and console.log go to stdout, console.error and warn to stderr', async () => {
    const result = await run(
      'print("a", 1, {b: 2}); console.log("%s=%d", "x", 5); console.info("info"); console.error("bad"); console.warn("careful"); process.stdout.write("raw\\n"); process.stderr.write("raw err\\n")',
    );
    expect(result.stdout).toEqual({ text: 'a 1 { b: 2 }\nx=5\ninfo\nraw\n', truncatedChars: 0 });
    expect(result.stderr).toEqual({ text: 'bad\ncareful\nraw err\n', truncatedChars: 0 });
  });

  test('output past the limit keeps head and tail and counts what was cut', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the cell's code holds a template literal
    const result = await run('for (let i = 0; i < 1000; i++) print(`line ${i}`)', { outputLimitChars: 300 });
    expect(result.stdout.text.length).toBeLessThanOrEqual(300);
    expect(result.stdout.text.startsWith('line 0\n')).toBe(true);
    expect(result.stdout.text.endsWith('line 999\n')).toBe(true);
    expect(result.stdout.text).toMatch(/\n\[\.\.\. [\d,]+ characters truncated \.\.\.\]\n/);
    const written = Array.from({ length: 1000 }, (_, i) => `line ${i}\n`).join('').length;
    const kept = result.stdout.text.replace(/\n\[\.\.\. [\d,]+ characters truncated \.\.\.\]\n/, '').length;
    expect(result.stdout.truncatedChars).toBe(written - kept);
  });

  test('a 50 MB flood comes back small with the dropped count', async () => {
    const result = await run('const line = "x".repeat(999); for (let i = 0; i < 50_000; i++) console.log(line)', {
      outputLimitChars: 1000,
    });
    expect(result.status).toBe('ok');
    expect(result.stdout.text.length).toBeLessThanOrEqual(1000);
    expect(result.stdout.truncatedChars).toBeGreaterThan(49_990_000);
  });
});

describe('errors', () => {
  test('an exception reports its class, message and stack frames in cell lines', async () => {
    const result = await run('function inner() {\n  throw new RangeError("too far");\n}\ninner();');
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('RangeError');
    expect(result.error?.message).toBe('too far');
    const cell = /^at inner \(cell (\d+), line 2:9\)$/.exec(result.error?.stack[0] ?? '');
    expect(cell, String(result.error?.stack)).not.toBeNull();
    expect(result.error?.stack[1]).toBe(`at cell ${cell?.[1]}, line 4:1`);
  });

  test('a function from an earlier cell shows its own cell and line in the stack', async () => {
    const defined = await run('const marker = 0;\nfunction boom() {\n  return null.x;\n}');
    expect(defined.status).toBe('ok');
    const result = await run('boom()');
    expect(result.error?.stack[0]).toMatch(/^at boom \(cell \d+, line 3:15\)$/);
  });

  test('errors thrown in callbacks and unhandled rejections go to stderr without failing the cell', async () => {
    const result = await run(
      // The cell waits for its callback to have thrown, not for a fixed time.
      'const thrown = new Promise((resolve) => setTimeout(() => { setImmediate(resolve); throw new Error("late") }, 1));\n' +
        'Promise.reject(new Error("nobody caught me"));\nawait thrown; "done"',
    );
    expect(result.status).toBe('ok');
    expect(result.stderr.text).toContain('Unhandled promise rejection: Error: nobody caught me');
    expect(result.stderr.text).toContain('Uncaught Error: late');
  });

  test('a thrown non-error is rendered', async () => {
    const string = await run('throw "plain words"');
    expect(string.error).toEqual({ type: 'Error', message: 'plain words', stack: [] });
    const object = await run('throw {code: 7}');
    expect(object.error?.message).toBe('{ code: 7 }');
  });

  test('a syntax error gives the cell line and column', async () => {
    const result = await run('const ok = 1;\nconst broken = ;');
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('SyntaxError');
    expect(result.error?.stack[0]).toMatch(/^at cell \d+, line 2:16$/);
  });

  test('output written before an error is kept', async () => {
    const result = await run('print("before"); null.x');
    expect(result.stdout.text).toBe('before\n');
    expect(result.error?.type).toBe('TypeError');
  });
});

describe('node built-ins', () => {
  test('require works for node:path and node:fs', async () => {
    const result = await run('const path = require("node:path"); const fs = require("node:fs");\n[path.join("a", "b"), typeof fs.readFileSync]');
    expect(result.value).toBe("[ 'a/b', 'function' ]");
  });

  test('dynamic import of a built-in works and prints no warning', async () => {
    const result = await run('const os = await import("node:os"); typeof os.cpus');
    expect(result.value).toBe("'function'");
    expect(result.stderr.text).toBe('');
  });
});

describe('sub-calls', () => {
  test('llm_query answers synchronously and awaited, passing the model through', async () => {
    const before = fixture.subcalls.calls.length;
    const result = await run('const s = llm_query("hi", { model: "small" }); const t = await llm_query("yo"); [s, t]');
    expect(result.value).toBe("[ 'small: HI', 'default: YO' ]");
    expect(fixture.subcalls.calls.slice(before)).toEqual([
      { kind: 'llm_query', prompts: ['hi'], batched: false, model: 'small' },
      { kind: 'llm_query', prompts: ['yo'], batched: false },
    ]);
  });

  test('batched calls keep input order and turn a failed slot into an Error string', async () => {
    const before = fixture.subcalls.calls.length;
    const result = await run('rlm_query_batched(["a", "fail me", "c"], { model: "m" })');
    expect(result.value).toBe("[ 'm: A', 'Error: model overloaded', 'm: C' ]");
    expect(fixture.subcalls.calls.slice(before)).toEqual([{ kind: 'rlm_query', prompts: ['a', 'fail me', 'c'], batched: true, model: 'm' }]);
  });

  test('a non-string prompt throws a TypeError in the cell', async () => {
    const result = await run('llm_query(42)');
    expect(result.error?.type).toBe('TypeError');
    expect(result.error?.message).toContain('prompt must be a string');
  });

  test('a request over the message limit throws in the cell and asks to split the batch', async () => {
    const before = fixture.subcalls.calls.length;
    const chunk = Math.ceil(Subcall.maxRequestBytes / 4);
    const result = await run(`const piece = "y".repeat(${chunk}); llm_query_batched([piece, piece, piece, piece, piece])`);
    expect(result.status).toBe('error');
    expect(result.error?.message).toContain('split the batch');
    expect(fixture.subcalls.calls.length).toBe(before);
  });
});

describe('FINAL, FINAL_VAR and SHOW_VARS', () => {
  test('FINAL records the first answer and the cell keeps running', async () => {
    const result = await run('FINAL("first"); FINAL("second"); print("still running")');
    expect(result.final).toEqual({ value: 'first', via: 'FINAL' });
    expect(result.stdout.text).toBe('still running\n');
  });

  test('FINAL renders non-strings as JSON', async () => {
    const result = await run('FINAL({ answer: [1, 2] })');
    expect(result.final?.value).toBe('{\n  "answer": [\n    1,\n    2\n  ]\n}');
  });

  test('FINAL_VAR answers with a variable', async () => {
    const result = await run('const answer = "forty-two"; FINAL_VAR(" \'answer\' ")');
    expect(result.final).toEqual({ value: 'forty-two', via: 'FINAL_VAR', variable: 'answer' });
  });

  test('FINAL_VAR with a missing name does not end the run and lists the variables', async () => {
    const result = await run('const parts = [1]; const message = FINAL_VAR("answr"); print(message)');
    expect(result.final).toBeNull();
    expect(result.status).toBe('ok');
    expect(result.stderr.text).toMatch(/^FINAL_VAR: no variable named "answr"\. Variables: .*\banswer\b.*\bparts\b/);
    expect(result.stdout.text).toContain('no variable named "answr"');
  });

  test('SHOW_VARS prints and returns the variables with types', async () => {
    const result = await run('const shown = 3; const text = SHOW_VARS(); text.includes("shown: number")');
    expect(result.value).toBe('true');
    expect(result.stdout.text).toContain('  shown: number\n');
  });
});

describe("the answer object (the reference REPL's way to finish)", () => {
  // A REPL of its own: the tests above bind `answer` as a variable of theirs.
  let own: ReplFixture;
  beforeAll(async () => {
    own = await startReplFixture();
  });
  afterAll(async () => {
    await own?.dispose();
  });

  test('setting answer.content and then answer.ready = true answers as FINAL does, once', async () => {
    const result = await own.run('answer.content = "forty-two"; print(typeof answer); answer.ready = true');
    expect(result.status).toBe('ok');
    expect(result.final).toEqual({ value: 'forty-two', via: 'FINAL' });
    expect(result.variables.map((variable) => variable.name)).not.toContain('answer');
    const next = await own.run('answer');
    expect(next.final).toBeNull();
    expect(next.value).toBe("{ content: '', ready: false }");
  });

  test('the content is read when the cell ends, whatever the order of the two assignments', async () => {
    const result = await own.run('answer.ready = true; answer.content = "set last"');
    expect(result.final).toEqual({ value: 'set last', via: 'FINAL' });
  });

  test('rebinding answer to an object with content and ready: true answers too', async () => {
    expect((await own.run('answer = { content: "rebound", ready: true }')).final).toEqual({ value: 'rebound', via: 'FINAL' });
    expect((await own.run('const answer = { ready: true, content: "declared" }')).final).toEqual({ value: 'declared', via: 'FINAL' });
    expect((await own.run('answer = Object.assign(Object.create(null), { content: "bare", ready: 1 })')).final?.value).toBe('bare');
  });

  test('non-string content is rendered as FINAL renders it', async () => {
    expect((await own.run('answer.content = 42; answer.ready = true')).final?.value).toBe('42');
    const viaFinal = (await own.run('FINAL({ n: [1, "two"], ok: true })')).final?.value;
    const viaAnswer = await own.run('answer.content = { n: [1, "two"], ok: true }; answer.ready = true');
    expect(viaAnswer.final).toEqual({ value: viaFinal, via: 'FINAL' });
    expect(viaFinal).toBe('{\n  "n": [\n    1,\n    "two"\n  ],\n  "ok": true\n}');
    expect((await own.run('answer = { ready: true }')).final).toEqual({ value: '', via: 'FINAL' });
  });

  test('ready false or absent gives no answer; the content stays for a later cell', async () => {
    const draft = await own.run('answer.content = "draft"; answer.ready = false');
    expect(draft.final).toBeNull();
    expect((await own.run('answer = { content: "no ready field" }')).final).toBeNull();
    expect((await own.run('answer.content += " kept"; answer.content')).value).toBe("'no ready field kept'");
    expect((await own.run('answer.ready = true')).final?.value).toBe('no ready field kept');
  });

  test('FINAL in the same cell wins, and answer is still consumed', async () => {
    const result = await own.run('answer.content = "from answer"; answer.ready = true; FINAL("from FINAL")');
    expect(result.final).toEqual({ value: 'from FINAL', via: 'FINAL' });
    expect((await own.run('answer.ready')).value).toBe('false');
  });

  test('content past MAX_FINAL_CHARS is the same FinalTooLargeError as FINAL gives, and ready is reset', async () => {
    const result = await own.run(`answer.content = "x".repeat(${MAX_FINAL_CHARS + 1}); answer.ready = true`);
    expect(result.status).toBe('error');
    expect(result.final).toBeNull();
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toMatch(
      new RegExp(
        `^The answer in answer\\.content is ${(MAX_FINAL_CHARS + 1).toLocaleString('en-US')} characters long, past the limit of ${MAX_FINAL_CHARS.toLocaleString('en-US')} characters`,
      ),
    );
    expect(result.error?.message).toContain('answer.ready is false again');
    const after = await own.run('[answer.ready, answer.content.length]');
    expect(after.final).toBeNull();
    expect(after.value).toBe(`[ false, ${MAX_FINAL_CHARS + 1} ]`);
    expect((await own.run('answer.content = answer.content.slice(0, 5); answer.ready = true')).final?.value).toBe('xxxxx');
  });

  test("an oversize answer in a cell that fails on its own keeps the cell's error and says so on stderr", async () => {
    const result = await own.run(`answer = { content: "y".repeat(${MAX_FINAL_CHARS + 1}), ready: true }; throw new RangeError("own failure")`);
    expect(result.error).toMatchObject({ type: 'RangeError', message: 'own failure' });
    expect(result.final).toBeNull();
    expect(result.stderr.text).toMatch(/^The answer in answer\.content is [\d,]+ characters long/);
  });

  test("bound to anything else, answer is a variable of the cell's; deleted, the REPL binds its object again", async () => {
    const bound = await own.run('answer = "just text"; answer.ready = true; SHOW_VARS()');
    expect(bound.final).toBeNull();
    expect(bound.stderr.text).toBe('');
    expect(bound.stdout.text).toContain('  answer: string\n');
    expect((await own.run('FINAL_VAR("answer")')).final).toEqual({ value: 'just text', via: 'FINAL_VAR', variable: 'answer' });
    await own.run('delete globalThis.answer');
    const restored = await own.run('answer');
    expect(restored.value).toBe("{ content: '', ready: false }");
    expect(restored.variables.map((variable) => variable.name)).not.toContain('answer');
  });

  test('FINAL_VAR("answer") on the REPL\'s own object explains how to answer with it', async () => {
    const result = await own.run('FINAL_VAR("answer")');
    expect(result.final).toBeNull();
    expect(result.stderr.text).toMatch(
      /^FINAL_VAR: "answer" is the REPL's answer object, not a variable of yours\. To answer with it, set answer\.content = … and answer\.ready = true/,
    );
  });

  test('a tool or a context cannot take the name answer', async () => {
    await expect(own.repl.defineTools({ tools: [{ name: 'answer' }] })).rejects.toThrow(/tool "answer": the name is the REPL's answer object/);
    own.writeContext('answer.txt', 'text');
    await expect(own.repl.loadContext({ variable: 'answer', file: 'answer.txt', format: 'text' })).rejects.toThrow(/"answer" is the REPL's answer object/);
  });
});

describe('reserved names', () => {
  test('a cell that overwrites or deletes a reserved name gets it back afterwards', async () => {
    const clobber = await run('const print = 5; llm_query = null; delete globalThis.FINAL; typeof print');
    expect(clobber.value).toBe("'number'");
    const after = await run('[typeof print, typeof llm_query, typeof FINAL]');
    expect(after.value).toBe("[ 'function', 'function', 'function' ]");
    expect(after.variables.map((variable) => variable.name)).not.toContain('print');
    expect(clobber.stderr.text).toContain('"FINAL", "llm_query", "print" are names the REPL reserves');
  });

  test('shadowing globals the runtime uses does not break the REPL; core built-ins are restored', async () => {
    const shadow = await run(
      'function process() { return "mine" }\nconst performance = 1; var setTimeout = null; const Object = 5;\n[llm_query("still works"), await Promise.resolve(process())]',
      { timeoutMs: 2000 },
    );
    expect(shadow.status).toBe('ok');
    expect(shadow.value).toBe("[ 'default: STILL WORKS', 'mine' ]");
    expect(shadow.stderr.text).toContain('"Object" is a name the REPL reserves');
    const next = await run('[process(), typeof Object.keys, performance]');
    expect(next.value).toBe("[ 'mine', 'function', 1 ]");
    await run('delete globalThis.process; delete globalThis.performance; delete globalThis.setTimeout');
  });
});

describe('close', () => {
  test('close can be called twice and later calls reject', async () => {
    const own = await startReplFixture();
    await own.repl.close();
    await own.repl.close();
    await expect(own.run('1')).rejects.toThrow('closed');
    await own.dispose();
  });

  test('closing during a running cell rejects that cell with ReplClosedError', async () => {
    let cellRunning!: () => void;
    const started = new Promise<void>((resolve) => (cellRunning = resolve));
    const own = await startReplFixture({
      answer: () => {
        cellRunning();
        return 'ok';
      },
    });
    const running = own.run('llm_query("started"); await new Promise(() => {})');
    await started;
    await own.repl.close();
    await expect(running).rejects.toThrow('the REPL is closed');
    await own.dispose();
  });
});
