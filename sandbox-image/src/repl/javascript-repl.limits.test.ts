import { afterEach, describe, expect, test } from 'vitest';
import { startReplFixture, type ReplFixture } from '../testing/repl-fixture.js';

const TIMEOUT_MS = 500;
let fixture: ReplFixture | undefined;

afterEach(async () => {
  await fixture?.dispose();
  fixture = undefined;
});

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

describe('timeouts', () => {
  test('a synchronous endless loop is interrupted in time and earlier variables survive', async () => {
    fixture = await startReplFixture();
    await fixture.run('const survivor = "still here"');
    const { value: result, ms } = await timed(() => fixture!.run('while (true) {}', { timeoutMs: TIMEOUT_MS }));
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('TimeoutError');
    expect(result.error?.message).toContain('0.5 s');
    expect(result.stateLost).toBe(false);
    expect((await fixture.run('survivor')).value).toBe("'still here'");
  });

  test('an endless print loop times out with its output cut to the limit', async () => {
    fixture = await startReplFixture();
    const { value: result, ms } = await timed(() =>
      fixture!.run('while (true) console.log("x".repeat(1000))', { timeoutMs: TIMEOUT_MS, outputLimitChars: 1000 }),
    );
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
    expect(result.status).toBe('timeout');
    expect(result.stdout.text.length).toBeLessThanOrEqual(1000);
    expect(result.stdout.truncatedChars).toBeGreaterThan(100_000);
  });

  test('an await that never settles times out with state kept', async () => {
    fixture = await startReplFixture();
    await fixture.run('const kept = 1');
    const { value: result, ms } = await timed(() => fixture!.run('print("waiting"); await new Promise(() => {})', { timeoutMs: TIMEOUT_MS }));
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(result.stdout.text).toBe('waiting\n');
    expect((await fixture.run('kept + 1')).value).toBe('2');
  });

  test('a synchronous loop after an await gets the worker replaced: timeout, state lost, next cell works', async () => {
    fixture = await startReplFixture();
    fixture.writeContext('doc.txt', 'the context');
    await fixture.repl.loadContext({ variable: 'context', file: 'doc.txt', format: 'text' });
    await fixture.run('const lost = 1');
    const { value: result, ms } = await timed(() => fixture!.run('await null; while (true) {}', { timeoutMs: TIMEOUT_MS }));
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('TimeoutError');
    expect(result.stateLost).toBe(true);
    expect(result.variables).toEqual([{ name: 'context', type: 'string' }]);
    const next = await fixture.run('[typeof lost, context]');
    expect(next.status).toBe('ok');
    expect(next.value).toBe("[ 'undefined', 'the context' ]");
    expect(next.stateLost).toBe(false);
  });

  test('a sub-call the host never answers ends the cell as a timeout', async () => {
    fixture = await startReplFixture({ onSubcall: () => new Promise(() => {}) });
    const { value: result, ms } = await timed(() => fixture!.run('llm_query("hello?")', { timeoutMs: TIMEOUT_MS }));
    expect(ms).toBeLessThan(TIMEOUT_MS + 1000);
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
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
    await fixture.run('setTimeout(() => process.exit(0), 20)');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const next = await fixture.run('1 + 1');
    expect(next.value).toBe('2');
    expect(next.stateLost).toBe(true);
  });

  test('cells queue: concurrent executes run one at a time in order', async () => {
    fixture = await startReplFixture();
    const results = await Promise.all([
      fixture.run('await new Promise((resolve) => setTimeout(resolve, 50)); var order = ["first"]'),
      fixture.run('order.push("second"); order'),
    ]);
    expect(results[1].value).toBe("[ 'first', 'second' ]");
  });

  test('aborting a running cell rejects and the next cell runs in a fresh worker', async () => {
    fixture = await startReplFixture();
    const controller = new AbortController();
    const running = fixture.repl.execute(
      { code: 'await null; while (true) {}', language: 'javascript', timeoutMs: 10_000, outputLimitChars: 1000 },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    await expect(running).rejects.toThrow('caller gave up');
    const next = await fixture.run('"alive"');
    expect(next.value).toBe("'alive'");
  });
});
