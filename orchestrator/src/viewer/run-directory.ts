/**
 * The directory of trajectories the viewer shows, and the only files it will read: `.jsonl` files
 * inside it, named by a relative path without `..`, whose real path (symlinks resolved) is still
 * inside it.
 */
import type { Stats } from 'node:fs';
import { opendir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorCode, errorMessage, RlmError } from '../errors.js';
import { readRunText } from './trajectory-reader.js';
import type { RunSummary, RunView } from './viewed-run.js';

/** Files larger than this are listed but not read (a JSON string of the whole file must fit in memory). */
export const MAX_TRAJECTORY_BYTES = 256 * 1024 * 1024;

/** A run file the viewer refuses or cannot find; `statusCode` is the HTTP status to answer with. */
export class RunFileError extends RlmError {
  static override readonly brand: string = 'rlm.RunFileError';
  override name = 'RunFileError';
  constructor(
    message: string,
    readonly statusCode: 400 | 403 | 404 | 413,
    options?: ErrorOptions,
  ) {
    super(message, { ...options, kind: 'run_file' });
  }
}

export class RunDirectory {
  /** The directory's real path. */
  readonly root: string;
  /** The directory as the user named it, for display. */
  readonly displayPath: string;
  readonly #summaries = new Map<string, { mtimeMs: number; size: number; summary: RunSummary }>();
  /** The subdirectory whose runs are listed ('' for the directory itself); reads still take any path inside. */
  readonly #listed: string;

  private constructor(root: string, displayPath: string, listed: string) {
    this.root = root;
    this.displayPath = displayPath;
    this.#listed = listed;
  }

  /**
   * @param displayPath how to name the directory to the user (default: `directory`).
   * @param options.listed a subdirectory whose runs {@link list} lists instead (an evaluation's
   *   `trajectories`); a missing one lists none.
   * @throws {RlmError} `directory` does not exist or is not a directory (the message names it).
   */
  static async open(directory: string, displayPath = directory, options: { listed?: string } = {}): Promise<RunDirectory> {
    let root: string;
    try {
      root = await realpath(directory);
    } catch (error) {
      throw new RlmError(`cannot open ${displayPath}: ${describeFsError(error)}`, { cause: error });
    }
    if (!(await stat(root)).isDirectory()) throw new RlmError(`${displayPath} is not a directory`);
    return new RunDirectory(root, displayPath, options.listed ?? '');
  }

