/**
 * Starting a cell process: the Node command line that puts it under the permission model, its
 * stdio (fd 3 the channel, stderr read and bounded), and what is known of its end. Kept apart from
 * the protocol (no schemas, no WebSocket), so the server's entry point can start its first cell
 * process before it has loaded the rest of itself: the two start-ups overlap.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Language } from '@rlm/shared';
import { CELL_CHANNEL_FD, formatCellProcessArgs } from '../cell-process/args.js';
import { PYTHON_SNAPSHOT_FILE } from '../repl/python/pyodide-loader.js';

/** How much of a cell process's stderr is copied to the server's, per process, in bytes; the rest is dropped. */
const STDERR_FORWARD_BYTES = 64 * 1024;
/** How much of the end of a cell process's stderr is kept to explain its exit, in characters. */
const STDERR_TAIL_CHARS = 4 * 1024;

export interface CellProcessSpawnOptions {
  /** The language of every cell. */
  language: Language;
  /** Directory of the context files (read-only in the container); the cell process may read it. */
  contextDir: string;
  /** V8 heap cap of the cell worker in MiB (for Python, also the interpreter's memory cap). */
  heapLimitMb?: number | undefined;
  /** The cell process's bundle; default `cell-process.js` next to this module's bundle. */
  cellProcessUrl?: URL | undefined;
  /** A cell worker bundle other than the one next to the cell process (tests). */
  workerUrl?: URL | undefined;
  /** Pyodide's directory and snapshot (Python); default `pyodide/` next to the cell process. */
  pyodideDir?: string | undefined;
  snapshotFile?: string | undefined;
  /** The cell process REPL's `unresponsiveGraceMs` (see CellReplOptions), in milliseconds. */
  unresponsiveGraceMs?: number | undefined;
}

/** How a cell process ended, as far as the spawn knows (the client adds why it killed it). */
export interface CellProcessEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The spawn itself failed (no Node binary…). */
  readonly spawnError: Error | undefined;
}

/** A started cell process. Listens for its end and reads its stderr from the first moment, so nothing is missed. */
export interface SpawnedCellProcess {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** The server's end of the channel (fd 3 of the child). */
  readonly pipe: Duplex;
  /** The bundle it runs, for messages. */
  readonly script: string;
  /** Resolves once it has ended and its stderr is read to the end. */
  readonly ended: Promise<CellProcessEnd>;
  /** The end of what it wrote to stderr so far. */
  stderrTail(): string;
}

/**
 * Starts a cell process: `node --permission --allow-worker --allow-fs-read=<its bundle, the
 * worker's, the context, Pyodide, /tmp> --allow-fs-write=/tmp cell-process.js …`, with no
 * environment, fd 1 to nowhere, fd 2 read (the first 64 KiB copied to this process's stderr) and
 * fd 3 the channel. The kernel's out-of-memory killer is told to prefer it to the server.
 * Never throws for a spawn that fails: `ended` says so.
 */
