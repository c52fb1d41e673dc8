/**
 * The sandbox pool against real containers: isolation between the runs it serves, the bound with
 * many runs at once, waiters that give up, warm sandboxes that die, closing, the engine on a pool
 * (child RLMs included), and a Docker engine that goes away and comes back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import {
  AbortedError,
  DockerUnavailableError,
  RLM,
  SandboxClosedError,
  createDockerClient,
  createSandboxPool,
  listSandboxes,
  type RunEvent,
  type SandboxPool,
  type SandboxPoolOptions,
} from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { echoSub, isChildRequest, replResponse as repl } from '../orchestrator/src/testing/scripted-models.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();
const sandboxOptions = { docker, image: inject('sandboxImage'), ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS };

function testPool(options: SandboxPoolOptions): SandboxPool {
  return createSandboxPool({ ...sandboxOptions, ...options });
}

/** This process's sandbox containers (every container carries its owner's pid in the reaper's label). */
async function containersOfThisProcess(state?: string) {
  return (await listSandboxes({ docker })).filter((s) => s.owner.includes(`:${process.pid}:`) && (state === undefined || s.state === state));
}

/** Polls `condition` until it holds (a generous deadline; no fixed sleeps). */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

const textOf = (result: { stdout: { text: string }; error: { message: string } | null }) => result.stdout.text.trim() || (result.error?.message ?? '');

