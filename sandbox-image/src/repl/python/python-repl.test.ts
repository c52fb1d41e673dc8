import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_FINAL_CHARS } from '@rlm/shared';
import { startReplFixture, type ReplFixture } from '../../testing/repl-fixture.js';
import type { PythonRepl } from './python-repl.js';

let fixture: ReplFixture<PythonRepl>;
const run: ReplFixture['run'] = (code, params) => fixture.run(code, params);

beforeAll(async () => {
  fixture = await startReplFixture({
    language: 'python',
    heapLimitMb: 512,
    answer: (prompt, params) => (prompt === 'fail me' ? new Error('model overloaded') : `${params.model ?? 'default'}: ${prompt.toUpperCase()}`),
    onToolCall: async ({ name, args }) => (name === 'broken' ? { ok: false, error: 'database is down' } : { ok: true, value: { tool: name, args } }),
  });
  await fixture.repl.defineTools({ tools: [{ name: 'lookup' }, { name: 'broken' }] });
}, 120_000);
afterAll(async () => {
  await fixture?.dispose();
});

describe('state and values', () => {
  test('variables, functions, classes and imports persist across cells', async () => {
    expect((await run('import statistics\nclass Box:\n    def __init__(self, v): self.v = v\ndef double(x): return 2 * x\nkept = Box(21)')).status).toBe('ok');
    expect((await run('double(kept.v), statistics.mean([1, 2, 3])')).value).toBe('(42, 2)');
  });

  test("the last expression's repr is the value; None and statements have none", async () => {
    expect((await run('"text"')).value).toBe("'text'");
    expect((await run('None')).value).toBeUndefined();
    expect((await run('x = 1')).value).toBeUndefined();
    expect((await run('"a" * 5000')).value).toMatch(/^'a+\.\.\.a+'$/);
  });

  test('re, json, math, collections and itertools are pre-imported and the standard library imports', async () => {
    const result = await run(
      'import sqlite3, csv, datetime\n[re.sub("a", "b", "aa"), json.dumps({"k": 1}), math.floor(2.5), collections.Counter("aab")["a"], list(itertools.islice(itertools.count(), 3))]',
    );
    expect(result.value).toBe("['bb', '{\"k\": 1}', 2, 2, [0, 1, 2]]");
  });

  test('variables list the user names with short types, not the REPL or its pre-imports', async () => {
    const result = await run('listed = "s"; numbers = [1, 2, 3]; table = {"a": 1}; _hidden = 1');
    expect(result.variables).toEqual(
      expect.arrayContaining([
        { name: 'listed', type: 'str' },
        { name: 'numbers', type: 'list(3)' },
        { name: 'table', type: 'dict(1)' },
        { name: 'Box', type: 'class' },
        { name: 'double', type: 'function' },
      ]),
    );
    const names = result.variables.map((variable) => variable.name);
    for (const hidden of ['_hidden', 're', 'json', 'llm_query', 'FINAL', 'lookup', '__name__']) expect(names).not.toContain(hidden);
  });
});

describe('output and errors', () => {
  test('print and sys.stdout go to stdout, sys.stderr to stderr', async () => {
    const result = await run('import sys\nprint("a", 1, {"b": 2})\nsys.stdout.write("raw\\n")\nprint("bad", file=sys.stderr)');
    expect(result.stdout).toEqual({ text: "a 1 {'b': 2}\nraw\n", truncatedChars: 0 });
    expect(result.stderr).toEqual({ text: 'bad\n', truncatedChars: 0 });
  });

  test('output past the limit is cut in the middle with a marker, as in JavaScript', async () => {
    const result = await run('for i in range(1000): print("x" * 99)', { outputLimitChars: 1000 });
    expect(result.stdout.text.length).toBeLessThanOrEqual(1000);
    expect(result.stdout.truncatedChars).toBe(
      100_000 - result.stdout.text.length + result.stdout.text.match(/\n\[\.\.\. [\d,]+ characters truncated \.\.\.\]\n/)![0].length,
    );
  });

  test('an exception gives its class name, message and the cell frames only, innermost first', async () => {
    await run('def inner():\n    return {}["missing"]');
    const result = await run('x = 1\ninner()');
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('KeyError');
    expect(result.error?.message).toBe("'missing'");
    expect(result.error?.stack).toHaveLength(2);
    expect(result.error?.stack[0]).toMatch(/^File "<cell (\d+)>", line 2, in inner$/);
    expect(result.error?.stack[1]).toMatch(/^File "<cell (\d+)>", line 2, in <module>$/);
    const [defined, called] = (result.error?.stack ?? []).map((frame) => Number(/<cell (\d+)>/.exec(frame)?.[1]));
    expect(called).toBe((defined ?? 0) + 1);
  });

  test('a syntax error names the cell and line', async () => {
    const result = await run('ok = 1\nx = = 2');
    expect(result.error?.type).toBe('SyntaxError');
    expect(result.error?.message).toMatch(/invalid syntax/);
    expect(result.error?.stack[0]).toMatch(/^File "<cell \d+>", line 2$/);
  });

  test('SystemExit ends the cell, not the REPL', async () => {
    const result = await run('import sys\nsys.exit(3)');
    expect(result.error?.type).toBe('SystemExit');
    expect((await run('1 + 1')).value).toBe('2');
  });
});

