/**
 * Turns a context value into a file in the sandbox's context directory, which the container sees
 * read-only. Large contexts travel this way, never over the control socket. A file-backed context
 * ({@link ContextFile}) goes there without being held whole in the host's memory: one file is
 * copied by the kernel, a list or map of files is streamed as JSON a chunk at a time.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, open, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ContextFormat, LoadContextParams } from '@rlm/shared';
import { errorCode, errorMessage, InvalidOptionError } from '../errors.js';

/** A plain JSON value: what a context may be, and what tools take and return. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** How a {@link ContextFile} is loaded: `text` binds its content as one string, `json` binds the parsed value. */
export type ContextFileFormat = 'text' | 'json';

/**
 * How much of a file's beginning {@link contextFromFile} reads to describe it, in bytes (64 KiB):
 * a file up to this size is measured exactly, a larger one estimated from it.
 */
export const CONTEXT_FILE_SAMPLE_BYTES = 64 * 1024;

/** Chunk size of the streams that copy files into a JSON context, in bytes. */
const STREAM_CHUNK_BYTES = 64 * 1024;

const CONTEXT_FILE = Symbol.for('rlm.ContextFile');

/**
 * A context that lives in a file on the host: streamed into the sandbox's context mount when it is
 * loaded, never read whole into the host's memory. Made by {@link contextFromFile}; accepted
 * wherever a context is (`RLM.completion({ context })`, `Sandbox.loadContext`), alone or as the
 * entries of a list or a map of path → content.
 *
 * It is described to the model from what {@link contextFromFile} saw: the file's size and its
 * first {@link CONTEXT_FILE_SAMPLE_BYTES} bytes. The content is read again each time it is loaded
 * (into a replacement container too), so the file must stay in place while it is in use.
 */
export class ContextFile {
  /** The marker `ContextFile.isInstance` reads, across duplicated installs of the package; not enumerable, not for use. */
  declare readonly [CONTEXT_FILE]: true;
  /** Absolute path of the file. */
  readonly path: string;
  /** How it loads: `text`, as a string (UTF-8); `json`, as the parsed value (a file that is not JSON fails at loading). */
  readonly format: ContextFileFormat;
  /** The file's size in bytes when it was opened. */
  readonly bytes: number;
  /**
   * Its length in characters (UTF-16 code units, as `String#length` counts them) when known: for a
   * file no larger than {@link CONTEXT_FILE_SAMPLE_BYTES}, read whole. Undefined for larger files.
   */
  readonly chars: number | undefined;
  /**
   * `chars`, or for a larger file an estimate: its size scaled by the characters per byte of its
   * beginning (its size exactly, when that beginning is ASCII; never more than its size).
   */
  readonly estimatedChars: number;
  /** For `json`: what the value is, from its first character; undefined when that does not tell. */
  readonly jsonKind: 'array' | 'object' | 'string' | 'number' | 'boolean' | 'null' | undefined;

  /** @internal Use {@link contextFromFile}. */
  constructor(init: {
    path: string;
    format: ContextFileFormat;
    bytes: number;
    chars: number | undefined;
    estimatedChars: number;
    jsonKind: ContextFile['jsonKind'];
  }) {
    Object.defineProperty(this, CONTEXT_FILE, { value: true });
    this.path = init.path;
    this.format = init.format;
    this.bytes = init.bytes;
    this.chars = init.chars;
    this.estimatedChars = init.estimatedChars;
    this.jsonKind = init.jsonKind;
  }

  /** True for a ContextFile, across duplicated installs of the package (unlike `instanceof`). */
  static isInstance(value: unknown): value is ContextFile {
    return typeof value === 'object' && value !== null && (value as { [CONTEXT_FILE]?: unknown })[CONTEXT_FILE] === true;
  }

  /**
   * What logs and `JSON.stringify` show: the path and size, never the content.
   * @throws {InvalidOptionError} (`context`) while a context is being serialized for the REPL: a
   *   file nested deeper than a list's items or a map's values would otherwise load as this description.
   */
  toJSON(): { contextFile: string; format: ContextFileFormat; bytes: number } {
    if (serializingContext) {
      throw new InvalidOptionError(
        'context',
        `${this.path}: a ContextFile can be the whole context, or an item of a list or a value of a map of path → content that hold only texts`,
      );
    }
    return { contextFile: this.path, format: this.format, bytes: this.bytes };
  }
}

/** Set while {@link contextJson} runs (synchronously), so a nested ContextFile refuses to be serialized. */
let serializingContext = false;

/**
 * A context backed by the file at `file` (relative paths resolve against the working directory):
 * its size is taken and its first {@link CONTEXT_FILE_SAMPLE_BYTES} bytes read now, to describe it;
 * the content is copied into the sandbox when it is loaded. Text is read as UTF-8 (invalid bytes
 * become U+FFFD); `format: 'json'` loads the parsed value instead, and a file that is not valid JSON
 * fails at loading.
 *
 * @throws {InvalidOptionError} (`context`) the file does not exist, cannot be read, or is not a
 *   regular file (a directory, a pipe: copy standard input to a file first).
 */
