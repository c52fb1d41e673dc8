/**
 * The cell process for real: a Node process under the permission model, spawned by the client,
 * running the bundled REPL, talking over its fd-3 pipe. Cells here attack their own process the
 * way a hostile model's code would; the assertions are the server's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecuteResult, type ExecuteParams, type Language, type SubcallParams, type SubcallResult } from '@rlm/shared';
import { afterEach, describe, expect, test } from 'vitest';
import { testPyodideDir, testPythonSnapshot } from '../testing/python-snapshot.js';
import { recordingSubcalls } from '../testing/recording-subcalls.js';
import { bundledCellProcessUrl, bundledPythonWorkerUrl, bundledReplWorkerUrl } from '../testing/repl-worker-bundle.js';
import { CellProcessClient, type CellProcessClientOptions } from './cell-process-client.js';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Started {
  client: CellProcessClient;
  contextDir: string;
  run(code: string, params?: Partial<Omit<ExecuteParams, 'code'>>): Promise<ExecuteResult>;
}

async function start(options: Partial<CellProcessClientOptions> & { language?: Language } = {}): Promise<Started> {
  const language = options.language ?? 'javascript';
  const contextDir = mkdtempSync(join(tmpdir(), 'rlm-cell-process-'));
  cleanups.push(() => rmSync(contextDir, { recursive: true, force: true }));
  const client = await CellProcessClient.start({
    language,
    contextDir,
    onSubcall: recordingSubcalls().onSubcall,
    cellProcessUrl: await bundledCellProcessUrl(),
    // A loaded machine may keep an interpreter from acting on its interrupt for seconds.
    unresponsiveGraceMs: 10_000,
    ...(language === 'python'
      ? { workerUrl: await bundledPythonWorkerUrl(), pyodideDir: testPyodideDir, snapshotFile: await testPythonSnapshot() }
      : { workerUrl: await bundledReplWorkerUrl() }),
    ...options,
  });
  cleanups.push(() => client.close());
  return {
    client,
    contextDir,
    async run(code, params = {}) {
      const result = await client.execute({ code, language, timeoutMs: 20_000, outputLimitChars: 20_000, ...params });
      return ExecuteResult.parse(result);
    },
  };
}

/** Resolves once `condition` holds, polling; fails after a generous deadline. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a JavaScript cell process', () => {
  test('runs cells with state, a context and sub-calls answered by the server', async () => {
    const seen: SubcallParams[] = [];
    const { client, contextDir, run } = await start({
      onSubcall: async (params) => {
        seen.push(params);
        return { outcomes: params.prompts.map((prompt) => ({ ok: true as const, text: `<${prompt}>` })) };
      },
    });
    expect(client.pid).toBeTypeOf('number');
    expect(client.pid).not.toBe(process.pid);
    writeFileSync(join(contextDir, 'context.txt'), 'one two');
    await client.loadContext({ variable: 'context', file: 'context.txt', format: 'text' });
    expect((await run('const words = context.split(" "); words.length')).value).toBe('2');
    const result = await run('llm_query_batched(words, { model: "m" }).join("") + llm_query("x")');
    expect(result).toMatchObject({ status: 'ok', value: "'<one><two><x>'", stateLost: false });
    expect(seen).toEqual([
      { kind: 'llm_query', prompts: ['one', 'two'], batched: true, model: 'm' },
      { kind: 'llm_query', prompts: ['x'], batched: false },
    ]);
  });

  test('relays a failed sub-call to the cell in the host’s own words', async () => {
    const { run } = await start({
      onSubcall: async () => {
        throw new Error('the run budget is spent');
      },
    });
    // Word for word what the in-process REPL gave the cell.
    expect((await run('llm_query("x")')).value).toBe("'Error: the run budget is spent'");
  });

  test('a cell process killed mid-cell answers the cell with its state lost, and the next cell runs with the context again', async () => {
    const { client, contextDir, run } = await start();
    writeFileSync(join(contextDir, 'context.txt'), 'kept');
    await client.loadContext({ variable: 'context', file: 'context.txt', format: 'text' });
    await run('globalThis.lost = 1');
    const first = client.pid as number;
    const cell = run('for (;;) {}', { timeoutMs: 60_000 });
    await until(() => client.processRunning, 'the cell process runs');
    process.kill(first, 'SIGTERM');
    const result = await cell;
    expect(result).toMatchObject({ status: 'error', stateLost: true, error: { type: 'ProcessExitError' } });
    expect(result.error?.message).toMatch(/SIGTERM/);
    expect(result.variables).toEqual([{ name: 'context', type: 'string' }]);
    const next = await run('[typeof lost, context]');
    expect(next).toMatchObject({ status: 'ok', value: "[ 'undefined', 'kept' ]", stateLost: false });
    expect(client.pid).not.toBe(first);
  });

  test('a cell process killed by SIGKILL (the kernel’s out-of-memory killer) is reported as OutOfMemoryError', async () => {
    const { client, run } = await start({ heapLimitMb: 256 });
    const cell = run('for (;;) {}', { timeoutMs: 60_000 });
    await until(() => client.processRunning, 'the cell process runs');
    process.kill(client.pid as number, 'SIGKILL');
    const result = await cell;
    expect(result).toMatchObject({ status: 'error', stateLost: true, error: { type: 'OutOfMemoryError' } });
    expect(result.error?.message).toMatch(/256 MiB/);
    expect((await run('1 + 1')).value).toBe('2');
  });

  test('a fresh cell process gets the contexts and tools again, and a refused tool set changes nothing', async () => {
    const { client, contextDir, run } = await start({
      onToolCall: async (params) => ({ ok: true, value: `${params.name}(${params.args.join(',')})` }),
    });
    writeFileSync(join(contextDir, 'data.json'), '{"n": 3}');
    await client.loadContext({ variable: 'data', file: 'data.json', format: 'json' });
    await client.defineTools({ tools: [{ name: 'lookup' }] });
    await expect(client.defineTools({ tools: [{ name: 'data' }] })).rejects.toMatchObject({ name: 'ToolDefinitionError' });
    await expect(client.loadContext({ variable: 'missing', file: 'missing.txt', format: 'text' })).rejects.toMatchObject({
      name: 'ContextLoadError',
      message: expect.stringMatching(/^cannot load context variable "missing": /),
    });
    process.kill(client.pid as number, 'SIGKILL');
    await until(() => !client.processRunning, 'the client notices the death');
    const result = await run('[data.n, lookup(1, 2)]');
    expect(result).toMatchObject({ status: 'ok', value: "[ 3, 'lookup(1,2)' ]", stateLost: true });
  });

  test('a cell process that dies between cells makes the next result say the state was lost', async () => {
    const { client, run } = await start();
    await run('globalThis.x = 1');
    const pid = client.pid as number;
    process.kill(pid, 'SIGKILL');
    await until(() => !client.processRunning, 'the client notices the death');
    const result = await run('typeof x');
    expect(result).toMatchObject({ status: 'ok', value: "'undefined'", stateLost: true });
    expect((await run('1')).stateLost).toBe(false);
  });

  test('a cell process that does not answer is killed past the cell’s timeout and grace, and replaced', async () => {
    const { client, run } = await start({ unresponsiveGraceMs: 100, killGraceMs: 200 });
    await run('globalThis.x = 1');
    const stopped = client.pid as number;
    const cell = run('1', { timeoutMs: 500 });
    // A process that cannot run at all: the hardest case of a stuck one.
    process.kill(stopped, 'SIGSTOP');
    const result = await cell;
    expect(result).toMatchObject({ status: 'timeout', stateLost: true, error: { type: 'TimeoutError' } });
    expect(() => process.kill(stopped, 0)).toThrow();
    expect((await run('typeof x')).value).toBe("'undefined'");
  });

  test('denies the inspector, process.binding, child processes, unconfined workers, sqlite and files outside its directories', async () => {
    const { run } = await start();
    const probe = `
      function attempt(f) { try { return 'ALLOWED ' + String(f()).slice(0, 40) } catch (e) { return e.code || e.message } }
      const fs = require('node:fs');
      const found = {
        inspector: attempt(() => new (require('node:inspector').Session)().connect()),
        inspectorMain: attempt(() => new (require('node:inspector').Session)().connectToMainThread()),
        inspectorOpen: attempt(() => require('node:inspector').open(0)),
        binding: attempt(() => process.binding('fs')),
        childProcess: attempt(() => require('node:child_process').execFileSync('/bin/true')),
        builtinChildProcess: attempt(() => process.getBuiltinModule('child_process').spawnSync('/bin/true').status),
        cmdline: attempt(() => fs.readFileSync('/proc/1/cmdline', 'utf8')),
        mountinfo: attempt(() => fs.readFileSync('/proc/self/mountinfo', 'utf8')),
        run: attempt(() => fs.readdirSync('/run')),
        etc: attempt(() => fs.readFileSync('/etc/hostname', 'utf8')),
        addon: attempt(() => process.dlopen({ exports: {} }, '/nonexistent.node')),
        wasi: attempt(() => new (require('node:wasi').WASI)({ version: 'preview1' })),
        worker: attempt(() => new (require('node:worker_threads').Worker)('1', { eval: true, execArgv: [] })),
        sqlite: attempt(() => require('node:sqlite')),
        env: Object.keys(process.env).join(','),
        tmp: attempt(() => { fs.writeFileSync('/tmp/rlm-cell-probe-' + process.pid, 'x'); fs.rmSync('/tmp/rlm-cell-probe-' + process.pid); return 'ok' }),
      };
      found`;
    const result = await run(probe);
    expect(result.status).toBe('ok');
    const value = result.value ?? '';
    for (const key of [
      'inspector',
      'inspectorMain',
      'inspectorOpen',
      'binding',
      'childProcess',
      'builtinChildProcess',
      'cmdline',
      'mountinfo',
      'run',
      'etc',
      'wasi',
      'worker',
    ]) {
      expect(value).toMatch(new RegExp(`${key}: 'ERR_ACCESS_DENIED'`));
    }
    expect(value).toMatch(/addon: 'ERR_DLOPEN_DISABLED'/);
    expect(value).toMatch(/sqlite: 'ERR_UNKNOWN_BUILTIN_MODULE'/);
    expect(value).toMatch(/env: ''/);
    expect(value).toMatch(/tmp: 'ALLOWED ok'/);
  });

  test('a cell may signal only its own process: the server, the process group and every process are refused', async () => {
    const { run } = await start();
    const probe = `
      function attempt(f) { try { return 'sent ' + f() } catch (e) { return e.code || e.message } }
      const found = {
        parent: attempt(() => process.kill(process.ppid, 0)),
        group: attempt(() => process.kill(0, 0)),
        everyone: attempt(() => process.kill(-1, 0)),
        rawParent: attempt(() => process._kill(process.ppid, 0)),
        redefined: attempt(() => Object.defineProperty(process, '_kill', { value: () => 0 })),
        self: attempt(() => process.kill(process.pid, 0)),
      };
      found`;
    const result = await run(probe);
    expect(result.error).toBeNull();
    expect(result.value).toMatch(/parent: 'EPERM'/);
    expect(result.value).toMatch(/group: 'EPERM'/);
    expect(result.value).toMatch(/everyone: 'EPERM'/);
    expect(result.value).toMatch(/rawParent: 'sent -1'/);
    expect(result.value).toMatch(/redefined: 'Cannot redefine property: _kill'/);
    expect(result.value).toMatch(/self: 'sent true'/);
  });

  test('a cell that writes garbage to every file descriptor loses its state but cannot break the server', async () => {
    const { run } = await start();
    await run('globalThis.x = 1');
    const result = await run(`
      const fs = require('node:fs');
      for (let fd = 0; fd < 64; fd++) { try { fs.writeSync(fd, 'garbage \\u0000\\u00ff{"type":"response"}\\n'.repeat(100)) } catch {} }
      'wrote'`);
    // Fd 3 is the channel: its frames are now out of step, so the process is replaced.
    expect(result).toMatchObject({ status: 'error', stateLost: true, error: { type: 'ProcessExitError' } });
    expect(result.error?.message).toMatch(/broke the protocol|channel closed|frame/);
    const next = await run('typeof x');
    expect(next).toMatchObject({ status: 'ok', value: "'undefined'" });
  });

  test('a cell that forges a well-framed request for a method the server does not serve loses its process', async () => {
    const { run } = await start();
    const result = await run(`
      const text = JSON.stringify({ type: 'request', id: 1e9, method: 'hello', params: {} });
      const header = Buffer.alloc(4); header.writeUInt32BE(Buffer.byteLength(text));
      require('node:fs').writeSync(3, Buffer.concat([header, Buffer.from(text)]));
      'sent'`);
    expect(result).toMatchObject({ status: 'error', stateLost: true });
    expect(result.error?.message).toMatch(/hello/);
  });

  test('refuses sub-calls beyond its in-flight cap and aborts the rest when the cell ends', async () => {
    let active = 0;
    let most = 0;
    let aborted = 0;
    const { run } = await start({
      maxHostCallsInFlight: 4,
      onSubcall: (_params, { signal }) =>
        new Promise<SubcallResult>((_, reject) => {
          active++;
          most = Math.max(most, active);
          signal.addEventListener('abort', () => {
            active--;
            aborted++;
            reject(signal.reason as Error);
          });
        }),
    });
    // The cell posts straight to its host-call port, past the REPL's own llm_query, and counts the refusals.
    const result = await run(`
      const { workerData, receiveMessageOnPort } = require('node:worker_threads');
      const port = workerData.hostCallPort;
      for (let id = 1e6; id < 1e6 + 20; id++) port.postMessage({ id, kind: 'subcall', params: { kind: 'llm_query', prompts: ['p'], batched: false } });
      let refused = 0;
      const deadline = Date.now() + 20000;
      while (refused < 16 && Date.now() < deadline) {
        const message = receiveMessageOnPort(port);
        if (message && /in flight|already handling/.test(message.message.error ?? '')) refused++;
      }
      refused`);
    expect(result.value).toBe('16');
    expect(most).toBe(4);
    await until(() => aborted === 4, 'the calls of the finished cell are aborted');
    expect(active).toBe(0);
  });

  test('close kills the cell process; later calls are refused', async () => {
    const { client, run } = await start();
    const pid = client.pid as number;
    await client.close();
    await client.close();
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(run('1')).rejects.toThrow(/closed/);
  });

  test('a cell process that cannot start is a ReplStartError carrying its stderr', async () => {
    const contextDir = mkdtempSync(join(tmpdir(), 'rlm-cell-process-'));
    cleanups.push(() => rmSync(contextDir, { recursive: true, force: true }));
    const start = CellProcessClient.start({
      language: 'javascript',
      contextDir,
      onSubcall: recordingSubcalls().onSubcall,
      cellProcessUrl: await bundledCellProcessUrl(),
      workerUrl: new URL('file:///nonexistent/repl-worker.js'),
    });
    await expect(start).rejects.toMatchObject({ name: 'ReplStartError', message: expect.stringMatching(/exited with code 70[\s\S]*did not start/) });
  });
});

describe('a Python cell process', () => {
  test('runs cells, and its cells cannot reach the server through js or pyodide.code either', async () => {
    const { run } = await start({ language: 'python' });
    expect((await run('x = 41\nx + 1')).value).toBe('42');
    const probe = [
      'import js, pyodide.code',
      'def attempt(f):',
      '    try:',
      '        return "ALLOWED " + str(f())[:40]',
      '    except Exception as e:',
      '        return str(getattr(e, "code", None) or e)[:80]',
      'fs = js.process.getBuiltinModule("fs")',
      'results = {',
      '  "cmdline": attempt(lambda: fs.readFileSync("/proc/1/cmdline", "utf8")),',
      '  "mountinfo": attempt(lambda: fs.readFileSync("/proc/self/mountinfo", "utf8")),',
      '  "run": attempt(lambda: fs.readdirSync("/run")),',
      '  "inspector": attempt(lambda: pyodide.code.run_js("new (process.getBuiltinModule(\'inspector\').Session)().connect()")),',
      '  "binding": attempt(lambda: pyodide.code.run_js("process.binding(\'fs\')")),',
      '  "child_process": attempt(lambda: pyodide.code.run_js("process.getBuiltinModule(\'child_process\').execFileSync(\'/bin/true\')")),',
      '  "worker": attempt(lambda: pyodide.code.run_js("new (process.getBuiltinModule(\'worker_threads\').Worker)(\'1\', { eval: true, execArgv: [] })")),',
      '}',
      'results',
    ].join('\n');
    const result = await run(probe);
    expect(result.status).toBe('ok');
    for (const key of ['cmdline', 'mountinfo', 'run', 'inspector', 'binding', 'child_process', 'worker']) {
      expect(result.value).toMatch(new RegExp(`'${key}': 'ERR_ACCESS_DENIED'`));
    }
  });
});