describe('sub-calls, tools and answers', () => {
  test('llm_query and friends are synchronous and reach the host with keyword options', async () => {
    const before = fixture.subcalls.calls.length;
    const result = await run(
      'one = llm_query("hi", model="small")\nmany = llm_query_batched(["a", "fail me"])\ndeep = rlm_query_batched(["d"])\n[one, many, deep, rlm_query("r")]',
    );
    expect(result.value).toBe("['small: HI', ['default: A', 'Error: model overloaded'], ['default: D'], 'default: R']");
    expect(fixture.subcalls.calls.slice(before).map((c) => [c.kind, c.batched, c.model ?? null, c.prompts])).toEqual([
      ['llm_query', false, 'small', ['hi']],
      ['llm_query', true, null, ['a', 'fail me']],
      ['rlm_query', true, null, ['d']],
      ['rlm_query', false, null, ['r']],
    ]);
  });

  test('a prompt that is not a str is a TypeError', async () => {
    const result = await run('llm_query(42)');
    expect(result.error).toMatchObject({ type: 'TypeError', message: 'llm_query: the prompt must be a str, got int' });
  });

  test('tools are Python callables taking JSON values; a failure is a ToolError', async () => {
    expect((await run('lookup("c-42", 3, None, [True, {"k": 1.5}])')).value).toBe("{'tool': 'lookup', 'args': ['c-42', 3, None, [True, {'k': 1.5}]]}");
    expect((await run('broken()')).error).toMatchObject({ type: 'ToolError', message: 'broken failed: database is down' });
    expect((await run('lookup({1, 2})')).error?.type).toBe('TypeError');
  });

  test('a tool named like a Python built-in is refused', async () => {
    await expect(fixture.repl.defineTools({ tools: [{ name: 'sorted' }] })).rejects.toThrow(/"sorted": the name is a built-in of Python/);
    expect((await run('lookup')).status).toBe('ok');
  });

  test('FINAL, FINAL_VAR and SHOW_VARS', async () => {
    expect((await run('FINAL("done")')).final).toEqual({ value: 'done', via: 'FINAL' });
    expect((await run('FINAL({"n": [1]})')).final?.value).toBe('{\n  "n": [\n    1\n  ]\n}');
    const missing = await run('FINAL_VAR("nope")');
    expect(missing.final).toBeNull();
    expect(missing.stderr.text).toMatch(/^FINAL_VAR: no variable named "nope"\. Variables: .*listed/);
    expect((await run('answer = 42\nFINAL_VAR("answer")')).final).toEqual({ value: '42', via: 'FINAL_VAR', variable: 'answer' });
    expect((await run('SHOW_VARS()')).stdout.text).toMatch(/^Variables:\n(?:.*\n)* {2}answer: int\n/);
  });

  test('the answer dict: answer["content"] then answer["ready"] = True answers as FINAL does, once', async () => {
    // The test above bound `answer` as a variable of its own; deleted, the REPL binds its dict again.
    const deleted = await run('del answer');
    expect(deleted.variables.map((variable) => variable.name)).not.toContain('answer');
    const result = await run('answer["content"] = "forty-two"\nanswer["ready"] = True');
    expect(result.status).toBe('ok');
    expect(result.final).toEqual({ value: 'forty-two', via: 'FINAL' });
    const next = await run('answer');
    expect(next.final).toBeNull();
    expect(next.value).toBe("{'content': '', 'ready': False}");
    expect((await run('answer["ready"] = True\nanswer["content"] = "set last"')).final).toEqual({ value: 'set last', via: 'FINAL' });
  });

  test('the answer dict: rebinding to a dict with content and ready True answers too', async () => {
    expect((await run('answer = {"content": "rebound", "ready": True}')).final).toEqual({ value: 'rebound', via: 'FINAL' });
    expect((await run('answer = collections.OrderedDict(content="ordered", ready=1)')).final?.value).toBe('ordered');
    expect((await run('answer = {"ready": True}')).final).toEqual({ value: '', via: 'FINAL' });
  });

  test('the answer dict: non-string content is rendered as FINAL renders it', async () => {
    expect((await run('answer["content"] = 42\nanswer["ready"] = True')).final?.value).toBe('42');
    const viaFinal = (await run('FINAL({"n": [1, "two"], "ok": True})')).final?.value;
    const viaAnswer = await run('answer["content"] = {"n": [1, "two"], "ok": True}\nanswer["ready"] = True');
    expect(viaAnswer.final).toEqual({ value: viaFinal, via: 'FINAL' });
    expect(viaFinal).toBe('{\n  "n": [\n    1,\n    "two"\n  ],\n  "ok": true\n}');
    expect((await run('answer["content"] = {1, 2}\nanswer["ready"] = True')).final?.value).toBe('{1, 2}');
  });

  test('the answer dict: ready False or absent gives no answer, and it is not listed as a variable', async () => {
    expect((await run('answer["content"] = "draft"\nanswer["ready"] = False')).final).toBeNull();
    expect((await run('answer = {"content": "no ready key"}')).final).toBeNull();
    expect((await run('answer["content"] += " kept"\nanswer["ready"] = True')).final?.value).toBe('no ready key kept');
    const shown = await run('SHOW_VARS()');
    expect(shown.stdout.text).not.toMatch(/\banswer:/);
    expect(shown.variables.map((variable) => variable.name)).not.toContain('answer');
  });

  test('the answer dict: FINAL in the same cell wins, and the dict is still consumed', async () => {
    const result = await run('answer["content"] = "from answer"\nanswer["ready"] = True\nFINAL("from FINAL")');
    expect(result.final).toEqual({ value: 'from FINAL', via: 'FINAL' });
    expect((await run('answer["ready"]')).value).toBe('False');
  });

  test('the answer dict: content past MAX_FINAL_CHARS is the same FinalTooLargeError as FINAL gives, and ready is reset', async () => {
    const result = await run(`answer["content"] = "x" * ${MAX_FINAL_CHARS + 1}\nanswer["ready"] = True`);
    expect(result.status).toBe('error');
    expect(result.final).toBeNull();
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toContain(
      `The answer in answer["content"] is ${(MAX_FINAL_CHARS + 1).toLocaleString('en-US')} characters long, past the limit of ${MAX_FINAL_CHARS.toLocaleString('en-US')} characters`,
    );
    expect(result.error?.message).toContain('answer["ready"] is False again');
    const after = await run('(answer["ready"], len(answer["content"]))');
    expect(after.final).toBeNull();
    expect(after.value).toBe(`(False, ${MAX_FINAL_CHARS + 1})`);
    expect((await run('answer["content"] = answer["content"][:5]\nanswer["ready"] = True')).final?.value).toBe('xxxxx');
    const failed = await run(`answer = {"content": "y" * ${MAX_FINAL_CHARS + 1}, "ready": True}\nraise ValueError("own failure")`);
    expect(failed.error).toMatchObject({ type: 'ValueError', message: 'own failure' });
    expect(failed.final).toBeNull();
    expect(failed.stderr.text).toMatch(/^The answer in answer\["content"\] is [\d,]+ characters long/);
  });

  test("the answer dict: bound to anything else it is a variable of the cell's; FINAL_VAR explains the dict", async () => {
    const explained = await run('FINAL_VAR("answer")');
    expect(explained.final).toBeNull();
    expect(explained.stderr.text).toMatch(/^FINAL_VAR: "answer" is the REPL's answer dict, not a variable of yours/);
    const bound = await run('answer = "just text"');
    expect(bound.stderr.text).toBe('');
    expect(bound.variables).toContainEqual({ name: 'answer', type: 'str' });
    expect((await run('FINAL_VAR("answer")')).final).toEqual({ value: 'just text', via: 'FINAL_VAR', variable: 'answer' });
    expect((await run('answer["ready"] = True')).error?.type).toBe('TypeError');
    await run('del answer');
    await expect(fixture.repl.defineTools({ tools: [{ name: 'answer' }] })).rejects.toThrow(/tool "answer": the name is the REPL's answer dict/);
    fixture.writeContext('answer.txt', 'text');
    await expect(fixture.repl.loadContext({ variable: 'answer', file: 'answer.txt', format: 'text' })).rejects.toThrow(/"answer" is the REPL's answer dict/);
  });

  test('reserved names and tools are restored after a cell overwrites them, with a note', async () => {
    const result = await run('llm_query = 1\nlookup = 2\nprint = 3');
    expect(result.stderr.text).toMatch(/"llm_query", "print" are names the REPL reserves/);
    expect(result.stderr.text).toMatch(/"lookup" is a tool of the host/);
    expect((await run('print(callable(llm_query), callable(lookup))')).stdout.text).toBe('True True\n');
  });
});

describe('contexts', () => {
  test('text and JSON contexts load as str, list and dict, restored if overwritten', async () => {
    fixture.writeContext('context.txt', 'line one\nline two');
    fixture.writeContext('context_1.json', JSON.stringify(['a', 'b']));
    fixture.writeContext('context_2.json', JSON.stringify({ 'docs/a.md': '# A', n: { ok: true } }));
    await fixture.repl.loadContext({ variable: 'context', file: 'context.txt', format: 'text' });
    await fixture.repl.loadContext({ variable: 'context_1', file: 'context_1.json', format: 'json' });
    const loaded = await fixture.repl.loadContext({ variable: 'context_2', file: 'context_2.json', format: 'json' });
    expect(loaded.bytes).toBe(35);
    const result = await run('context = None\ncontext_2["n"]["ok"]');
    expect(result.value).toBe('True');
    expect((await run('[type(context).__name__, len(context.splitlines()), context_1, list(context_2)]')).value).toBe(
      "['str', 2, ['a', 'b'], ['docs/a.md', 'n']]",
    );
  });

  test('a missing file or invalid JSON is a clear ContextLoadError', async () => {
    await expect(fixture.repl.loadContext({ variable: 'context_3', file: 'missing.txt', format: 'text' })).rejects.toThrow(/does not exist/);
    fixture.writeContext('bad.json', '{nope');
    await expect(fixture.repl.loadContext({ variable: 'context_3', file: 'bad.json', format: 'json' })).rejects.toThrow(/is not valid JSON/);
  });

  // How fast it loads is `node test/bench/sandbox-bench.ts` ("100 MB context ready in Python").
  test('100 MB of text loads into a Python str whole, to its last characters', async () => {
    const big = Buffer.alloc(100 * 1024 * 1024, '0123456789');
    big.write('tail-mark!', big.length - 10);
    fixture.writeContext('big.txt', big);
    const loaded = await fixture.repl.loadContext({ variable: 'context_4', file: 'big.txt', format: 'text' });
    expect(loaded.bytes).toBe(100 * 1024 * 1024);
    expect((await run('len(context_4), context_4[-10:]')).value).toBe(`(${100 * 1024 * 1024}, 'tail-mark!')`);
    await run('del context_4');
  });
});

// Short timeouts: these tests prove what a timeout does, not how long it takes (that is
// `node test/bench/sandbox-bench.ts`). The fixture's generous unresponsiveGraceMs lets a loaded
// machine's interpreter act on its interrupt late without the worker being replaced.
describe('timeouts and memory', () => {
  test('a runaway loop is interrupted at its timeout and the state is kept', async () => {
    await run('survivor = "still here"');
    const result = await run('while True: pass', { timeoutMs: 100 });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(result.error?.type).toBe('TimeoutError');
    expect((await run('survivor')).value).toBe("'still here'");
  });

  test('time.sleep past the timeout is interrupted too, state kept', async () => {
    const result = await run('import time\ntime.sleep(30)', { timeoutMs: 100 });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect((await run('survivor')).value).toBe("'still here'");
  });

  test('a KeyboardInterrupt the cell raises itself is an ordinary error', async () => {
    expect((await run('raise KeyboardInterrupt("mine")')).error).toMatchObject({ type: 'KeyboardInterrupt', message: 'mine' });
  });

  test('an allocation past the memory cap is a MemoryError and the interpreter carries on', async () => {
    const result = await run('hog = "x" * (600 * 1024 * 1024)');
    expect(result.error?.type).toBe('MemoryError');
    expect(result.stateLost).toBe(false);
    expect((await run('survivor')).value).toBe("'still here'");
  });

  test('a loop that swallows the interrupt is stopped by replacing the worker; contexts and tools come back', async () => {
    // Its own REPL with a short grace: the loop never answers, so the grace only sets how long the test waits.
    const own = await startReplFixture({
      language: 'python',
      unresponsiveGraceMs: 100,
      onToolCall: async ({ name }) => ({ ok: true, value: name }),
    });
    try {
      await own.repl.defineTools({ tools: [{ name: 'lookup' }] });
      own.writeContext('context.txt', 'line one');
      await own.repl.loadContext({ variable: 'context', file: 'context.txt', format: 'text' });
      await own.run('survivor = 1');
      const result = await own.run('try:\n    while True: pass\nexcept KeyboardInterrupt:\n    while True: pass', { timeoutMs: 100 });
      expect(result.status).toBe('timeout');
      expect(result.error?.message).toContain('did not respond, so the REPL was restarted');
      expect(result.stateLost).toBe(true);
      const after = await own.run('[("survivor" in globals()), context[:4], lookup()]', { timeoutMs: 30_000 });
      expect(after.value).toBe("[False, 'line', 'lookup']");
    } finally {
      await own.dispose();
    }
  }, 60_000);
});
