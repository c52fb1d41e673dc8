/**
 * Python cells that attack the REPL's limits: answers too large or too deep to carry, more
 * variables than a result lists, writes to the interpreter's own file descriptors that would bypass
 * the output cap, and JavaScript buffers made from Python. Each result must fit the protocol's
 * schema (the fixture parses it with `ExecuteResult`), and the REPL must carry on.
 */
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES } from '@rlm/shared';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startReplFixture, type ReplFixture } from '../../testing/repl-fixture.js';
import { truncationMarker } from '../output-capture.js';
import type { PythonRepl } from './python-repl.js';

let fixture: ReplFixture<PythonRepl>;
const run: ReplFixture['run'] = (code, params) => fixture.run(code, params);

beforeAll(async () => {
  fixture = await startReplFixture({ language: 'python', heapLimitMb: 512 });
}, 120_000);
afterAll(async () => {
  await fixture?.dispose();
});

/** The characters a capture counted: those it kept (without its marker) plus those it cut. */
function writtenChars(output: { text: string; truncatedChars: number }): number {
  const marker = output.truncatedChars > 0 ? truncationMarker(output.truncatedChars).length : 0;
  return output.text.length - marker + output.truncatedChars;
}

describe('answers past the limit', () => {
  test('FINAL of a str longer than MAX_FINAL_CHARS is a FinalTooLargeError result the model sees, with no answer', async () => {
    const result = await run(`FINAL("x" * ${MAX_FINAL_CHARS + 1})`);
    expect(result.status).toBe('error');
    expect(result.final).toBeNull();
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toContain(`is ${(MAX_FINAL_CHARS + 1).toLocaleString('en-US')} characters long`);
    expect(result.error?.message).toContain(`limit of ${MAX_FINAL_CHARS.toLocaleString('en-US')} characters`);
    expect(result.error?.message).toMatch(/summarize/);
    expect(result.error?.stack).toEqual([expect.stringMatching(/^File "<cell \d+>", line 1, in <module>$/)]);
  });

  test('FINAL_VAR of a 100 MB str is refused the same way', async () => {
    const result = await run('big = "y" * (100 * 1024 * 1024)\nFINAL_VAR("big")');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toMatch(/^The answer passed to FINAL_VAR is 104,857,600 characters long/);
    expect(result.final).toBeNull();
    await run('del big');
  });

  test('FINAL of a huge list stops rendering at the limit and is refused', async () => {
    const result = await run('FINAL(list(range(2_000_000)))');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toMatch(/^The answer passed to FINAL is more than [\d,]+ characters long/);
  });

  test('a refused answer the cell catches still makes the cell an error; a later shorter one is taken', async () => {
    const caught = await run(`try:\n    FINAL("z" * ${MAX_FINAL_CHARS + 10})\nexcept Exception as e:\n    print(type(e).__name__)`);
    expect(caught.status).toBe('error');
    expect(caught.error?.type).toBe('FinalTooLargeError');
    expect(caught.stdout.text).toBe('FinalTooLargeError\n');
    const retried = await run(`try:\n    FINAL("z" * ${MAX_FINAL_CHARS + 10})\nexcept Exception:\n    FINAL("short")`);
    expect(retried.status).toBe('ok');
    expect(retried.final).toEqual({ value: 'short', via: 'FINAL' });
  });

  test('an answer of exactly MAX_FINAL_CHARS is taken', async () => {
    const result = await run(`FINAL("a" * ${MAX_FINAL_CHARS})`);
    expect(result.status).toBe('ok');
    expect(result.final?.value.length).toBe(MAX_FINAL_CHARS);
  });
});

describe('deeply nested values', () => {
  test('a list nested 100,000 deep renders a few levels deep as FINAL and as the value of the last expression', async () => {
    // Its own REPL: freeing a list nested this deep can overflow the WebAssembly stack (see the
    // crash test below), so nothing here lets go of it before the REPL is closed.
    const own = await startReplFixture({ language: 'python', heapLimitMb: 256 });
    try {
      await own.run('deep = []\nfor _ in range(100_000):\n    deep = [deep]');
      const answer = await own.run('FINAL(deep)');
      expect(answer.status).toBe('ok');
      expect(answer.final?.value).toBe('[[[[[...]]]]]');
      expect((await own.run('deep')).value).toBe('[[[[[...]]]]]');
    } finally {
      await own.dispose();
    }
  }, 120_000);

  test("an exception carrying 100,000 notes has its message cut to the schema's 64 KiB", async () => {
    const result = await run('error = ValueError("bad")\nfor i in range(100_000):\n    error.add_note(f"note {i} " * 5)\nraise error');
    expect(result.error?.type).toBe('ValueError');
    expect(result.error?.message.startsWith('bad\nnote 0 ')).toBe(true);
    expect(result.error?.message.length).toBeLessThanOrEqual(64 * 1024);
    expect(result.error?.message).toMatch(/more (notes|characters)\)$/);
    await run('del error');
  });
});