export function spawnCellProcess(options: CellProcessSpawnOptions): SpawnedCellProcess {
  const script = fileURLToPath(options.cellProcessUrl ?? new URL('./cell-process.js', import.meta.url));
  const pyodideDir = options.language === 'python' ? (options.pyodideDir ?? join(dirname(script), 'pyodide')) : undefined;
  const snapshotFile = pyodideDir === undefined ? undefined : (options.snapshotFile ?? join(pyodideDir, PYTHON_SNAPSHOT_FILE));
  const workerPath = options.workerUrl ? fileURLToPath(options.workerUrl) : undefined;
  // What a cell may read: the bundles (code it could read anyway), its contexts, Pyodide, and scratch space.
  const readable = [dirname(script), workerPath && dirname(workerPath), options.contextDir, pyodideDir, snapshotFile && dirname(snapshotFile), '/tmp'].filter(
    (path): path is string => typeof path === 'string',
  );
  // Both spellings of a path through a symlink: Node's module loader opens the real one.
  const allowedReads = [...new Set(readable.flatMap((path) => [path, realPathOr(path)]))];
  const child = spawn(
    process.execPath,
    [
      '--permission',
      '--allow-worker',
      ...allowedReads.map((path) => `--allow-fs-read=${path}`),
      '--allow-fs-write=/tmp',
      '--disable-warning=SecurityWarning',
      '--disable-warning=ExperimentalWarning',
      script,
      ...formatCellProcessArgs({
        language: options.language,
        contextDir: options.contextDir,
        heapLimitMb: options.heapLimitMb,
        workerUrl: options.workerUrl?.href,
        pyodideDir,
        snapshotFile,
        unresponsiveGraceMs: options.unresponsiveGraceMs,
      }),
    ],
    // fd 1 goes nowhere (a cell's direct writes to it are its own business); fd 2 is read, bounded;
    // fd 3 is the channel. No environment: nothing of the server's reaches a cell.
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: {} },
  );
  if (child.pid !== undefined) preferForOutOfMemoryKill(child.pid);
  const pipe = child.stdio[CELL_CHANNEL_FD] as Duplex;
  // Until the channel is attached: a pipe error must not become an uncaught exception.
  pipe.on('error', () => {});
  // Should the server exit without closing it (process.exit at its lifetime limit), the cell
  // process goes with it even where the server is not PID 1 of a container.
  const killOnExit = () => child.kill('SIGKILL');
  process.on('exit', killOnExit);
  const stderr = readStderr(child);
  const ended = new Promise<CellProcessEnd>((resolve) => {
    let spawnError: Error | undefined;
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      process.off('exit', killOnExit);
      resolve({ code, signal, spawnError });
    };
    child.once('error', (error) => {
      spawnError = error;
      // No 'close' follows a failed spawn.
      if (child.pid === undefined) done(null, null);
    });
    child.once('close', done);
  });
  return { child, pid: child.pid, pipe, script, ended, stderrTail: stderr.tail };
}

/** Reads a child's stderr: copies the first bytes to ours (diagnostics), keeps the tail, drops the rest. */
function readStderr(child: ChildProcess): { tail(): string } {
  let forwarded = 0;
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    if (forwarded < STDERR_FORWARD_BYTES) {
      const part = text.slice(0, STDERR_FORWARD_BYTES - forwarded);
      forwarded += part.length;
      process.stderr.write(part);
      if (forwarded >= STDERR_FORWARD_BYTES) process.stderr.write('\n[cell process stderr: the rest is dropped]\n');
    }
    tail = (tail + text).slice(-STDERR_TAIL_CHARS);
  });
  return { tail: () => tail };
}

/**
 * Makes the kernel's out-of-memory killer pick the cell process before anything else of the
 * container (the server above all): a cell that fills the container's memory costs its state, not
 * the sandbox. Raising a process's own score needs no privilege; a cell cannot lower it again (its
 * process may not write to /proc). Best effort: without /proc the kernel's own choice stands,
 * which is the largest process, usually the cell's anyway.
 */
function preferForOutOfMemoryKill(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/oom_score_adj`, '1000');
  } catch {
    // Not Linux, or /proc is not ours to write.
  }
}

/** The memory limit of this container's cgroup in MiB (cgroup v2, then v1), or undefined when there is none or it cannot be read. */
export function sandboxMemoryLimitMb(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const bytes = Number(readFileSync(file, 'utf8').trim());
      // v1 reports "no limit" as a number near 2^63.
      if (Number.isSafeInteger(bytes) && bytes > 0 && bytes < 2 ** 50) return Math.round(bytes / (1024 * 1024));
    } catch {
      // No such controller here.
    }
  }
  return undefined;
}

/** `path` with its symlinks resolved, or as it is when it does not exist (the start then reports it). */
function realPathOr(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