describe('the sandbox pool in real containers', () => {
  it('a JavaScript run on a pooled sandbox sees nothing a previous run left: globals, files in its working directory and /tmp', async () => {
    await using pool = testPool({ warm: { javascript: 1 }, maxSandboxes: 2 });
    await pool.whenWarm();
    const first = await pool.acquire();
    expect(first.warm).toBe(true);
    const wrote = await first.sandbox.execute(
      `const fs = require('node:fs');
       globalThis.leak = 42;
       var leakedVar = 'x';
       fs.writeFileSync('/tmp/leak.txt', 'secret');
       let cwdWrite;
       try { fs.writeFileSync('leak.txt', 'secret'); cwdWrite = 'written'; } catch (error) { cwdWrite = error.code; }
       print(process.cwd(), cwdWrite, fs.readFileSync('/tmp/leak.txt', 'utf8'))`,
    );
    expect(wrote.status).toBe('ok');
    const [cwd] = textOf(wrote).split(' ');
    const firstContainer = first.sandbox.containerId;
    await first.release();
    expect(first.sandbox.isClosed).toBe(true);

    await pool.whenWarm();
    await using second = await pool.acquire();
    expect(second.sandbox.id).not.toBe(first.sandbox.id);
    expect(second.sandbox.containerId).not.toBe(firstContainer);
    const read = await second.sandbox.execute(
      `const fs = require('node:fs');
       print(typeof globalThis.leak, typeof leakedVar, fs.existsSync('/tmp/leak.txt'), fs.existsSync(${JSON.stringify(`${cwd}/leak.txt`)}), fs.readdirSync('/tmp').length)`,
    );
    expect(textOf(read)).toBe('undefined undefined false false 0');
  });

  it('a Python run on a warm pooled sandbox (Pyodide loaded) sees no module state, variables or files of the previous one', async () => {
    await using pool = testPool({ warm: { python: 1 }, maxSandboxes: 2 });
    await pool.whenWarm();
    const first = await pool.acquire({ language: 'python' });
    expect(first.warm).toBe(true);
    const wrote = await first.sandbox.execute(
      'import json, sys, types\njson.leak = 1\nsys.modules["leaky"] = types.ModuleType("leaky")\nsecret = 5\nopen("/tmp/leak.txt", "w").write("x")\nprint("ok")',
    );
    expect(textOf(wrote)).toBe('ok');
    await first.release();

    await pool.whenWarm();
    await using second = await pool.acquire({ language: 'python' });
    expect(second.warm).toBe(true);
    expect(second.sandbox.id).not.toBe(first.sandbox.id);
    const read = await second.sandbox.execute(
      'import json, sys, os\nprint(hasattr(json, "leak"), "leaky" in sys.modules, "secret" in globals(), os.path.exists("/tmp/leak.txt"))',
    );
    expect(textOf(read)).toBe('False False False False');
  });

  it('holds maxSandboxes 4 with 20 runs at once: never more containers of this process than that while they run', async () => {
    await using pool = testPool({ warm: { javascript: 2 }, maxSandboxes: 4 });
    await pool.whenWarm();
    const acquired: Extract<RunEvent, { type: 'sandbox_acquired' }>[] = [];
    const rlm = new RLM({
      root: {
        backend: new ScriptedBackend((request) => {
          const turn = request.messages.filter((m) => m.role === 'assistant').length;
          return turn === 0 ? repl('const said = llm_query("hello " + context); print(said)') : repl('FINAL(said)');
        }),
        model: 'm',
      },
      sub: { backend: echoSub(), model: 's' },
      pool,
      onEvent: (event) => {
        if (event.type === 'sandbox_acquired') acquired.push(event);
      },
    });
    let running = true;
    let peak = 0;
    const samples: number[] = [];
    const watcher = (async () => {
      while (running) {
        const count = (await containersOfThisProcess()).length;
        samples.push(count);
        peak = Math.max(peak, count);
        // A poll every 25 ms: often enough to see every start, without flooding the engine.
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => rlm.completion({ context: `run ${i}`, query: 'q' })));
    running = false;
    await watcher;
    expect(results.map((r) => r.answer)).toEqual(Array.from({ length: 20 }, (_, i) => `ECHO HELLO RUN ${i}`));
    expect(samples.length).toBeGreaterThan(3);
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThanOrEqual(2);
    expect(acquired).toHaveLength(20);
    // With room for 4, most of the 20 waited for a run before them to give its sandbox back.
    expect(acquired.filter((event) => event.waitedMs > 0).length).toBeGreaterThan(0);
    const stats = pool.stats();
    expect(stats).toMatchObject({ maxSandboxes: 4, acquired: 20, inUse: 0, waiting: 0 });
    expect(stats.waitedMsMax).toBeGreaterThan(0);
    expect(stats.live).toBeLessThanOrEqual(4);
  });

  it('an aborted waiter leaves the queue, and the next acquire gets the freed room', async () => {
    await using pool = testPool({ maxSandboxes: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const waiting = pool.acquire({ signal: controller.signal });
    await until(() => pool.stats().waiting === 1, 'the second acquire queued');
    controller.abort();
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    expect(pool.stats().waiting).toBe(0);
    const next = pool.acquire();
    await until(() => pool.stats().waiting === 1, 'the third acquire queued');
    await held.release();
    await using lease = await next;
    expect(lease.waitedMs).toBeGreaterThan(0);
    expect(textOf(await lease.sandbox.execute('print(1 + 1)'))).toBe('2');
    expect(await containersOfThisProcess()).toHaveLength(1);
  });

  it('never hands out a warm sandbox killed while idle (docker kill): it is removed and a fresh one serves the acquire', async () => {
    await using pool = testPool({ warm: { javascript: 1 }, maxSandboxes: 2 });
    await pool.whenWarm();
    const [warm] = await containersOfThisProcess('running');
    expect(warm).toBeDefined();
    await docker.getContainer(warm?.id as string).kill();
    await using lease = await pool.acquire();
    expect(lease.warm).toBe(false);
    expect(lease.sandbox.containerId).not.toBe(warm?.id);
    expect(textOf(await lease.sandbox.execute('print("alive")'))).toBe('alive');
    expect(pool.stats().replacedUnhealthy).toBe(1);
    expect((await containersOfThisProcess()).map((c) => c.id)).not.toContain(warm?.id);
  });

  it('close() removes every container it started — warm, in use and starting — and a second close does nothing more', async () => {
    const pool = testPool({ warm: { javascript: 2, python: 1 }, maxSandboxes: 5 });
    await pool.whenWarm();
    const lease = await pool.acquire();
    const starting = pool.acquire({ language: 'python' }).then(
      (l) => l,
      (error: unknown) => error,
    );
    await until(async () => (await containersOfThisProcess()).length >= 4, 'the refill and the start under way');
    await Promise.all([pool.close(), pool.close()]);
    await pool.close();
    expect(await containersOfThisProcess()).toEqual([]);
    await expect(lease.sandbox.execute('1')).rejects.toBeInstanceOf(SandboxClosedError);
    await expect(pool.acquire()).rejects.toBeInstanceOf(SandboxClosedError);
    // The acquire under way either was handed its sandbox before the close (and lost it) or failed.
    const outcome = await starting;
    if (!(outcome instanceof Error)) expect((outcome as { sandbox: { isClosed: boolean } }).sandbox.isClosed).toBe(true);
    expect(pool.stats().live).toBe(0);
  });

  it('new RLM({ pool }) runs a depth-2 tree on pooled sandboxes: each run reports its sandbox, and the pool is whole again after', async () => {
    await using pool = testPool({ warm: { javascript: 2 }, maxSandboxes: 3 });
    await pool.whenWarm();
    const events: RunEvent[] = [];
    const model = new ScriptedBackend((request) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChildRequest(request)) {
        return turn === 0 ? repl('const inner = rlm_query("deeper: " + context); print(inner)') : repl('FINAL("child saw " + inner)');
      }
      return turn === 0 ? repl('const r = rlm_query("child task"); print(r)') : repl('FINAL("root got: " + r)');
    });
    const rlm = new RLM({
      root: { backend: model, model: 'm' },
      sub: { backend: echoSub(), model: 's' },
      pool,
      limits: { maxDepth: 2 },
      onEvent: (e) => events.push(e),
    });
    const result = await rlm.completion({ context: 'top', query: 'q' });
    expect(result.answer).toBe('root got: child saw child saw ECHO DEEPER: DEEPER: CHILD TASK');
    const acquired = events.filter((e): e is Extract<RunEvent, { type: 'sandbox_acquired' }> => e.type === 'sandbox_acquired');
    expect(acquired.map((e) => e.depth).sort()).toEqual([0, 1, 2]);
    for (const event of acquired) {
      expect(event.language).toBe('javascript');
      expect(event.readyMs).toBeGreaterThanOrEqual(event.waitedMs);
    }
    expect(acquired.find((e) => e.depth === 0)?.warm).toBe(true);
    expect(events.some((e) => e.type === 'warning')).toBe(false);
    expect(pool.stats()).toMatchObject({ acquired: 3, inUse: 0 });
  });

  it('a child RLM that cannot get a pooled sandbox (its parent holds the only one) is answered as a plain llm_query with a note', async () => {
    await using pool = testPool({ maxSandboxes: 1 });
    const warnings: string[] = [];
    const model = new ScriptedBackend((request) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChildRequest(request)) throw new Error('no child RLM may start: the pool has no room for one');
      return turn === 0 ? repl('const r = rlm_query("child task"); print(r)') : repl('FINAL(r)');
    });
    const rlm = new RLM({
      root: { backend: model, model: 'm' },
      sub: { backend: echoSub(), model: 's' },
      pool,
      limits: { maxDepth: 1 },
      onEvent: (e) => {
        if (e.type === 'warning') warnings.push(`${e.code}: ${e.message}`);
      },
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('ECHO CHILD TASK');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^sandbox_cap: rlm_query at depth 1 was answered as a plain llm_query: every sandbox of the pool \(maxSandboxes 1\)/);
    const call = result.trajectory[0]?.blocks[0]?.subcalls[0];
    expect(call?.note).toMatch(/maxSandboxes/);
    expect(pool.stats()).toMatchObject({ acquired: 1, inUse: 0, refused: { deadlock: 1, timeout: 0 } });
  });

  it('a session on a pool keeps one pooled sandbox across completions and gives it back on close', async () => {
    await using pool = testPool({ warm: { javascript: 1 }, maxSandboxes: 2 });
    await pool.whenWarm();
    const model = new ScriptedBackend((request) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      const first = request.messages[0]?.content.includes('context_1') !== true;
      if (first) return turn === 0 ? repl('globalThis.kept = context.length') : repl('FINAL(String(kept))');
      return repl('FINAL(kept + " " + context_1)');
    });
    const rlm = new RLM({ root: { backend: model, model: 'm' }, pool });
    const session = rlm.session();
    expect((await session.completion({ context: 'abcd', query: 'q' })).answer).toBe('4');
    expect((await session.completion({ context: 'next', query: 'q' })).answer).toBe('4 next');
    expect(pool.stats()).toMatchObject({ inUse: 1, acquired: 1 });
    await session.close();
    expect(pool.stats().inUse).toBe(0);
  });

  it('a Docker engine that goes away makes acquire fail with DockerUnavailableError, and the pool recovers when it is back', async () => {
    // The engine is reached through a socket this test can cut and restore (a proxy to the real one).
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-pool-engine-'));
    const socketPath = path.join(dir, 'docker.sock');
    const upstream = (docker.modem as { socketPath?: string }).socketPath ?? '/var/run/docker.sock';
    const connections = new Set<net.Socket>();
    let server: net.Server | undefined;
    const engineUp = () =>
      new Promise<void>((resolve) => {
        server = net.createServer((client) => {
          const engine = net.connect(upstream);
          connections.add(client).add(engine);
          client.pipe(engine).pipe(client);
          const drop = () => {
            client.destroy();
            engine.destroy();
            connections.delete(client);
            connections.delete(engine);
          };
          client.on('error', drop).on('close', drop);
          engine.on('error', drop).on('close', drop);
        });
        server.listen(socketPath, resolve);
      });
    const engineDown = () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server?.close(() => resolve());
      });
    await engineUp();
    const pool = createSandboxPool({ ...sandboxOptions, docker: createDockerClient({ dockerHost: `unix://${socketPath}` }), maxSandboxes: 2 });
    try {
      const first = await pool.acquire();
      expect(textOf(await first.sandbox.execute('print("up")'))).toBe('up');
      await first.release();

      await engineDown();
      const error = await pool.acquire().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DockerUnavailableError);
      expect(error).toMatchObject({ kind: 'docker_unavailable' });
      expect((error as Error).message).toMatch(/not reachable.*starts sandboxes again once the engine answers/s);
      await until(() => pool.stats().live === 0, 'the failed start gave its room back');

      await engineUp();
      await using again = await pool.acquire();
      expect(textOf(await again.sandbox.execute('print("back")'))).toBe('back');
    } finally {
      await pool.close();
      await engineDown();
      await rm(dir, { recursive: true, force: true });
    }
    expect(await containersOfThisProcess()).toEqual([]);
  });
});
