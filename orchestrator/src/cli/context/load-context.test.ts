import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ContextFile, type ContextValue, writeContextFile } from '../../sandbox/context-files.js';
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

  /** What the REPL would bind: the loaded value written as the sandbox writes it, and read back. */
  async function contentOf(value: ContextValue): Promise<unknown> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-out-'));
    const params = await writeContextFile(dir, 'context', value);
    const text = await readFile(path.join(dir, params.file), 'utf8');
    return params.format === 'json' ? JSON.parse(text) : text;
  }

  it('gives one source as a text and several as a map, each file backed by the file, not read into memory', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-'));
    await writeFile(path.join(dir, 'a.txt'), 'A');
    await mkdir(path.join(dir, 'd'));
    await writeFile(path.join(dir, 'd', 'b.md'), 'B');
    const io = { cwd: dir, stdin: stdin('IN') };
    const one = await loadContext({ files: ['a.txt'], globs: [], stdin: false }, io);
    expect(ContextFile.isInstance(one.value)).toBe(true);
    expect(one.value).toMatchObject({ path: path.join(dir, 'a.txt'), format: 'text', bytes: 1 });
    expect(await contentOf(one.value)).toBe('A');
    const several = await loadContext({ files: ['a.txt', '-'], globs: [], stdin: false, literal: 'L' }, { cwd: dir, stdin: stdin('IN') });
    expect(await contentOf(several.value)).toEqual({ 'a.txt': 'A', '<stdin>': 'IN', '<context>': 'L' });
    await several.dispose();
    expect(await contentOf((await loadContext({ files: [], dir: 'd', globs: [], stdin: false }, io)).value)).toEqual({ 'b.md': 'B' });
    expect(await contentOf((await loadContext({ files: ['a.txt'], dir: 'd', globs: ['*.md'], stdin: false }, io)).value)).toEqual({
      'a.txt': 'A',
      'd/b.md': 'B',
    });
  });

  it('streams standard input to a temporary file of its own, removed by dispose', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-'));
    const loaded = await loadContext({ files: [], globs: [], stdin: true }, { cwd: dir, stdin: Readable.from(['from ', 'a pipe']) });
    if (!ContextFile.isInstance(loaded.value)) throw new Error('standard input should be file-backed');
    const file = loaded.value.path;
    expect(file.startsWith(os.tmpdir())).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await contentOf(loaded.value)).toBe('from a pipe');
    await loaded.dispose();
    await loaded.dispose();
    expect(existsSync(path.dirname(file))).toBe(false);
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

  it("removes standard input's copy when a later source fails", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-'));
    const before = new Set((await readdir(os.tmpdir())).filter((name) => name.startsWith('rlm-stdin-')));
    await expect(loadContext({ files: [], dir: 'missing', globs: [], stdin: true }, { cwd: dir, stdin: stdin('IN') })).rejects.toThrow(/--context-dir/);
    const left = (await readdir(os.tmpdir())).filter((name) => name.startsWith('rlm-stdin-') && !before.has(name));
    expect(left).toEqual([]);
  });
});