describe('variables', () => {
  test(`a result lists at most ${MAX_LISTED_VARIABLES} variables and SHOW_VARS says how many were left out`, async () => {
    const result = await run('for i in range(1500):\n    globals()[f"many_{i:04}"] = i\nSHOW_VARS()');
    expect(result.variables).toHaveLength(MAX_LISTED_VARIABLES);
    expect(result.stdout.text).toMatch(/… and 5\d\d more \(only the first 1,000 by name are listed\)\n$/);
    await run('for i in range(1500):\n    del globals()[f"many_{i:04}"]');
  });

  test('names and types longer than 256 characters are cut to 256', async () => {
    const result = await run('globals()["n" * 5000] = 1\ninstance = type("K" * 5000, (), {})()');
    expect(result.variables.find((variable) => variable.name.startsWith('nnn'))?.name).toHaveLength(256);
    expect(result.variables.find((variable) => variable.name === 'instance')?.type).toHaveLength(256);
    await run('del globals()["n" * 5000], instance');
  });
});

describe('writes that go around print', () => {
  test.each([
    ['os.write to file descriptor 1', 'import os\nos.write(1, b"x" * 100_000_000)', 'stdout'],
    ['os.write to file descriptor 2', 'import os\nos.write(2, b"x" * 100_000_000)', 'stderr'],
    ['sys.stdout.buffer.write', 'import sys\nsys.stdout.buffer.write(b"x" * 100_000_000)', 'stdout'],
    ['sys.__stdout__.write', 'import sys\nsys.__stdout__.write("x" * 100_000_000)', 'stdout'],
    ['sys.__stderr__.buffer.write', 'import sys\nsys.__stderr__.buffer.write(b"x" * 100_000_000)', 'stderr'],
    ['print of one 100 MB str', 'print("x" * 100_000_000, end="")', 'stdout'],
  ] as const)('100 MB through %s is captured and cut to the output limit like print', async (_, code, stream) => {
    const result = await run(`${code}\nNone`, { timeoutMs: 60_000 });
    expect(result.status).toBe('ok');
    const output = result[stream];
    expect(output.text.length).toBeLessThanOrEqual(20_000);
    expect(output.text.startsWith('xxxx')).toBe(true);
    expect(writtenChars(output)).toBe(100_000_000);
  });

  test('a character split across two writes to a file descriptor is whole, and nothing is left for the next cell', async () => {
    const encoded = 'import os\ndata = "é€😀\\n".encode()\nfor i in range(len(data)):\n    os.write(1, data[i : i + 1])\nos.write(1, b"no newline")';
    const result = await run(encoded);
    expect(result.stdout.text).toBe('é€😀\nno newline');
    expect((await run('print("next")')).stdout.text).toBe('next\n');
  });

  test('an incomplete character at the end of a cell becomes a replacement character in that cell', async () => {
    const result = await run('import os, sys\nos.write(1, "é".encode()[:1])\nsys.stdout.buffer.write("€".encode()[:2])');
    expect(result.stdout.text).toBe('\ufffd\ufffd');
    expect((await run('print("clean")')).stdout.text).toBe('clean\n');
  });
});

describe('memory outside the interpreter', () => {
  test('JavaScript buffers made from Python past the memory limit end as OutOfMemoryError with the state lost', async () => {
    const own = await startReplFixture({ language: 'python', heapLimitMb: 128 });
    try {
      await own.run('kept = 1');
      const result = await own.run('from js import Uint8Array\nhog = []\nwhile True:\n    hog.append(Uint8Array.new(10_000_000))', { timeoutMs: 60_000 });
      expect(result.status).toBe('error');
      expect(result.error?.type).toBe('OutOfMemoryError');
      expect(result.stateLost).toBe(true);
      expect((await own.run('"kept" in globals()', { timeoutMs: 60_000 })).value).toBe('False');
    } finally {
      await own.dispose();
    }
  }, 120_000);
});

describe('a crash of the interpreter', () => {
  test('str() of a list nested 100,000 deep, which overflows the WebAssembly stack, restarts the REPL with the state lost', async () => {
    const own = await startReplFixture({ language: 'python', heapLimitMb: 256 });
    try {
      own.writeContext('doc.txt', 'kept context');
      await own.repl.loadContext({ variable: 'context', file: 'doc.txt', format: 'text' });
      await own.run('deep = []\nfor _ in range(100_000):\n    deep = [deep]');
      const result = await own.run('print("before")\ns = str(deep)');
      expect(result.status).toBe('error');
      expect(result.error?.type).toBe('InterpreterCrashError');
      expect(result.error?.message).toContain('every variable is lost');
      // Pyodide's fatal-error handler dumps the Python stack to file descriptor 1, after the cell's own output.
      expect(result.stdout.text.startsWith('before\n')).toBe(true);
      expect(result.stateLost).toBe(true);
      expect(result.variables).toEqual([{ name: 'context', type: 'str' }]);
      const next = await own.run('["deep" in globals(), context]', { timeoutMs: 60_000 });
      expect(next.value).toBe("[False, 'kept context']");
      expect(next.stateLost).toBe(false);
    } finally {
      await own.dispose();
    }
  }, 120_000);
});
