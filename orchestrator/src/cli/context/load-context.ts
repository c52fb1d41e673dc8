/**
 * The run's context from the command line: files (`--context-file`, repeatable), a directory
 * (`--context-dir` with `--glob`), standard input (`-`) or a literal (`--context`). One source
 * gives a string; several give the REPL contract's map of path → content.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { RlmError } from '../../errors.js';
import type { ContextValue } from '../../sandbox/context-files.js';
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

/**
 * Reads every source.
 *
 * @throws {UsageError} no source is given, or `--glob` without `--context-dir`.
 * @throws {RlmError} a file or the directory cannot be read, or the glob matches nothing (the
 *   message names the path).
 */
export async function loadContext(sources: ContextSources, io: { cwd: string; stdin: NodeJS.ReadableStream }): Promise<ContextValue> {
  if (sources.globs.length > 0 && sources.dir === undefined) throw new UsageError('--glob needs --context-dir');
  const entries: Array<[string, string]> = [];
  let readStdin = sources.stdin;
  for (const file of sources.files) {
    if (file === '-') {
      readStdin = true;
      continue;
    }
    entries.push([file, await readUserFile(path.resolve(io.cwd, file), file)]);
  }
  if (readStdin) entries.push([STDIN_KEY, await readStream(io.stdin)]);
  if (sources.literal !== undefined) entries.push([LITERAL_KEY, sources.literal]);
  if (sources.dir !== undefined) {
    const dirEntries = await readDirectory(path.resolve(io.cwd, sources.dir), sources.dir, sources.globs.length > 0 ? sources.globs : ['**/*']);
    // A directory is always a map, even of one file: its keys are the paths the model sees.
    if (entries.length === 0) return Object.fromEntries(dirEntries);
    entries.push(...dirEntries.map(([key, content]): [string, string] => [path.join(sources.dir ?? '', key), content]));
  }
  if (entries.length === 0) {
    throw new UsageError('no context: give --context-file FILE, --context-dir DIR, --context TEXT, or - to read standard input');
  }
  if (entries.length === 1) return (entries[0] as [string, string])[1];
  return Object.fromEntries(entries);
}

async function readUserFile(absolute: string, shown: string): Promise<string> {
  try {
    const info = await stat(absolute);
    if (info.isDirectory()) throw new RlmError(`--context-file: ${shown} is a directory; use --context-dir ${shown}`);
    return await readFile(absolute, 'utf8');
  } catch (error) {
    if (RlmError.isInstance(error)) throw error;
    throw new RlmError(`--context-file: cannot read ${shown}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

async function readDirectory(absolute: string, shown: string, globs: readonly string[]): Promise<Array<[string, string]>> {
  let names: string[];
  try {
    names = await readdir(absolute, { recursive: true });
  } catch (error) {
    throw new RlmError(`--context-dir: cannot read ${shown}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const matchers = globs.map(globToRegExp);
  const matched: Array<[string, string]> = [];
  for (const name of names.map((n) => n.split(path.sep).join('/')).sort()) {
    if (!matchers.some((m) => m.test(name))) continue;
    const file = path.join(absolute, name);
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) continue;
    matched.push([name, await readUserFile(file, path.join(shown, name))]);
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

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
