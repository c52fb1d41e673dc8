/**
 * Custom tools across the container boundary: names refused before anything starts, a tool call
 * cut off by its cell's timeout, and tools defined again in a container that replaced a crashed
 * one. Calling tools from JavaScript and Python cells (JSON both ways, failures as ToolError) is
 * part of the REPL contract table in sandbox-container.test.ts.
 */
import { describe, expect, inject, it } from 'vitest';
import type Dockerode from 'dockerode';
import { InvalidOptionError, Sandbox, createDockerClient, type JsonValue, type SandboxTool } from 'rlm';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();
const image = inject('sandboxImage');

function recordingTool(answer: (args: JsonValue[], signal: AbortSignal) => JsonValue | Promise<JsonValue>) {
  const calls: Array<{ args: JsonValue[]; signal: AbortSignal }> = [];
  const tool: SandboxTool = {
    description: 'Records its calls and answers as the test says.',
    handler: (args, { signal }) => {
      calls.push({ args, signal });
      return answer(args, signal);
    },
  };
  return { tool, calls };
}

describe('custom tools in a container', () => {
  it('refuses a reserved name before anything starts', async () => {
    // Any use of this engine would throw: the refusal must come first.
    const untouchable = new Proxy(
      {},
      {
        get: () => {
          throw new Error('the Docker engine was used');
        },
      },
    ) as Dockerode;
    const creating = Sandbox.create({ docker: untouchable, image, startTimeoutMs: TEST_START_TIMEOUT_MS, tools: { llm_query: { handler: () => 'shadowed' } } });
    await expect(creating).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(creating).rejects.toThrow(/^tools\.llm_query: the name is a reserved name of the REPL/);
  });

  it("times out a cell whose tool call outlives its deadline, and fires the handler's signal", async () => {
    const slow = recordingTool((_, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true })));
    await using sandbox = await Sandbox.create({
      docker,
      image,
      ...TEST_SANDBOX_RUNTIME,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      tools: { slow_tool: slow.tool },
    });
    const result = await sandbox.execute('slow_tool(1)', { timeoutMs: 1_000 });
    expect(result.status).toBe('timeout');
    expect(slow.calls[0]?.signal.aborted).toBe(true);
    expect((await sandbox.execute('"still usable"')).value).toBe("'still usable'");
  });

  it('defines the tools again after a cell is killed for memory and in a container that replaces a dead one, including a set changed later', async () => {
    const echo = recordingTool((args) => args);
    await using sandbox = await Sandbox.create({
      docker,
      image,
      ...TEST_SANDBOX_RUNTIME,
      startTimeoutMs: TEST_START_TIMEOUT_MS,
      tools: { echo: echo.tool },
      limits: { memoryBytes: 256 * 1024 * 1024 },
    });
    expect(await sandbox.defineTools({ echo: echo.tool, shout: { handler: ([text]) => String(text).toUpperCase() } })).toEqual(['echo', 'shout']);
    const call = '[echo("back", { n: 1 }), shout("again")]';
    // The kernel kills the cell's process (or the whole container) for memory: the REPL starts the
    // cells again (or the host replaces the container), with the tools.
    const killed = await sandbox.execute('const bufs = []; while (true) bufs.push(Buffer.alloc(32 * 1024 * 1024, 1))', { timeoutMs: 60_000 });
    expect(killed.error?.type).toBe('OutOfMemoryError');
    expect(killed.stateLost).toBe(true);
    const afterMemory = await sandbox.execute(call, { timeoutMs: 10_000 });
    expect(afterMemory.error).toBeNull();
    expect(afterMemory.value).toBe("[ [ 'back', { n: 1 } ], 'AGAIN' ]");
    // The container dies between cells: the host replaces it and defines the tools in the new one.
    const restarts = sandbox.restarts;
    await docker.getContainer(sandbox.containerId ?? '').kill();
    const crashed = await sandbox.execute('1', { timeoutMs: 10_000 });
    expect(crashed.stateLost).toBe(true);
    expect(sandbox.restarts).toBe(restarts + 1);
    const after = await sandbox.execute(call, { timeoutMs: 10_000 });
    expect(after.error).toBeNull();
    expect(after.value).toBe("[ [ 'back', { n: 1 } ], 'AGAIN' ]");
  });
});
