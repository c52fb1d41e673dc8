import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { globToRegExp, loadContext } from './load-context.js';

describe('globs', () => {
  it('match within and across directories, alternatives and classes, but not dotfiles', () => {
    const md = globToRegExp('**/*.md');
    expect(['a.md', 'x/y/b.md'].every((p) => md.test(p))).toBe(true);
    expect(['a.txt', '.hidden.md', 'x/.git/c.md'].some((p) => md.test(p))).toBe(false);
    expect(globToRegExp('src/*.{ts,js}').test('src/a.js')).toBe(true);
    expect(globToRegExp('src/*.{ts,js}').test('src/deep/a.js')).toBe(false);
    expect(globToRegExp('log-[0-9].txt').test('log-7.txt')).toBe(true);
    expect(globToRegExp('a+b.txt').test('a+b.txt')).toBe(true);
  });
});

describe('loading the context', () => {
  const stdin = (text: string) => Readable.from([Buffer.from(text)]);

  it('gives one source as a string and several as a map', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-'));
    await writeFile(path.join(dir, 'a.txt'), 'A');
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'd', 'b.md'), 'B');
    const io = { cwd: dir, stdin: stdin('IN') };
    expect(await loadContext({ files: ['a.txt'], globs: [], stdin: false }, io)).toBe('A');
    expect(await loadContext({ files: ['a.txt', '-'], globs: [], stdin: false, literal: 'L' }, { cwd: dir, stdin: stdin('IN') })).toEqual({
      'a.txt': 'A',
      '<stdin>': 'IN',
      '<context>': 'L',
    });
    expect(await loadContext({ files: [], dir: 'd', globs: [], stdin: false }, io)).toEqual({ 'b.md': 'B' });
    expect(await loadContext({ files: ['a.txt'], dir: 'd', globs: ['*.md'], stdin: false }, io)).toEqual({ 'a.txt': 'A', 'd/b.md': 'B' });
  });

  it('says which path it cannot read, and what is missing', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-'));
    const io = { cwd: dir, stdin: stdin('') };
    await expect(loadContext({ files: ['nope.txt'], globs: [], stdin: false }, io)).rejects.toThrow('--context-file: cannot read nope.txt: ENOENT');
    await expect(loadContext({ files: ['.'], globs: [], stdin: false }, io)).rejects.toThrow('--context-file: . is a directory; use --context-dir .');
    await expect(loadContext({ files: [], dir: '.', globs: ['*.md'], stdin: false }, io)).rejects.toThrow(/no file in \. matches \*\.md/);
    await expect(loadContext({ files: [], globs: ['*.md'], stdin: false }, io)).rejects.toThrow('--glob needs --context-dir');
    await expect(loadContext({ files: [], globs: [], stdin: false }, io)).rejects.toThrow(/^no context/);
  });
});