  /**
   * Every `.jsonl` file directly in the directory, newest first, each summarized (summaries are
   * cached until the file's size or modification time changes). A file that cannot be read is
   * listed with its `error`.
   */
  async list(): Promise<RunSummary[]> {
    const names: string[] = [];
    const prefix = this.#listed === '' ? '' : `${this.#listed}/`;
    let dir: Awaited<ReturnType<typeof opendir>>;
    try {
      dir = await opendir(path.join(this.root, this.#listed));
    } catch (error) {
      if (this.#listed !== '' && errorCode(error) === 'ENOENT') return [];
      throw error;
    }
    for await (const entry of dir) {
      if ((entry.isFile() || entry.isSymbolicLink()) && entry.name.endsWith('.jsonl')) names.push(`${prefix}${entry.name}`);
    }
    const summaries = await Promise.all(names.map((name) => this.#summarize(name)));
    const present = summaries.filter((s): s is RunSummary => s !== null);
    for (const key of this.#summaries.keys()) if (!names.includes(key)) this.#summaries.delete(key);
    return present.sort((a, b) => b.modified.localeCompare(a.modified) || a.file.localeCompare(b.file));
  }

  /**
   * Reads and parses one run.
   *
   * @throws {RunFileError} the name is not allowed (400/403), the file is missing (404) or too large (413).
   */
  async read(file: string): Promise<RunView> {
    const real = await this.resolve(file);
    const info = await stat(real);
    if (info.size > MAX_TRAJECTORY_BYTES) throw tooLarge(file, info.size);
    return readRunText(await readFile(real, 'utf8'));
  }

  /**
   * The real path of `file`, a path relative to the directory.
   *
   * @throws {RunFileError} 400 for an absolute path, a `..` segment or a name not ending in `.jsonl`;
   *   403 for a file whose real path leaves the directory; 404 for a missing file or a non-file.
   */
  async resolve(file: string): Promise<string> {
    if (file === '' || file.includes('\0')) throw new RunFileError('no file named', 400);
    if (path.isAbsolute(file) || /^[\\/]|^[a-zA-Z]:/.test(file)) throw new RunFileError(`${file}: absolute paths are not served`, 400);
    if (file.split(/[\\/]/).includes('..')) throw new RunFileError(`${file}: paths with .. are not served`, 400);
    if (!file.endsWith('.jsonl')) throw new RunFileError(`${file}: only .jsonl files are served`, 400);
    let real: string;
    try {
      real = await realpath(path.join(this.root, file));
    } catch (error) {
      throw new RunFileError(`${file}: no such run in ${this.displayPath}`, 404, { cause: error });
    }
    const inside = this.root.endsWith(path.sep) ? this.root : this.root + path.sep;
    if (!real.startsWith(inside)) throw new RunFileError(`${file}: leads outside ${this.displayPath}`, 403);
    if (!(await stat(real)).isFile()) throw new RunFileError(`${file}: not a file`, 404);
    return real;
  }

  async #summarize(name: string): Promise<RunSummary | null> {
    let real: string;
    let info: Stats;
    try {
      real = await this.resolve(name);
      info = await stat(real);
    } catch {
      return null; // a dangling symlink, one that leads out, or a file deleted meanwhile: not listed
    }
    const cached = this.#summaries.get(name);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached.summary;
    const base: RunSummary = {
      file: name,
      sizeBytes: info.size,
      modified: info.mtime.toISOString(),
      started: null,
      rootModel: null,
      query: null,
      iterations: 0,
      finalAnswer: null,
      costUsd: null,
      totalTokens: 0,
      errorCount: 0,
      problemCount: 0,
      error: null,
    };
    let summary: RunSummary;
    if (info.size > MAX_TRAJECTORY_BYTES) {
      summary = { ...base, error: tooLarge(name, info.size).message };
    } else {
      try {
        summary = { ...base, ...summarizeRun(readRunText(await readFile(real, 'utf8'))) };
      } catch (error) {
        summary = { ...base, error: `cannot read: ${describeFsError(error)}` };
      }
    }
    this.#summaries.set(name, { mtimeMs: info.mtimeMs, size: info.size, summary });
    return summary;
  }
}

/** The run-list fields of a parsed run. */
export function summarizeRun(
  run: RunView,
): Pick<RunSummary, 'started' | 'rootModel' | 'query' | 'iterations' | 'finalAnswer' | 'costUsd' | 'totalTokens' | 'errorCount' | 'problemCount'> {
  let totalTokens = 0;
  for (const usage of Object.values(run.usage)) totalTokens += usage.inputTokens + usage.outputTokens;
  return {
    started: run.metadata?.timestamp ?? run.contexts[0]?.timestamp ?? run.turns[0]?.timestamp ?? null,
    rootModel: run.metadata?.rootModel ?? null,
    query: run.query === null ? null : run.query.slice(0, 300),
    iterations: run.turns.length,
    finalAnswer: run.finalAnswer === null ? null : run.finalAnswer.slice(0, 300),
    costUsd: run.costUsd,
    totalTokens,
    errorCount: run.errorCount,
    problemCount: run.problems.length,
  };
}

function tooLarge(file: string, size: number): RunFileError {
  return new RunFileError(`${file} is ${(size / 1024 / 1024).toFixed(0)} MiB; the viewer reads files up to ${MAX_TRAJECTORY_BYTES / 1024 / 1024} MiB`, 413);
}

function describeFsError(error: unknown): string {
  const code = errorCode(error);
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'not a directory';
  return code ?? errorMessage(error);
}
