/**
 * Entry point of the cell process (`cell-process.js`), started by the REPL server (see
 * server/cell-process-client.ts) under Node's permission model. It runs the sandbox's REPL — a
 * {@link JavaScriptRepl} or {@link PythonRepl}, whose cells run in a worker thread of this process —
 * and serves it over the pipe at fd 3. Cells can reach this process but not the server: its
 * memory, its socket to the host and its inspector are in another process.
 *
 * Exits as soon as the pipe closes (the server is gone or gave up on this process), with code 70
 * when it could not start its REPL (the reason on stderr).
 */
import { syncBuiltinESMExports } from 'node:module';
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { DefineTools, Execute, HandlerError, LoadContext, RemoteError, Subcall, ToolCall, type RpcConnection } from '@rlm/shared';
import type { CellRepl, CellReplOptions } from '../repl/cell-repl.js';
import { ContextLoadError, ContextOutOfMemoryError, JavaScriptRepl, ReplError, ToolDefinitionError } from '../repl/javascript-repl.js';
import { PythonRepl } from '../repl/python/python-repl.js';
import { connectionOverStream } from './frames.js';
import { CELL_CHANNEL_FD, parseCellProcessArgs, type CellProcessArgs } from './args.js';
import { CellErrorCode, CellReady, MAX_FRAME_TO_CELL_BYTES, remoteErrorText } from './protocol.js';
import { errorMessage } from '../to-error.js';

const START_FAILED_EXIT_CODE = 70;

/**
 * Lets this thread signal only its own process: `process.kill` reaches the kernel through
 * `process._kill`, which is replaced (non-writable, non-configurable) by a check that answers EPERM
 * for any other pid — the server (PID 1), the process group (0) and every process (-1) included.
 *
 * Why: the kernel ignores SIGSTOP and SIGKILL sent to a PID namespace's init from inside it, but
 * gVisor does not; a cell that stopped the server there would keep it from exiting when its host
 * dies. The permission model denies `process.binding`, so the replaced function is the only way
 * from JavaScript to the kill system call.
 */
const SIGNAL_CONFINEMENT = `{
  const rawKill = process._kill;
  const ownPid = process.pid;
  Object.defineProperty(process, '_kill', {
    configurable: false,
    enumerable: false,
    writable: false,
    value: function _kill(pid, signal) {
      return pid === ownPid ? rawKill.call(process, pid, signal) : -1;
    },
  });
}`;

let args: CellProcessArgs;
try {
  args = parseCellProcessArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`cell-process: ${errorMessage(error)}\n`);
  process.exit(2);
}

if (!process.permission) {
  process.stderr.write("cell-process: refusing to run cells outside Node's permission model (start it with --permission)\n");
  process.exit(START_FAILED_EXIT_CODE);
}
confineSignals();
confineCellWorkers();

const pipe = new Socket({ fd: CELL_CHANNEL_FD, readable: true, writable: true });
const connection: RpcConnection = connectionOverStream(pipe, {
  name: 'cell process',
  maxFrameBytes: MAX_FRAME_TO_CELL_BYTES,
  maxMessageBytes: MAX_FRAME_TO_CELL_BYTES,
  // Nothing to clean up that the exit does not: the worker thread ends with the process.
  onClosed: () => process.exit(0),
});

const options: CellReplOptions & { pyodideDir?: string; snapshotFile?: string } = {
  contextDir: args.contextDir,
  onSubcall: (params, { signal }) => connection.request(Subcall, params, { signal }).catch(relayed),
  onToolCall: (params, { signal }) => connection.request(ToolCall, params, { signal }).catch(relayed),
  ...(args.heapLimitMb === undefined ? {} : { heapLimitMb: args.heapLimitMb }),
  ...(args.workerUrl === undefined ? {} : { workerUrl: new URL(args.workerUrl) }),
  ...(args.unresponsiveGraceMs === undefined ? {} : { unresponsiveGraceMs: args.unresponsiveGraceMs }),
  ...(args.pyodideDir === undefined ? {} : { pyodideDir: args.pyodideDir }),
  ...(args.snapshotFile === undefined ? {} : { snapshotFile: args.snapshotFile }),
};

