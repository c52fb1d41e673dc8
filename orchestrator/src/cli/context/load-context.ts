/**
 * The run's context from the command line: files (`--context-file`, repeatable), a directory
 * (`--context-dir` with `--glob`), standard input (`-`) or a literal (`--context`). One source
 * gives a text; several give the REPL contract's map of path → content. Files stay on disk
 * (file-backed contexts, streamed into the sandbox when it loads them); standard input is streamed
 * to a temporary file, removed by {@link LoadedContext.dispose}.
 *
 * A directory is matched with tinyglobby and filtered by its `.gitignore` files (see ./gitignore.ts);
 * symbolic links in it are skipped, so nothing outside it is read.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { glob } from 'tinyglobby';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import { type ContextFile, type ContextValue, contextFromFile } from '../../sandbox/context-files.js';
import { UsageError } from '../cli-io.js';
import { ALWAYS_SKIPPED, GitignoreReadError, loadGitignores } from './gitignore.js';

export interface ContextSources {
  /** Paths as given; `-` is standard input. */
  files: readonly string[];
  dir?: string | undefined;
  /**
   * Patterns relative to `dir`; default `**` + `/*` (every file). Glob syntax as in a shell (`*`, `?`,
   * `**`, `{a,b}`, `[abc]`); wildcards do not match a leading dot; a pattern starting with `!`
   * leaves out what it matches; a directory's name stands for every file in it.
   */
  globs: readonly string[];
  /**
   * Read what the globs match even when git would ignore it. By default files ignored by the
   * `.gitignore` files in `dir` and its subdirectories are left out, and so is everything in `.git`
   * and `node_modules` directories.
   */
  noIgnore?: boolean | undefined;
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
 * @throws {UsageError} no source is given, `--glob` without `--context-dir`, or a glob that leaves the
 *   directory (absolute, or with a `..` segment).
 * @throws {RlmError} a file, the directory or one of its `.gitignore` files cannot be read, the globs
 *   match nothing that is not ignored (the message says how many matches `.gitignore` left out), or standard
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
      // Exclusions alone (`!drafts/**`) mean every file but those.
      const globs = sources.globs.length === 0 ? ['**/*'] : sources.globs.every((g) => g.startsWith('!')) ? ['**/*', ...sources.globs] : sources.globs;
      const dirEntries = await readDirectory(path.resolve(io.cwd, sources.dir), sources.dir, globs, sources.noIgnore === true);
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

async function readDirectory(absolute: string, shown: string, globs: readonly string[], noIgnore: boolean): Promise<Array<[string, ContextFile]>> {
  for (const glob of globs) {
    if (glob.startsWith('/') || /(^|\/)\.\.(\/|$)/.test(glob.replace(/^!/, ''))) {
      throw new UsageError(`--glob ${glob}: patterns are relative to --context-dir and stay inside it (no leading / and no ..)`);
    }
  }
  try {
    const info = await stat(absolute);
    if (!info.isDirectory()) throw new RlmError(`--context-dir: ${shown} is not a directory; use --context-file ${shown}`);
  } catch (error) {
    if (RlmError.isInstance(error)) throw error;
    throw new RlmError(`--context-dir: cannot read ${shown}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
  // Symbolic links are neither followed nor read (git, too, keeps a link and not its target): one
  // could lead out of the directory.
  const options = { cwd: absolute, dot: false, followSymbolicLinks: false, onlyFiles: true } as const;
  let listed: [string[], (name: string) => boolean];
  try {
    listed = await Promise.all([
      glob(globs, noIgnore ? options : { ...options, ignore: [...ALWAYS_SKIPPED] }),
      // Directories starting with a dot are searched for .gitignore files only when a pattern can reach into one.
      noIgnore ? () => false : loadGitignores(absolute, { dot: globs.some((g) => /(^|\/)!?\./.test(g)) }),
    ]);
  } catch (error) {
    if (error instanceof GitignoreReadError) {
      const cause = error.cause;
      throw new RlmError(`--context-dir: cannot read ${path.join(shown, error.file)}: ${errorCode(cause) ?? errorMessage(cause)}; fix it, or add --no-ignore`, {
        cause,
      });
    }
    throw new RlmError(`--context-dir: cannot list ${shown} with --glob ${globs.join(', ')}: ${errorMessage(error)}`, { cause: error });
  }
  const [names, ignored] = listed;
  const kept = names.filter((name) => !ignored(name)).sort();
  if (kept.length === 0) {
    const left =
      names.length > 0 ? ` (${names.length} matching ${names.length === 1 ? 'file is' : 'files are'} ignored by .gitignore: add --no-ignore to read them)` : '';
    throw new RlmError(
      `--context-dir: no file in ${shown} matches ${globs.join(', ')}${left}; check --glob (patterns are relative to the directory, e.g. '**/*.md')`,
    );
  }
  const matched: Array<[string, ContextFile]> = [];
  for (const name of kept) matched.push([name, await openUserFile(path.join(absolute, name), path.join(shown, name))]);
  return matched;
}
