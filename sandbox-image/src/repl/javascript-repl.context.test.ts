import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ContextLoadError, ContextOutOfMemoryError } from './errors.js';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';

let fixture: ReplFixture;

beforeAll(async () => {
  fixture = await startReplFixture();
});
afterAll(async () => {
  await fixture.dispose();
});

describe('loadContext', () => {
  test('binds a text file to a variable', async () => {
    fixture.writeContext('context-0.txt', 'héllo\nworld');
    const loaded = await fixture.repl.loadContext({ variable: 'context', file: 'context-0.txt', format: 'text' });
    expect(loaded).toMatchObject({ variable: 'context', bytes: 12 });
    const result = await fixture.run('context.split("\\n")');
    expect(result.value).toBe("[ 'héllo', 'world' ]");
    expect(result.variables).toContainEqual({ name: 'context', type: 'string' });
  });

  test('parses a json file', async () => {
    fixture.writeContext('context-1.json', '{"a": [1, 2], "b": "x"}');
    await fixture.repl.loadContext({ variable: 'context_1', file: 'context-1.json', format: 'json' });
    const result = await fixture.run('context_1.a.length + context_1.b');
    expect(result.value).toBe("'2x'");
  });

  test('a context variable is restored after a cell overwrites it', async () => {
    fixture.writeContext('restore.txt', 'original');
    await fixture.repl.loadContext({ variable: 'context_2', file: 'restore.txt', format: 'text' });
    await fixture.run('context_2 = "overwritten"');
    expect((await fixture.run('context_2')).value).toBe("'original'");
  });

  test('a missing file rejects with a clear error', async () => {
    const loading = fixture.repl.loadContext({ variable: 'context_3', file: 'missing.txt', format: 'text' });
    await expect(loading).rejects.toBeInstanceOf(ContextLoadError);
    await expect(loading).rejects.toThrow('context file "missing.txt" does not exist');
  });

  test('invalid json rejects with a clear error', async () => {
    fixture.writeContext('bad.json', '{"unterminated": ');
    await expect(fixture.repl.loadContext({ variable: 'context_4', file: 'bad.json', format: 'json' })).rejects.toThrow('is not valid JSON');
  });

  test('a path outside the context directory is refused', async () => {
    await expect(fixture.repl.loadContext({ variable: 'context_5', file: '../etc/passwd', format: 'text' })).rejects.toThrow('must be a plain file name');
  });

  // How fast it loads is `node test/bench/sandbox-bench.ts` ("100 MB context ready in the REPL").
  test('100 MB of text loads whole, to its last characters', async () => {
    const big = Buffer.alloc(100 * 1024 * 1024, 'abcdefghi\n');
    big.write('tail-mark!', big.length - 10);
    fixture.writeContext('big.txt', big);
    const loaded = await fixture.repl.loadContext({ variable: 'context_big', file: 'big.txt', format: 'text' });
    expect(loaded.bytes).toBe(100 * 1024 * 1024);
    expect((await fixture.run('[context_big.length, context_big.slice(-10)]')).value).toBe(`[ ${100 * 1024 * 1024}, 'tail-mark!' ]`);
  });
});

describe('loadContext at a memory limit', () => {
  // A worker capped at 64 MiB of heap may hold 76 MiB (heap, young generation, buffers).
  let small: ReplFixture;
  beforeAll(async () => {
    small = await startReplFixture({ heapLimitMb: 64 });
  });
  afterAll(async () => {
    await small.dispose();
  });

  test('a context that cannot fit is refused before it is read, saying how much it needs, and the state is kept', async () => {
    await small.run('globalThis.kept = 42');
    small.writeContext('too-big.txt', Buffer.alloc(40 * 1024 * 1024, 'a'));
    const loading = small.repl.loadContext({ variable: 'context', file: 'too-big.txt', format: 'text' });
    await expect(loading).rejects.toBeInstanceOf(ContextOutOfMemoryError);
    await expect(loading).rejects.toThrow("loading it takes at least 80 MiB (twice the file's 40 MiB), more than the 76 MiB the REPL may hold");
    expect((await small.run('kept')).value).toBe('42');
  });

  test('a context that fits leaves no copy of its bytes behind to count against the limit', async () => {
    // 36 MiB read into a Buffer and decoded beside it held 72 MiB until a collection, over the 76
    // MiB limit with the worker's own heap, and the next cell ended the worker for memory.
    small.writeContext('fits.txt', Buffer.alloc(36 * 1024 * 1024, 'b'));
    const loaded = await small.repl.loadContext({ variable: 'context', file: 'fits.txt', format: 'text' });
    expect(loaded.bytes).toBe(36 * 1024 * 1024);
    const result = await small.run('context.length');
    expect(result.error).toBeNull();
    expect(result.value).toBe(String(36 * 1024 * 1024));
  });
});
