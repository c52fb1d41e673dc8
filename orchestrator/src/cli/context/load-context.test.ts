import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ContextFile, type ContextValue, writeContextFile } from '../../sandbox/context-files.js';
import { type ContextSources, loadContext } from './load-context.js';

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

describe('a directory', () => {
  /** Makes a directory holding `files` (relative path → content), parents included. */
  async function tree(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-context-dir-'));
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
      await writeFile(path.join(dir, name), content);
    }
    return dir;
  }

  /** The keys of the loaded map, in its order. */
  async function keys(dir: string, globs: string[] = [], more: Partial<ContextSources> = {}): Promise<string[]> {
    const loaded = await loadContext({ files: [], dir: '.', globs, stdin: false, ...more }, { cwd: dir, stdin: Readable.from([]) });
    return Object.keys(loaded.value as Record<string, unknown>);
  }

  it('matches globs within and across directories, alternatives and classes, in sorted order, but not dotfiles', async () => {
    const dir = await tree(
      Object.fromEntries(
        ['b.md', 'a.md', 'x/y/b.md', 'a.txt', '.hidden.md', 'x/.cfg/c.md', 'src/a.js', 'src/a.ts', 'src/deep/a.js', 'log-7.txt', 'log-x.txt', 'a+b.txt'].map(
          (name) => [name, name],
        ),
      ),
    );
    expect(await keys(dir, ['**/*.md'])).toEqual(['a.md', 'b.md', 'x/y/b.md']);
    expect(await keys(dir, ['src/*.{ts,js}'])).toEqual(['src/a.js', 'src/a.ts']);
    expect(await keys(dir, ['log-[0-9].txt', 'a+b.txt'])).toEqual(['a+b.txt', 'log-7.txt']);
    expect(await keys(dir, ['src'])).toEqual(['src/a.js', 'src/a.ts', 'src/deep/a.js']);
    expect(await keys(dir, ['**/*', '!**/*.{js,ts}', '!x/**'])).toEqual(['a+b.txt', 'a.md', 'a.txt', 'b.md', 'log-7.txt', 'log-x.txt']);
    expect(await keys(dir, ['!**/*.{js,ts,md}'])).toEqual(['a+b.txt', 'a.txt', 'log-7.txt', 'log-x.txt']);
    expect(await keys(dir, ['.*.md', 'x/.cfg/*'])).toEqual(['.hidden.md', 'x/.cfg/c.md']);
  });

  it('leaves out what its .gitignore files ignore, each file ruling its own subtree, deeper files winning', async () => {
    const dir = await tree({
      '.gitignore': '# logs and builds\n*.log\nbuild/\n/top-only.md\n',
      'a.md': '',
      'a.log': '',
      'top-only.md': '',
      'sub/top-only.md': '',
      'build/x.md': '',
      'build/.gitignore': '!x.md\n',
      'sub/.gitignore': '!keep.log\nlocal.md\n/anchored.md\ndir/*.md\n',
      'sub/keep.log': '',
      'sub/other.log': '',
      'sub/local.md': '',
      'sub/deeper/local.md': '',
      'sub/anchored.md': '',
      'sub/deeper/anchored.md': '',
      'sub/dir/x.md': '',
      'sub/deeper/dir/x.md': '',
      'other/local.md': '',
    });
    expect(await keys(dir)).toEqual(['a.md', 'other/local.md', 'sub/deeper/anchored.md', 'sub/deeper/dir/x.md', 'sub/keep.log', 'sub/top-only.md']);
    // `build/` is excluded, so its own .gitignore cannot bring x.md back (as in git).
    await expect(keys(dir, ['build/**'])).rejects.toThrow('1 matching file is ignored by .gitignore');
  });

  it('skips .git and node_modules at any depth', async () => {
    const dir = await tree({
      'a.md': '',
      '.git/HEAD': '',
      '.github/workflow.md': '',
      'node_modules/pkg/readme.md': '',
      'sub/node_modules/pkg/readme.md': '',
      'sub/b.md': '',
    });
    expect(await keys(dir)).toEqual(['a.md', 'sub/b.md']);
    expect(await keys(dir, ['.*/**'])).toEqual(['.github/workflow.md']);
  });

  it('reads ignored files, .git and node_modules with noIgnore', async () => {
    const dir = await tree({ '.gitignore': '*.log\n', 'a.log': '', 'node_modules/pkg/readme.md': '', '.git/HEAD': '' });
    expect(await keys(dir, [], { noIgnore: true })).toEqual(['a.log', 'node_modules/pkg/readme.md']);
    expect(await keys(dir, ['.git/*'], { noIgnore: true })).toEqual(['.git/HEAD']);
  });

  it('says how many matches .gitignore left out, and how to read them', async () => {
    const dir = await tree({ '.gitignore': '*\n', 'data.csv': '', 'more.csv': '' });
    await expect(keys(dir)).rejects.toThrow(/no file in \. matches \*\*\/\* \(2 matching files are ignored by \.gitignore: add --no-ignore to read them\)/);
  });

  it('never reads through a symbolic link, so a link cannot leak a file from outside', async () => {
    const outside = await tree({ 'secret.txt': 'SECRET', 'dir/also-secret.txt': 'SECRET' });
    const dir = await tree({ 'a.md': 'A' });
    await symlink(path.join(outside, 'secret.txt'), path.join(dir, 'secret.md'));
    await symlink(path.join(outside, 'dir'), path.join(dir, 'linked'));
    await symlink(path.join(dir, 'a.md'), path.join(dir, 'inside.md'));
    expect(await keys(dir)).toEqual(['a.md']);
    expect(await keys(dir, ['**/*'], { noIgnore: true })).toEqual(['a.md']);
    await expect(keys(dir, ['secret.md'])).rejects.toThrow(/no file in \. matches secret\.md/);
  });

  it('refuses a glob that leaves the directory, and a --context-dir that is a file', async () => {
    const dir = await tree({ 'a.md': '', 'sub/b.md': '' });
    for (const glob of ['../**', 'sub/../../*', '/etc/*', '!../x']) {
      await expect(keys(path.join(dir, 'sub'), [glob])).rejects.toThrow(`--glob ${glob}: patterns are relative to --context-dir and stay inside it`);
    }
    await expect(loadContext({ files: [], dir: 'a.md', globs: [], stdin: false }, { cwd: dir, stdin: Readable.from([]) })).rejects.toThrow(
      '--context-dir: a.md is not a directory; use --context-file a.md',
    );
  });
});
