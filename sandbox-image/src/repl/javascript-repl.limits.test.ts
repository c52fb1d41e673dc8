import { tmpdir } from 'node:os';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';
import { JavaScriptRepl } from './javascript-repl.js';
import { truncationMarker } from './output-capture.js';

// Short: what these tests prove is what a timeout does, not how long it takes (that is
// `node test/bench/sandbox-bench.ts`). The fixture's generous unresponsiveGraceMs keeps a worker
// that a loaded machine slows down from being replaced where a test expects the state kept.
const TIMEOUT_MS = 100;
/** For tests of the replacement itself: the worker never answers, so any grace gives the same outcome. */
const SHORT_GRACE_MS = 100;
let fixture: ReplFixture | undefined;

afterEach(async () => {
  await fixture?.dispose();
  fixture = undefined;
});

describe('timeouts', () => {
  test('a synchronous endless loop is interrupted at its timeout and earlier variables survive', async () => {
    fixture = await startReplFixture();
    await fixture.run('const survivor = "still here"');
    const result = await fixture.run('while (true) {}', { timeoutMs: TIMEOUT_MS });
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('TimeoutError');
    expect(result.error?.message).toContain('0.1 s');
    expect(result.stateLost).toBe(false);
    expect((await fixture.run('survivor')).value).toBe("'still here'");
  });

  test('an endless print loop times out with its output cut to the limit and the rest counted', async () => {
    fixture = await startReplFixture();
    const result = await fixture.run('while (true) console.log("x".repeat(1000))', { timeoutMs: TIMEOUT_MS, outputLimitChars: 1000 });
    expect(result.status).toBe('timeout');
    expect(result.stdout.text.length).toBeLessThanOrEqual(1000);
    expect(result.stdout.truncatedChars).toBeGreaterThan(0);
    expect(result.stdout.text).toContain(truncationMarker(result.stdout.truncatedChars));
  });

  test('an await that never settles times out with state kept', async () => {
    fixture = await startReplFixture();
    await fixture.run('const kept = 1');
    const result = await fixture.run('print("waiting"); await new Promise(() => {})', { timeoutMs: TIMEOUT_MS });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(result.stdout.text).toBe('waiting\n');
    expect((await fixture.run('kept + 1')).value).toBe('2');
  });

  test('a synchronous loop after an await, which the worker cannot interrupt, gets the worker replaced: timeout, state lost, context reloaded', async () => {
    fixture = await startReplFixture({ unresponsiveGraceMs: SHORT_GRACE_MS });
    fixture.writeContext('doc.txt', 'the context');
    await fixture.repl.loadContext({ variable: 'context', file: 'doc.txt', format: 'text' });
    await fixture.run('const lost = 1');
    const result = await fixture.run('await null; while (true) {}', { timeoutMs: TIMEOUT_MS });
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('TimeoutError');
    expect(result.error?.message).toContain('did not respond, so the REPL was restarted');
    expect(result.stateLost).toBe(true);
    expect(result.variables).toEqual([{ name: 'context', type: 'string' }]);
    const next = await fixture.run('[typeof lost, context]');
    expect(next.status).toBe('ok');
    expect(next.value).toBe("[ 'undefined', 'the context' ]");
    expect(next.stateLost).toBe(false);
  });

  test('a sub-call the host never answers ends the cell as a timeout with state kept, and the host call is aborted', async () => {
    const signals: AbortSignal[] = [];
    fixture = await startReplFixture({
      onSubcall: (_params, { signal }) => {
        signals.push(signal);
        return new Promise(() => {});
      },
    });
    await fixture.run('const kept = 1');
    const result = await fixture.run('llm_query("hello?")', { timeoutMs: TIMEOUT_MS });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(signals).toHaveLength(1);
    expect(signals[0]?.aborted).toBe(true);
    expect((await fixture.run('kept + 1')).value).toBe('2');
  });

  test.each([-1, 1.5, 60_001, Number.NaN])('an unresponsiveGraceMs of %s is refused with a RangeError', async (grace) => {
    const starting = JavaScriptRepl.start({ contextDir: tmpdir(), onSubcall: () => new Promise(() => {}), unresponsiveGraceMs: grace });
    await expect(starting).rejects.toBeInstanceOf(RangeError);
    await expect(starting).rejects.toThrow(/unresponsiveGraceMs must be an integer from 0 to 60000/);
  });

  test('a failure of the whole sub-call comes back as Error strings', async () => {
    fixture = await startReplFixture({
      onSubcall: () => Promise.reject(new Error('host unreachable')),
    });
    const result = await fixture.run('[llm_query("a"), llm_query_batched(["b", "c"])]');
    expect(result.value).toBe("[ 'Error: host unreachable', [ 'Error: host unreachable', 'Error: host unreachable' ] ]");
  });
});

