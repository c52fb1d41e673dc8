/**
 * The `.gitignore` files of a directory tree as one matcher, the way git reads them: a file's rules
 * apply to its own directory and below, a deeper file's rules win over a shallower one's, and a file
 * whose directory is ignored cannot be re-included. Parsing and matching are the `ignore` package's
 * (checked against `git check-ignore`); this module finds the files and scopes their rules.
 *
 * Files above the tree's root (the rest of a repository) and git's other sources (`.git/info/exclude`,
 * `core.excludesFile`) are not read: the directory a user names is the whole context.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ignore from 'ignore';
import { glob } from 'tinyglobby';

/** What is never read while ignoring is on: git's own store and installed packages, at any depth. */
export const ALWAYS_SKIPPED: readonly string[] = ['**/.git', '**/.git/**', '**/node_modules', '**/node_modules/**'];

/** A `.gitignore` that could not be read: its path relative to the root, and why. */
export class GitignoreReadError extends Error {
  override name = 'GitignoreReadError';
  readonly file: string;
  constructor(file: string, options: { cause: unknown }) {
    super(`cannot read ${file}`, options);
    this.file = file;
  }
}

/**
 * Reads every `.gitignore` under `root` (outside {@link ALWAYS_SKIPPED}, symbolic links not followed)
 * and returns a test of a `/`-separated path relative to `root`: true when git would ignore it.
 * `dot`: look in directories whose names start with a dot too (needed only when the paths tested
 * can be inside one).
 *
 * @throws {GitignoreReadError} a `.gitignore` exists but cannot be read.
 */
export async function loadGitignores(root: string, options: { dot: boolean }): Promise<(relative: string) => boolean> {
  const files = await glob('**/.gitignore', { cwd: root, dot: options.dot, followSymbolicLinks: false, ignore: [...ALWAYS_SKIPPED] });
  if (files.length === 0) return () => false;
  // Shallower files first, so a deeper file's rules come later and win, as in git.
  files.sort((a, b) => a.split('/').length - b.split('/').length || (a < b ? -1 : a > b ? 1 : 0));
  // git matches case-sensitively unless core.ignoreCase, which `git init` sets on case-insensitive file systems.
  const matcher = ignore({ ignorecase: process.platform === 'darwin' || process.platform === 'win32' });
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(path.join(root, file), 'utf8');
    } catch (error) {
      throw new GitignoreReadError(file, { cause: error });
    }
    const base = path.posix.dirname(file);
    for (const line of text.split(/\r?\n/)) {
      const rule = scopeRule(line, base === '.' ? '' : base);
      if (rule !== undefined) matcher.add(rule);
    }
  }
  return (relative) => matcher.ignores(relative);
}

/**
 * A line of the `.gitignore` in directory `base` (relative to the root, `''` for the root itself)
 * rewritten as a rule of the root's, or undefined for a blank line or a comment. A pattern with a
 * slash before its end is anchored to its file's directory; one without matches at any depth below it.
 */
export function scopeRule(line: string, base: string): string | undefined {
  if (line.trim() === '' || line.startsWith('#')) return undefined;
  if (base === '') return line;
  const negated = line.startsWith('!');
  let pattern = negated ? line.slice(1) : line;
  // `\!` and `\#` escape a leading `!` or `#`; past the base's prefix the character is plain.
  if (/^\\[!#]/.test(pattern)) pattern = pattern.slice(1);
  // Trailing spaces (unless escaped) and one trailing slash do not count when looking for a slash.
  const anchored = pattern
    .replace(/(?<!\\) +$/, '')
    .replace(/\/$/, '')
    .includes('/');
  const scoped = anchored ? `${escapeGlob(base)}/${pattern.replace(/^\//, '')}` : `${escapeGlob(base)}/**/${pattern}`;
  return negated ? `!${scoped}` : scoped;
}

/** A directory path as a literal in a gitignore pattern. */
function escapeGlob(literal: string): string {
  return literal.replace(/[\\*?[\]]/g, '\\$&').replace(/^[!#]/, '\\$&');
}
