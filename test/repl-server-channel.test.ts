/**
 * Both ends of the control channel without a container: the real REPL server (with its cell
 * process) dialing the real host listener over a Unix socket, in this process or as the built
 * entry point `dist/repl-server.js`. Fast; the container tests cover the same paths across the
 * boundary.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
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
const cellProcessUrl = pathToFileURL(path.join(dist, 'cell-process.js'));
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
    cellProcessUrl,
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

/** Pids of the live processes whose parent is `pid` (read from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      // Field 4 of stat is the parent pid; the command name (field 2) may hold spaces, so split after its ')'.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') children.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return children;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Resolves once `condition` holds, polling; fails after a generous deadline. */
async function until<T>(condition: () => T | undefined | false, what: string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('the REPL server entry point (dist/repl-server.js)', () => {
  /** Starts the built entry point against a fresh listener, the token in a file; does not wait for hello. */
  async function startEntry(extraArgs: string[] = []) {
    // The control directory (socket, token) apart from the context, as in a container.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-entry-test-'));
    const contextDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-entry-context-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    cleanups.push(() => rm(contextDir, { recursive: true, force: true }));
    const endpoint = new UnixSocketEndpoint(dir);
    const listener = await ControlListener.open({ endpoint, sandboxId: 'entry' });
    cleanups.push(() => listener.close());
    const tokenFile = path.join(dir, 'token');
    // With a line end, as a shell or editor might write it.
    await writeFile(tokenFile, `${listener.token}\n`, { mode: 0o444 });
    const child = spawn(
      process.execPath,
      [
        '--disable-sigusr1',
        path.join(dist, 'repl-server.js'),
        `--url=ws+unix://${endpoint.socketPath}:/`,
        `--token-file=${tokenFile}`,
        `--context-dir=${contextDir}`,
        ...extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    cleanups.push(async () => {
      child.kill('SIGKILL');
      await exited;
    });
    return { child, listener, token: listener.token, exited, stderr: () => stderr };
  }

  it('reads its token from the file, keeps it off every command line, and runs cells in a child process under the permission model', async () => {
    const { child, listener, token } = await startEntry();
    const host = await listener.accept({ signal: AbortSignal.timeout(60_000) });
    expect((await host.request(Execute, cell('6 * 7'))).value).toBe('42');
    const pid = child.pid as number;
    const serverCommandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    expect(serverCommandLine).not.toContain(token);
    const [cellProcess] = await until(() => {
      const children = childrenOf(pid);
      return children.length > 0 && children;
    }, 'the cell process is listed');
    const cellCommandLine = readFileSync(`/proc/${cellProcess}/cmdline`, 'utf8').split('\0');
    expect(cellCommandLine).toEqual(expect.arrayContaining(['--permission', '--allow-worker', `--allow-fs-read=${dist}`]));
    expect(cellCommandLine.join(' ')).not.toContain(token);
    expect(cellCommandLine).not.toContain('--allow-child-process');
    // And a cell cannot read the server's command line (nor the token file at /run/rlm in a
    // container; here it sits in /tmp, which cells may read).
    const probe = await host.request(
      Execute,
      cell(`let code; try { require('node:fs').readFileSync('/proc/${pid}/cmdline') } catch (e) { code = e.code }\ncode`),
    );
    expect(probe.value).toBe("'ERR_ACCESS_DENIED'");
  });

  it('exits with code 3 and says so when --max-lifetime-ms passes, and its cell process goes with it', async () => {
    const { child, exited, stderr } = await startEntry(['--max-lifetime-ms=6000']);
    const pid = child.pid as number;
    const [cellProcess] = await until(() => {
      const children = childrenOf(pid);
      return children.length > 0 && children;
    }, 'the cell process is listed');
    expect(await exited).toEqual({ code: 3, signal: null });
    expect(stderr()).toMatch(/maximum lifetime of 6000 ms/);
    await until(() => !alive(cellProcess as number), 'the cell process is gone');
  });

  it('its cell process exits when the server is killed outright', async () => {
    const { child, listener, exited } = await startEntry();
    await listener.accept({ signal: AbortSignal.timeout(60_000) });
    const pid = child.pid as number;
    const [cellProcess] = childrenOf(pid);
    expect(cellProcess).toBeTypeOf('number');
    child.kill('SIGKILL');
    await exited;
    await until(() => !alive(cellProcess as number), 'the cell process is gone');
  });

  it('refuses to start without a readable token file, naming it', async () => {
    const { exited, stderr } = await startEntry(['--token-file=/nonexistent/token']);
    expect((await exited).code).toBe(2);
    expect(stderr()).toMatch(/cannot read the token file \/nonexistent\/token/);
  });
});