describe('memory and exits', () => {
  test('exhausting the heap limit fails with OutOfMemoryError, loses state, and the next cell works with the context reloaded', async () => {
    fixture = await startReplFixture({ heapLimitMb: 64 });
    fixture.writeContext('data.json', '{"items": [1, 2, 3]}');
    await fixture.repl.loadContext({ variable: 'context', file: 'data.json', format: 'json' });
    await fixture.run('const before = 1');
    const result = await fixture.run('const hog = []; while (true) hog.push(new Array(100_000).fill(hog.length))', { timeoutMs: 20_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.error?.message).toContain('64 MiB');
    expect(result.stateLost).toBe(true);
    const next = await fixture.run('[typeof before, context.items.length]');
    expect(next.value).toBe("[ 'undefined', 3 ]");
  });

  // The bombs of the hostile-sandbox findings, with a small heap so they end soon. Each ends the
  // worker, never the process: V8's heap limit (its young generation capped so that a scavenge at
  // the limit cannot abort the process) for what lives in the heap, the session's memory check for
  // the buffers outside it.
  test.each([
    ['1 MB strings pushed forever', 'const hog = []; for (;;) hog.push("x".repeat(1e6) + hog.length)', /heap limit is 64 MiB/],
    ['a string grown by concatenation forever', 'let hog = ""; for (;;) hog += "y".repeat(1000)', /heap limit is 64 MiB/],
    ['10 MB typed arrays filled forever', 'const hog = []; for (;;) hog.push(new Uint8Array(1e7).fill(1))', /of heap and buffers .*past its limit of 76 MiB/],
    ['10 MB Buffers allocated forever', 'const hog = []; for (;;) hog.push(Buffer.alloc(1e7, 1))', /of heap and buffers .*past its limit of 76 MiB/],
    // Written a page at a time: one `fill` of it all would run to its end before the check is answered.
    [
      'one 4 GB ArrayBuffer',
      'const hog = new Uint8Array(4 * 1024 ** 3); for (let i = 0; ; i += 4096) hog[i % hog.length] = 1',
      /of heap and buffers .*past its limit of 76 MiB/,
    ],
  ])('a bomb of %s ends as OutOfMemoryError with the state lost, and the next cell works', async (_, code, message) => {
    fixture = await startReplFixture({ heapLimitMb: 64 });
    fixture.writeContext('doc.txt', 'kept context');
    await fixture.repl.loadContext({ variable: 'context', file: 'doc.txt', format: 'text' });
    await fixture.run('const before = 1');
    const result = await fixture.run(code, { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.error?.message).toMatch(message);
    expect(result.stateLost).toBe(true);
    const next = await fixture.run('[typeof before, context]');
    expect(next.value).toBe("[ 'undefined', 'kept context' ]");
    expect(next.stateLost).toBe(false);
  });

  test('process.exit in a cell loses the state and the REPL carries on', async () => {
    fixture = await startReplFixture();
    await fixture.run('const gone = 1');
    const result = await fixture.run('process.exit(3)');
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('ProcessExitError');
    expect(result.error?.message).toContain('exit code 3');
    expect(result.stateLost).toBe(true);
    const next = await fixture.run('typeof gone');
    expect(next.value).toBe("'undefined'");
  });

  test('process.abort in a cell ends only the worker', async () => {
    fixture = await startReplFixture();
    const result = await fixture.run('process.abort()');
    expect(result.error?.type).toBe('ProcessExitError');
    expect(result.error?.message).toContain('exit code 134');
    expect((await fixture.run('"alive"')).value).toBe("'alive'");
  });

  test('a worker that exits between cells makes the next result say the state was lost', async () => {
    fixture = await startReplFixture();
    await fixture.run('const gone = 1');
    const ending = await fixture.run('setTimeout(() => process.exit(0), 20)');
    expect(ending.status).toBe('ok');
    const repl = fixture.repl;
    await vi.waitFor(() => expect(repl.workerRunning).toBe(false), { timeout: 10_000, interval: 10 });
    const next = await fixture.run('1 + 1');
    expect(next.value).toBe('2');
    expect(next.stateLost).toBe(true);
    expect((await fixture.run('typeof gone')).value).toBe("'undefined'");
  });

  test('cells queue: concurrent executes run one at a time in order', async () => {
    fixture = await startReplFixture();
    const results = await Promise.all([
      fixture.run('await new Promise((resolve) => setTimeout(resolve, 50)); var order = ["first"]'),
      fixture.run('order.push("second"); order'),
    ]);
    expect(results[1].value).toBe("[ 'first', 'second' ]");
  });

  test('aborting a running cell rejects with the reason and the next cell runs in a fresh worker', async () => {
    const controller = new AbortController();
    // The cell's sub-call tells the test it is running; the abort follows once it has its answer.
    fixture = await startReplFixture({
      onSubcall: async () => {
        setImmediate(() => controller.abort(new Error('caller gave up')));
        return { outcomes: [{ ok: true, text: 'go on' }] };
      },
    });
    await fixture.run('const gone = 1');
    const running = fixture.repl.execute(
      { code: 'llm_query("running"); await null; while (true) {}', language: 'javascript', timeoutMs: 10_000, outputLimitChars: 1000 },
      { signal: controller.signal },
    );
    await expect(running).rejects.toThrow('caller gave up');
    const next = await fixture.run('typeof gone');
    expect(next.value).toBe("'undefined'");
  });
});
