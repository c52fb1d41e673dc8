/**
 * The run's context from the command line: files (`--context-file`, repeatable), a directory
 * (`--context-dir` with `--glob`), standard input (`-`) or a literal (`--context`). One source
 * gives a text; several give the REPL contract's map of path → content. Files stay on disk
 * (file-backed contexts, streamed into the sandbox when it loads them); standard input is streamed
 * to a temporary file, removed by {@link LoadedContext.dispose}.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import { type ContextFile, type ContextValue, contextFromFile } from '../../sandbox/context-files.js';
import { UsageError } from '../cli-io.js';

export interface ContextSources {
  /** Paths as given; `-` is standard input. */
  files: readonly string[];
  dir?: string | undefined;
  /** Patterns relative to `dir`; default `**` + `/*` (every file, dotfiles excluded). */
  globs: readonly string[];
  literal?: string | undefined;
  /** A bare `-` argument: read standard input. */
  stdin: boolean;
}

/** The key standard input gets in a map. */
export const STDIN_KEY = '<stdin>';
/** The key a `--context` literal gets in a map. */
export const LITERAL_KEY = '<context>';

/** The context of a run, and what to remove once the run is over. */
export interface LoadedContext {
  /** A file-backed text, a string (`--context`), or a map of path → either. */
  readonly value: ContextValue;
  /** Removes the temporary file standard input was streamed to, if any. Never throws; safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * Opens every source: each file is checked and sampled (for the model's description of it), never
 * read whole; standard input is copied to a temporary file. Call `dispose` when the run ends.
 *
 * @throws {UsageError} no source is given, or `--glob` without `--context-dir`.
 * @throws {RlmError} a file or the directory cannot be read, the glob matches nothing, or standard
 *   input cannot be copied (the message names the path); nothing is left behind.
 */
export async function loadContext(sources: ContextSources, io: { cwd: string; stdin: NodeJS.ReadableStream }): Promise<LoadedContext> {
  if (sources.globs.length > 0 && sources.dir === undefined) throw new UsageError('--glob needs --context-dir');
  let stdinDir: string | undefined;
  const dispose = async () => {
    const dir = stdinDir;
    stdinDir = undefined;
    if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  try {
    const entries: Array<[string, string | ContextFile]> = [];
    let readStdin = sources.stdin;
    for (const file of sources.files) {
      if (file === '-') {
        readStdin = true;
        continue;
      }
      entries.push([file, await openUserFile(path.resolve(io.cwd, file), file)]);
    }
    if (readStdin) {
      stdinDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-stdin-'));
      entries.push([STDIN_KEY, await copyStdin(io.stdin, path.join(stdinDir, 'stdin.txt'))]);
    }
    if (sources.literal !== undefined) entries.push([LITERAL_KEY, sources.literal]);
    if (sources.dir !== undefined) {
      const dirEntries = await readDirectory(path.resolve(io.cwd, sources.dir), sources.dir, sources.globs.length > 0 ? sources.globs : ['**/*']);
      // A directory is always a map, even of one file: its keys are the paths the model sees.
      if (entries.length === 0) return { value: Object.fromEntries(dirEntries), dispose };
      entries.push(...dirEntries.map(([key, content]): [string, ContextFile] => [path.join(sources.dir ?? '', key), content]));
    }
    if (entries.length === 0) {
      throw new UsageError('no context: give --context-file FILE, --context-dir DIR, --context TEXT, or - to read standard input');
    }
    const value = entries.length === 1 ? (entries[0] as [string, string | ContextFile])[1] : Object.fromEntries(entries);
    return { value, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

async function openUserFile(absolute: string, shown: string): Promise<ContextFile> {
  try {
    const info = await stat(absolute);
    if (info.isDirectory()) throw new RlmError(`--context-file: ${shown} is a directory; use --context-dir ${shown}`);
    return await contextFromFile(absolute);
  } catch (error) {
    if (RlmError.isInstance(error) && error.message.startsWith('--context-file:')) throw error;
    const cause = RlmError.isInstance(error) && error.cause !== undefined ? error.cause : error;
    throw new RlmError(`--context-file: cannot read ${shown}: ${errorCode(cause) ?? errorMessage(cause)}`, { cause: error });
  }
}

/** Streams standard input to `file` (readable only by this user), a chunk at a time. */
async function copyStdin(stdin: NodeJS.ReadableStream, file: string): Promise<ContextFile> {
  try {
    await pipeline(stdin, createWriteStream(file, { mode: 0o600 }));
    return await contextFromFile(file);
  } catch (error) {
    throw new RlmError(`-: cannot copy standard input to ${file}: ${errorCode(error) ?? errorMessage(error)}; check the space in ${os.tmpdir()} (TMPDIR)`, {
      cause: error,
    });
  }
}

async function readDirectory(absolute: string, shown: string, globs: readonly string[]): Promise<Array<[string, ContextFile]>> {
  let names: string[];
  try {
    names = await readdir(absolute, { recursive: true });
  } catch (error) {
    throw new RlmError(`--context-dir: cannot read ${shown}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
  const matchers = globs.map(globToRegExp);
  const matched: Array<[string, ContextFile]> = [];
  for (const name of names.map((n) => n.split(path.sep).join('/')).sort()) {
    if (!matchers.some((m) => m.test(name))) continue;
    const file = path.join(absolute, name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    matched.push([name, await openUserFile(file, path.join(shown, name))]);
  }
  if (matched.length === 0)
    throw new RlmError(`--context-dir: no file in ${shown} matches ${globs.join(', ')}; check --glob (patterns are relative to the directory, e.g. '**/*.md')`);
  return matched;
}

/**
 * A glob as a regular expression over `/`-separated relative paths: `*` and `?` within a path
 * segment, `**` across segments, `{a,b}` alternatives, `[abc]` classes. As in a shell, wildcards
 * do not match a leading dot.
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  let inGroup = 0;
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i] as string;
    const atSegmentStart = i === 0 || glob[i - 1] === '/';
    if (char === '*') {
      if (glob[i + 1] === '*') {
        // `**/` matches any number of directories, `**` at the end anything.
        const slash = glob[i + 2] === '/';
        source += slash ? '(?:(?!\\.)[^/]*/)*' : '(?:(?!\\.)[^/]*(?:/(?!\\.)[^/]*)*)?';
        i += slash ? 2 : 1;
      } else {
        source += atSegmentStart ? '(?!\\.)[^/]*' : '[^/]*';
      }
    } else if (char === '?') {
      source += atSegmentStart ? '(?!\\.)[^/]' : '[^/]';
    } else if (char === '{') {
      inGroup += 1;
      source += '(?:';
    } else if (char === '}' && inGroup > 0) {
      inGroup -= 1;
      source += ')';
    } else if (char === ',' && inGroup > 0) {
      source += '|';
    } else if (char === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end > i + 1) {
        const body = glob
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\');
        source += `[${body}]`;
        i = end;
      } else {
        source += '\\[';
      }
    } else {
      source += char.replace(/[.+^$()|\\\]]/g, '\\$&');
    }
  }
  return new RegExp(`^${source}$`);
}