let repl: CellRepl;
try {
  repl = args.language === 'python' ? await PythonRepl.start(options) : await JavaScriptRepl.start(options);
} catch (error) {
  process.stderr.write(`cell-process: the ${args.language} REPL did not start: ${errorMessage(error)}\n`);
  process.exit(START_FAILED_EXIT_CODE);
}
connection.handle(Execute, (params, { signal }) => repl.execute(params, { signal }).catch(asHandlerError));
connection.handle(LoadContext, (params, { signal }) => repl.loadContext(params, { signal }).catch(asHandlerError));
connection.handle(DefineTools, (params, { signal }) => repl.defineTools(params, { signal }).catch(asHandlerError));
await connection.request(CellReady, { language: args.language, node: process.version }).catch(() => {
  // The pipe closed first: onClosed is ending the process.
});

/** A failed host call as the cell sees it: the server's (or the host's) own words. */
function relayed(error: unknown): never {
  throw error instanceof RemoteError ? new Error(remoteErrorText(error)) : error;
}

/**
 * Makes every worker thread this process starts (the REPL's cell worker) run under the permission
 * model with this process's file access and nothing else: no right to start workers of its own,
 * and no `node:sqlite`.
 *
 * Why: a worker started with its own `execArgv` does not inherit the permission model (Node 24: a
 * cell doing `new Worker(code, { eval: true, execArgv: [] })` would get a thread with no
 * restriction at all, and `node:sqlite` opens files past it). The REPL starts its worker with
 * `execArgv: []`; replacing the built-in `Worker` before the REPL starts gives that worker these
 * flags instead, and a cell inside it cannot start another. Cells run in that worker, never here.
 */
function confineCellWorkers(): void {
  const flags = process.execArgv.filter((flag) => flag === '--permission' || flag.startsWith('--allow-fs-read=') || flag.startsWith('--allow-fs-write='));
  const execArgv = [...flags, '--no-experimental-sqlite'];
  const threads = process.getBuiltinModule('node:worker_threads');
  const Unconfined = threads.Worker;
  class ConfinedWorker extends Unconfined {
    constructor(filename: string | URL, options: ConstructorParameters<typeof Unconfined>[1] = {}) {
      if (options.eval) {
        super(filename, { ...options, execArgv });
        return;
      }
      const url = filename instanceof URL ? filename.href : pathToFileURL(filename).href;
      super(workerBootstrap(url), { ...options, eval: true, execArgv });
    }
  }
  threads.Worker = ConfinedWorker;
  // ESM imports of node:worker_threads (the bundled REPL's) see the replacement too.
  syncBuiltinESMExports();
}

/** Applies {@link SIGNAL_CONFINEMENT} to this thread (the cell process's main thread). */
function confineSignals(): void {
  const internal = process as unknown as { _kill: (pid: number, signal: number) => number };
  const rawKill = internal._kill;
  const ownPid = process.pid;
  Object.defineProperty(process, '_kill', {
    configurable: false,
    enumerable: false,
    writable: false,
    value: (pid: number, signal: number) => (pid === ownPid ? rawKill.call(process, pid, signal) : -1),
  });
}

/**
 * The code a confined worker starts with: it answers `process.binding('constants')` — which the
 * permission model denies, and Pyodide's file system layer (Emscripten's NODEFS) calls at start —
 * with the same constants from their public modules, then loads the worker's own script. Every
 * other binding stays denied.
 */
function workerBootstrap(url: string): string {
  return `
    ${SIGNAL_CONFINEMENT}
    const denied = process.binding;
    const constants = Object.freeze({
      fs: process.getBuiltinModule('fs').constants,
      os: process.getBuiltinModule('os').constants,
      crypto: process.getBuiltinModule('crypto').constants,
      zlib: process.getBuiltinModule('zlib').constants,
    });
    process.binding = function binding(name) {
      return name === 'constants' ? constants : denied.call(process, name);
    };
    import(${JSON.stringify(url)}).catch((error) => {
      process.nextTick(() => { throw error; });
    });
  `;
}

/** Rethrows the REPL's typed errors as codes the server turns back into the same types. */
function asHandlerError(error: unknown): never {
  if (error instanceof ContextOutOfMemoryError) throw new HandlerError(CellErrorCode.contextOutOfMemory, error.message);
  if (error instanceof ContextLoadError) throw new HandlerError(CellErrorCode.contextLoad, error.message);
  if (error instanceof ToolDefinitionError) throw new HandlerError(CellErrorCode.invalidTools, error.message);
  if (error instanceof ReplError) throw new HandlerError(CellErrorCode.repl, `${error.name}: ${error.message}`);
  throw error;
}