export async function contextFromFile(file: string, options: { format?: ContextFileFormat } = {}): Promise<ContextFile> {
  const format = options.format ?? 'text';
  if (format !== 'text' && format !== 'json') {
    throw new InvalidOptionError('format', `must be 'text' or 'json', got ${JSON.stringify(format)}`);
  }
  const absolute = path.resolve(file);
  let size: number;
  let sample: Buffer;
  try {
    // stat first: opening a pipe would wait for a writer, and reading it would consume it.
    const info = await stat(absolute);
    if (info.isDirectory()) throw new InvalidOptionError('context', `${file} is a directory; give a file, or a map of its files`);
    if (!info.isFile()) throw new InvalidOptionError('context', `${file} is not a regular file; copy it to a file first`);
    const handle = await open(absolute, 'r');
    try {
      size = (await handle.stat()).size;
      sample = Buffer.alloc(Math.min(size, CONTEXT_FILE_SAMPLE_BYTES));
      const { bytesRead } = await handle.read(sample, 0, sample.length, 0);
      sample = sample.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (InvalidOptionError.isInstance(error)) throw error;
    throw new InvalidOptionError('context', `cannot read ${file}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
  const notText = notTextReason(sample, sample.length >= size);
  if (notText) {
    throw new InvalidOptionError(
      'context',
      `${file} is not UTF-8 text (${notText} in its first ${CONTEXT_FILE_SAMPLE_BYTES / 1024} KiB); a context is text or JSON: convert it first (e.g. pdftotext for a PDF, iconv for another encoding), or leave it out`,
    );
  }
  return new ContextFile({ path: absolute, format, bytes: size, ...measure(sample, size), jsonKind: format === 'json' ? jsonKindOf(sample) : undefined });
}

/**
 * Why the beginning of a file is not UTF-8 text (a NUL byte, or a byte sequence UTF-8 does not
 * allow), or undefined when it is. Binary files would reach the model as U+FFFD noise otherwise.
 * `whole`: the sample is the whole file, so a sequence cut at its end is an error too.
 */
function notTextReason(sample: Buffer, whole: boolean): string | undefined {
  const nul = sample.indexOf(0);
  if (nul !== -1) return `a NUL byte at offset ${nul}`;
  let end = sample.length;
  if (!whole) {
    // The sample may end inside a character: leave out a lead byte and its continuation bytes there.
    for (let back = 1; back <= 3 && end - back >= 0; back++) {
      const byte = sample[end - back] as number;
      if ((byte & 0xc0) === 0x80) continue;
      if (byte >= 0xc0) end -= back;
      break;
    }
  }
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(sample.subarray(0, end));
    return undefined;
  } catch {
    return 'bytes that are not UTF-8';
  }
}

/** The file's characters from its beginning: exact when the sample is the whole file. */
function measure(sample: Buffer, size: number): { chars: number | undefined; estimatedChars: number } {
  if (sample.length >= size) {
    const chars = sample.toString('utf8').length;
    return { chars, estimatedChars: chars };
  }
  // Cut the sample before a character split at its end, so the ratio counts whole characters.
  let end = sample.length;
  for (let back = 1; back <= 3 && end - back >= 0; back++) {
    const byte = sample[end - back] as number;
    if ((byte & 0xc0) === 0x80) continue;
    if (byte >= 0xc0) end -= back;
    break;
  }
  const whole = sample.subarray(0, end);
  const ratio = whole.length === 0 ? 1 : whole.toString('utf8').length / whole.length;
  return { chars: undefined, estimatedChars: Math.min(size, Math.round(size * ratio)) };
}

function jsonKindOf(sample: Buffer): ContextFile['jsonKind'] {
  const first = sample
    .toString('utf8', 0, Math.min(sample.length, 1024))
    .replace(/^\uFEFF/, '')
    .trimStart()[0];
  if (first === '[') return 'array';
  if (first === '{') return 'object';
  if (first === '"') return 'string';
  if (first === 't' || first === 'f') return 'boolean';
  if (first === 'n') return 'null';
  if (first !== undefined && /[-0-9]/.test(first)) return 'number';
  return undefined;
}

/**
 * What a REPL's `context` can be: one text, a list of texts, a map of relative path → content, or
 * any JSON value (a map of path → content *is* a JSON object, and loads as one). A text may be a
 * {@link ContextFile}: the whole context, or an entry of a list or map (as text there).
 */
export type ContextValue = string | ContextFile | readonly (string | ContextFile)[] | Readonly<Record<string, string | ContextFile>> | JsonValue;

/**
 * Writes `value` for `variable` and returns the `load_context` params that bind it. A
 * {@link ContextFile} is copied (by the kernel where it can); a list or map with files in it is
 * streamed as JSON, each file's content escaped a chunk at a time.
 *
 * @throws {InvalidOptionError} (`context`) the value has no JSON form, a file cannot be read, or a
 *   list or map with files in it holds a `json` file or anything but texts.
 */
export async function writeContextFile(
  contextDir: string,
  variable: string,
  value: ContextValue,
  options: { signal?: AbortSignal } = {},
): Promise<LoadContextParams> {
  const signal = options.signal;
  if (ContextFile.isInstance(value)) {
    const file = `${variable}.${value.format === 'text' ? 'txt' : 'json'}`;
    await copyContextFile(value, path.join(contextDir, file), signal);
    return { variable, file, format: value.format };
  }
  const withFiles = containerOfFiles(value);
  if (withFiles) {
    const file = `${variable}.json`;
    try {
      await pipeline(jsonChunks(withFiles), createWriteStream(path.join(contextDir, file), { mode: 0o644 }), signal ? { signal } : {});
    } catch (error) {
      if (InvalidOptionError.isInstance(error) || signal?.aborted) throw error;
      throw new InvalidOptionError('context', `cannot stream a file of the context into the sandbox: ${errorMessage(error)}`, { cause: error });
    }
    return { variable, file, format: 'json' };
  }
  const format: ContextFormat = typeof value === 'string' ? 'text' : 'json';
  const file = `${variable}.${format === 'text' ? 'txt' : 'json'}`;
  const data = typeof value === 'string' ? value : contextJson(value);
  await writeFile(path.join(contextDir, file), data, { mode: 0o644, ...(signal ? { signal } : {}) });
  return { variable, file, format };
}

/**
 * `value` as JSON text. A {@link ContextFile} in it is refused rather than serialized as its
 * description (a list or map of texts with files in it is streamed instead, by {@link writeContextFile}).
 *
 * @throws {InvalidOptionError} (`context`) as {@link writeContextFile} says.
 */
export function contextJson(value: unknown): string {
  let data: string | undefined;
  serializingContext = true;
  try {
    data = JSON.stringify(value);
  } catch (error) {
    if (InvalidOptionError.isInstance(error)) throw error;
    throw new InvalidOptionError(
      'context',
      `cannot be serialized as JSON (${errorMessage(error)}); pass a string, a list of strings, an object of path → content, or a JSON value`,
      { cause: error },
    );
  } finally {
    serializingContext = false;
  }
  if (data === undefined) {
    throw new InvalidOptionError(
      'context',
      `a ${typeof value} has no JSON form; pass a string, a list of strings, an object of path → content, or a JSON value`,
    );
  }
  return data;
}

async function copyContextFile(source: ContextFile, target: string, signal: AbortSignal | undefined): Promise<void> {
  signal?.throwIfAborted();
  try {
    await copyFile(source.path, target);
    // The copy keeps the source's mode; the container's user (another uid) must be able to read it.
    await chmod(target, 0o644);
  } catch (error) {
    throw new InvalidOptionError('context', `cannot copy ${source.path} into the sandbox: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
  signal?.throwIfAborted();
}

type FileContainer = { list: readonly (string | ContextFile)[] } | { map: Readonly<Record<string, unknown>> };

/** The list or plain object `value` is when one of its entries is a ContextFile; undefined otherwise. */
function containerOfFiles(value: unknown): FileContainer | undefined {
  let entries: unknown[];
  let container: FileContainer;
  if (Array.isArray(value)) {
    entries = value;
    container = { list: value as (string | ContextFile)[] };
  } else if (isPlainObject(value)) {
    entries = Object.values(value);
    container = { map: value };
  } else {
    return undefined;
  }
  if (!entries.some((entry) => ContextFile.isInstance(entry))) return undefined;
  for (const entry of entries) {
    if (ContextFile.isInstance(entry) && entry.format !== 'text') {
      throw new InvalidOptionError(
        'context',
        `${entry.path} is a JSON file inside a list or map, where files are text; load it as the whole context, or as text`,
      );
    }
    if (!ContextFile.isInstance(entry) && typeof entry !== 'string') {
      throw new InvalidOptionError('context', 'a list or map with files in it may hold only texts (strings and text files)');
    }
  }
  return container;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** The JSON text of a list or map, each file's content streamed as a JSON string one chunk at a time. */
async function* jsonChunks(container: FileContainer): AsyncGenerator<string> {
  const isList = 'list' in container;
  const entries: Array<[string, unknown]> = isList ? container.list.map((item, i) => [String(i), item]) : Object.entries(container.map);
  yield isList ? '[' : '{';
  for (const [index, [key, entry]] of entries.entries()) {
    if (index > 0) yield ',';
    if (!isList) yield `${JSON.stringify(key)}:`;
    if (!ContextFile.isInstance(entry)) {
      yield JSON.stringify(entry);
      continue;
    }
    yield '"';
    // Decoded as UTF-8 by the stream, which never splits a character between two chunks, so each
    // chunk escapes on its own.
    for await (const chunk of createReadStream(entry.path, { encoding: 'utf8', highWaterMark: STREAM_CHUNK_BYTES })) {
      yield JSON.stringify(chunk).slice(1, -1);
    }
    yield '"';
  }
  yield isList ? ']' : '}';
}
