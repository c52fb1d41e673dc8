/**
 * `results.jsonl`: one line per finished (task, method, epoch), appended and flushed to disk before
 * `append` resolves, so a crash or a `kill -9` loses at most the line being written. Reading is
 * forgiving: a line cut short by a kill, or one that does not match {@link ResultLineSchema}, is
 * skipped and counted, never fatal; that (task, method, epoch) is then simply run again.
 */
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { RlmError, errorMessage } from '../../errors.js';
import { type ResultLine, ResultLineSchema, resultKey } from '../eval-types.js';

/** The file's name inside an evaluation's directory. */
export const RESULTS_FILE = 'results.jsonl';

/** What {@link readResults} found. */
export interface ReadResults {
  /** One line per (task, method, epoch): the last one written for it wins; in the order their keys were last written. */
  lines: ResultLine[];
  /** Lines skipped: cut short (a kill while writing) or not a valid result line. Empty lines are not counted. */
  ignored: number;
}

/**
 * Reads `dir/results.jsonl`. A missing file (or directory) reads as no results.
 *
 * @throws the file exists but cannot be read (its system error, e.g. EACCES).
 */
export async function readResults(dir: string): Promise<ReadResults> {
  let text: string;
  try {
    text = await readFile(path.join(dir, RESULTS_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], ignored: 0 };
    throw error;
  }
  const byKey = new Map<string, ResultLine>();
  let ignored = 0;
  for (const raw of text.split('\n')) {
    if (raw.trim() === '') continue;
    const line = parseLine(raw);
    if (!line) {
      ignored += 1;
      continue;
    }
    const key = resultKey(line);
    // Deleted first so the map's order is the order keys were last written.
    byKey.delete(key);
    byKey.set(key, line);
  }
  return { lines: [...byKey.values()], ignored };
}

function parseLine(raw: string): ResultLine | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = ResultLineSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** Appends result lines to `results.jsonl`; made by {@link openResultsWriter}. */
export interface ResultsWriter extends AsyncDisposable {
  /** The file's absolute path. */
  readonly path: string;
  /**
   * Writes `line` as one JSON line with a single write and flushes it to disk (`fdatasync`) before
   * resolving. Appends are written in the order they are called, never interleaved. The flush costs
   * about 0.3 ms an append on an ext4 virtual disk (0.45 ms with it against 0.13 ms without).
   *
   * @throws {RlmError} (`results_write`) the writer is closed, `line` does not match
   *   {@link ResultLineSchema} (a bug of the caller), or the write or flush failed (disk full…).
   */
  append(line: ResultLine): Promise<void>;
  /** Waits for pending appends, then closes the file. Never throws; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Opens `dir/results.jsonl` for appending, creating the directory and the file if needed. When the
 * file ends in a line cut short (a kill while it was written), a newline is written first, so the
 * next line starts on its own line and the broken fragment stays one ignored line.
 *
 * One writer per file: two processes appending to the same evaluation at once are not guarded against.
 *
 * @throws the directory or the file cannot be created or opened (its system error).
 */
export async function openResultsWriter(dir: string): Promise<ResultsWriter> {
  await mkdir(dir, { recursive: true });
  const file = path.resolve(dir, RESULTS_FILE);
  const handle = await open(file, 'a+', 0o644);
  try {
    const { size } = await handle.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) {
        await writeAll(handle, Buffer.from('\n'));
        await handle.datasync();
      }
    }
  } catch (error) {
    await handle.close();
    throw error;
  }
  return new FileResultsWriter(file, handle);
}

class FileResultsWriter implements ResultsWriter {
  readonly path: string;
  readonly #handle: FileHandle;
  /** The last append (or the close), so appends run one after another. */
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(file: string, handle: FileHandle) {
    this.path = file;
    this.#handle = handle;
  }

  append(line: ResultLine): Promise<void> {
    if (this.#closed) return Promise.reject(new RlmError(`cannot append to ${this.path}: the results writer is closed`, { kind: 'results_write' }));
    const parsed = ResultLineSchema.safeParse(line);
    if (!parsed.success) {
      return Promise.reject(new RlmError(`not a valid result line (${parsed.error.message}); nothing was written to ${this.path}`, { kind: 'results_write' }));
    }
    const bytes = Buffer.from(`${JSON.stringify(parsed.data)}\n`, 'utf8');
    const write = this.#queue.then(async () => {
      try {
        await writeAll(this.#handle, bytes);
        await this.#handle.datasync();
      } catch (error) {
        throw new RlmError(`could not write a result to ${this.path}: ${errorMessage(error)}`, { kind: 'results_write', cause: error });
      }
    });
    this.#queue = write.catch(() => {});
    return write;
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#queue.then(() => this.#handle.close()).catch(() => {});
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** One `write` for the whole buffer in the usual case; a short write (rare, on a full disk) continues where it stopped. */
async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset);
    if (bytesWritten === 0) throw new Error('the disk accepted no bytes');
    offset += bytesWritten;
  }
}
