/**
 * Both ends of the control channel in one process: the real REPL server (with its cell worker)
 * dialing the real host listener over a Unix socket. Fast, and no container; the container tests
 * cover the same paths across the boundary.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Execute, LoadContext, Subcall, type RpcConnection, type SubcallParams } from '@rlm/shared';
import { runReplServer } from '@rlm/sandbox-image';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlListener, UnixSocketEndpoint } from '../orchestrator/src/sandbox/control/control-listener.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../sandbox-image/dist');
const workerUrl = pathToFileURL(path.join(dist, 'repl-worker.js'));
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

interface PairOptions {
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  python?: boolean;
  /** Pyodide's directory for a Python server (default: the built bundle's). */
  pyodideDir?: string;
}

/** Opens a host listener and starts the REPL server dialing it; does not wait for the hello. */
async function startPair(options: PairOptions = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-channel-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const endpoint = new UnixSocketEndpoint(dir);
  const listener = await ControlListener.open({
    endpoint,
    sandboxId: 'in-process',
    ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
  });
  cleanups.push(() => listener.close());
  const server = runReplServer({
    url: `ws+unix://${endpoint.socketPath}:/`,
    token: listener.token,
    contextDir: dir,
    ...(options.python
      ? {
          language: 'python' as const,
          workerUrl: pathToFileURL(path.join(dist, 'python-worker.js')),
          pyodideDir: options.pyodideDir ?? path.join(dist, 'pyodide'),
        }
      : { workerUrl }),
    ...(options.heartbeatTimeoutMs ? { heartbeatTimeoutMs: options.heartbeatTimeoutMs } : {}),
  });
  return { listener, server, dir };
}

/** Both ends connected: resolves once the host has accepted the server's hello. */
async function connectPair(options: PairOptions = {}) {
  const { listener, server, dir } = await startPair(options);
  const host: RpcConnection = await listener.accept({ signal: AbortSignal.timeout(60_000) });
  return { host, server, dir };
}

const cell = (code: string) => ({ code, language: 'javascript' as const, timeoutMs: 30_000, outputLimitChars: 10_000 });

describe('the REPL server over a real socket', () => {
  it('runs cells, loads a context file and routes llm_query to the host', async () => {
    const { host, dir } = await connectPair();
    const seen: SubcallParams[] = [];
    host.handle(Subcall, (params) => {
      seen.push(params);
      return { outcomes: params.prompts.map((p) => ({ ok: true as const, text: `<${p}>` })) };
    });
    await writeFile(path.join(dir, 'context.txt'), 'one two three');
    await host.request(LoadContext, { variable: 'context', file: 'context.txt', format: 'text' });
    const result = await host.request(Execute, cell('const words = context.split(" "); llm_query_batched(words, { model: "m" }).join("")'));
    expect(result.status).toBe('ok');
    expect(result.value).toBe("'<one><two><three>'");
    expect(result.variables).toEqual(expect.arrayContaining([{ name: 'words', type: 'Array(3)' }]));
    expect(seen).toEqual([{ kind: 'llm_query', prompts: ['one', 'two', 'three'], batched: true, model: 'm' }]);
  });

  it('answers a cell in another language with a clear error and keeps serving', async () => {
    const { host } = await connectPair();
    await expect(host.request(Execute, { ...cell('print(1)'), language: 'python' })).rejects.toMatchObject({ code: 'unsupported_language' });
    expect((await host.request(Execute, cell('1 + 1'))).value).toBe('2');
  });

  it('serves a Python sandbox: cells with llm_query_batched through the host, and a JavaScript cell is refused', async () => {
    const { host, dir } = await connectPair({ python: true });
    host.handle(Subcall, (params) => ({ outcomes: params.prompts.map((p) => ({ ok: true as const, text: `<${p}>` })) }));
    await writeFile(path.join(dir, 'context.txt'), 'one two three');
    await host.request(LoadContext, { variable: 'context', file: 'context.txt', format: 'text' });
    const python = { ...cell('words = context.split()\n"".join(llm_query_batched(words, model="m"))'), language: 'python' as const };
    const result = await host.request(Execute, python);
    expect(result.value).toBe("'<one><two><three>'");
    await expect(host.request(Execute, cell('1 + 1'))).rejects.toMatchObject({ code: 'unsupported_language' });
  });

  it('says hello only once its Python interpreter has loaded: one that cannot load never says hello', async () => {
    const noPyodide = await mkdtemp(path.join(os.tmpdir(), 'rlm-no-pyodide-'));
    cleanups.push(() => rm(noPyodide, { recursive: true, force: true }));
    const { listener, server } = await startPair({ python: true, pyodideDir: noPyodide });
    const accepted = expect(listener.accept()).rejects.toThrow(/closed before the sandbox connected/);
    await expect(server).rejects.toThrow(noPyodide);
    // The server gave up without a hello, so the host never accepted a connection.
    await listener.close();
    await accepted;
  });

  it('exits when the host stops sending heartbeats, and stays connected past the same timeout while they arrive', async () => {
    // Same heartbeat timeout for both; only the first gets pings (every 50 ms, 30 per timeout).
    const pinged = await connectPair({ heartbeatIntervalMs: 50, heartbeatTimeoutMs: 1_500 });
    const silent = await connectPair({ heartbeatIntervalMs: 60_000, heartbeatTimeoutMs: 1_500 });
    const info = await silent.server;
    expect(info.reason).toMatch(/no ping from the host/);
    await silent.host.closed;
    // The pinged server's timeout was armed before the silent one's, so it has run out too: only
    // the pings kept the channel open.
    expect((await pinged.host.request(Execute, cell('"still here"'))).value).toBe("'still here'");
  });

  it('exits when the host closes the channel', async () => {
    const { host, server } = await connectPair();
    host.close(1001, 'host shutting down');
    const info = await server;
    expect(info.code).toBe(1001);
  });
});
