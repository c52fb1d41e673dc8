/**
 * Custom tools across the container boundary: host-side handlers called synchronously from cells,
 * JSON both ways, failures as ToolError, names refused before anything starts, and tools defined
 * again in a container that replaced a crashed one.
 */
import { describe, expect, inject, it } from 'vitest';
import type Dockerode from 'dockerode';
import { InvalidOptionError, Sandbox, createDockerClient, type JsonValue, type SandboxTool } from 'rlm';

const docker = createDockerClient();
const image = inject('sandboxImage');

function recordingTool(answer: (args: JsonValue[], signal: AbortSignal) => JsonValue | Promise<JsonValue>) {
  const calls: Array<{ args: JsonValue[]; signal: AbortSignal }> = [];
  const tool: SandboxTool = {
    description: 'Looks a customer up by id; returns the requested fields.',
    handler: (args, { signal }) => {
      calls.push({ args, signal });
      return answer(args, signal);
    },
  };
  return { tool, calls };
}

describe('custom tools in a container', () => {
  it('runs a tool defined at create from a cell, synchronously, with JSON arguments and result', async () => {
    const lookup = recordingTool(([id, options]) => ({
      id: id ?? null,
      rows: ((options as { fields?: string[] } | null)?.fields ?? []).map((field) => ({ field, value: `${field} of ${String(id)}` })),
    }));
    const failing = recordingTool(() => {
      throw new Error('the CRM is down');
    });
    await using sandbox = await Sandbox.create({ docker, image, tools: { lookup_customer: lookup.tool, crm_status: failing.tool } });
    const result = await sandbox.execute(
      'const found = lookup_customer("c-42", { fields: ["name", "city"] });\n' +
        'let failure; try { crm_status() } catch (e) { failure = `${e.name}: ${e.message}` }\n' +
        'print(JSON.stringify({ rows: found.rows, isArray: Array.isArray(found.rows), failure }))',
      { timeoutMs: 10_000 },
    );
    expect(result.error).toBeNull();
    expect(JSON.parse(result.stdout.text)).toEqual({
      rows: [
        { field: 'name', value: 'name of c-42' },
        { field: 'city', value: 'city of c-42' },
      ],
      isArray: true,
      failure: 'ToolError: crm_status failed: the CRM is down',
    });
    expect(lookup.calls.map(({ args }) => args)).toEqual([['c-42', { fields: ['name', 'city'] }]]);
    expect(result.variables.map(({ name }) => name)).toEqual(['failure', 'found']);
  });

  it('refuses a reserved name before anything starts', async () => {
    // Any use of this engine would throw: the refusal must come first.
    const untouchable = new Proxy({}, { get: () => { throw new Error('the Docker engine was used'); } }) as Dockerode;
    const creating = Sandbox.create({ docker: untouchable, image, tools: { llm_query: { handler: () => 'shadowed' } } });
    await expect(creating).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(creating).rejects.toThrow(/^tools\.llm_query: the name is a reserved name of the REPL/);
  });

  it("times out a cell whose tool call outlives its deadline, and fires the handler's signal", async () => {
    const slow = recordingTool((_, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true })));
    await using sandbox = await Sandbox.create({ docker, image, tools: { slow_tool: slow.tool } });
    const result = await sandbox.execute('slow_tool(1)', { timeoutMs: 1_000 });
    expect(result.status).toBe('timeout');
    expect(slow.calls[0]?.signal.aborted).toBe(true);
    expect((await sandbox.execute('"still usable"')).value).toBe("'still usable'");
  });

  it('defines the tools again in the container that replaces one killed for memory, including a set changed later', async () => {
    const echo = recordingTool((args) => args);
    await using sandbox = await Sandbox.create({ docker, image, tools: { echo: echo.tool }, limits: { memoryBytes: 256 * 1024 * 1024 } });
    expect(await sandbox.defineTools({ echo: echo.tool, shout: { handler: ([text]) => String(text).toUpperCase() } })).toEqual(['echo', 'shout']);
    const killed = await sandbox.execute('const bufs = []; while (true) bufs.push(Buffer.alloc(32 * 1024 * 1024, 1))', { timeoutMs: 60_000 });
    expect(killed.error?.type).toBe('OutOfMemoryError');
    expect(sandbox.restarts).toBe(1);
    const after = await sandbox.execute('[echo("back", { n: 1 }), shout("again")]', { timeoutMs: 10_000 });
    expect(after.error).toBeNull();
    expect(after.value).toBe("[ [ 'back', { n: 1 } ], 'AGAIN' ]");
  });
});
