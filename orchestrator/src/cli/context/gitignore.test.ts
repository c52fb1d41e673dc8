import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import { loadGitignores, scopeRule } from './gitignore.js';

describe('.gitignore rules', () => {
  it('are scoped to the directory of their file: anchored below it, unanchored at any depth under it', () => {
    expect(scopeRule('*.log', '')).toBe('*.log');
    expect(scopeRule('*.log', 'sub')).toBe('sub/**/*.log');
    expect(scopeRule('build/', 'sub')).toBe('sub/**/build/');
    expect(scopeRule('/top.md', 'sub')).toBe('sub/top.md');
    expect(scopeRule('dir/*.md', 'a/b')).toBe('a/b/dir/*.md');
    expect(scopeRule('!keep.log', 'sub')).toBe('!sub/**/keep.log');
    expect(scopeRule('\\!bang', 'sub')).toBe('sub/**/!bang');
    expect(scopeRule('x', '[v1]*')).toBe('\\[v1\\]\\*/**/x');
    expect(scopeRule('x', '#dir')).toBe('\\#dir/**/x');
    expect([scopeRule('', 'sub'), scopeRule('   ', 'sub'), scopeRule('# note', 'sub')]).toEqual([undefined, undefined, undefined]);
  });

  // The reference is git itself: generated trees of nested .gitignore files, with negations,
  // anchored and directory-only rules, and re-includes that git refuses under an excluded directory.
  // git is a prerequisite of the suite (CI clones the repository with it).
  it('ignore what `git ls-files --others --exclude-standard` leaves out, over generated trees', async () => {
    let seed = 12345;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const rules = ['*.log', '!keep.log', 'build/', '/a', 'b/', 'dir/*.md', '**/c', 'x.md', '!x.md', '/dir/', 'a/**', '!b', '*', '!*.md'];
    const moreRules = ['c/x.md', '!dir/', 'z.*', '!/a', '**/build', 'dir/**/x.md', 'a/b/', 'x.md  ', '!a/', '*/x.md', 'b/**', '!**/c/', 'a/*/'];
    const env = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' };
    for (let round = 0; round < 20; round++) {
      const root = await mkdtemp(path.join(os.tmpdir(), 'rlm-gitignore-'));
      const dirs = [''];
      for (let i = 0; i < 8; i++) {
        const dir = path.posix.join(pick(dirs), pick(['a', 'b', 'c', 'build', 'dir']));
        if (!dirs.includes(dir)) dirs.push(dir);
      }
      for (const dir of dirs) {
        await mkdir(path.join(root, dir), { recursive: true });
        for (let i = 0; i < 3; i++) await writeFile(path.join(root, dir, pick(['x.md', 'y.log', 'z.txt', 'keep.log', 'w.md'])), '');
        if (random() < 0.6) {
          const lines = Array.from({ length: 1 + Math.floor(random() * 4) }, () => pick(random() < 0.5 ? rules : moreRules));
          await writeFile(path.join(root, dir, '.gitignore'), `${lines.join('\n')}\n`);
        }
      }
      execFileSync('git', ['init', '-q', root], { env });
      const byGit = execFileSync('git', ['-C', root, 'ls-files', '--others', '--exclude-standard'], { env, encoding: 'utf8' })
        .split('\n')
        .filter((name) => name !== '' && !name.split('/').some((part) => part.startsWith('.')))
        .sort();
      const ignored = await loadGitignores(root, { dot: false });
      const ours = (await glob('**/*', { cwd: root, followSymbolicLinks: false })).filter((name) => !ignored(name)).sort();
      expect(ours, `the tree in ${root}`).toEqual(byGit);
      await rm(root, { recursive: true, force: true });
    }
  });
});
