import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { CONTEXT_FILE_SAMPLE_BYTES, ContextFile, contextFromFile, writeContextFile } from './context-files.js';

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'rlm-context-files-'));
}

/** Writes `file` from `parts` through a stream, as a large file would be made. */
async function writeParts(file: string, parts: Iterable<string>): Promise<void> {
  const out = createWriteStream(file);
  for (const part of parts) if (!out.write(part)) await once(out, 'drain');
  out.end();
  await finished(out);
}

/** What the REPL would bind for the written file. */
async function readBack(dir: string, params: { file: string; format: string }): Promise<unknown> {
  const text = await readFile(path.join(dir, params.file), 'utf8');
  return params.format === 'json' ? JSON.parse(text) : text;
}

describe('contextFromFile', () => {
  it('measures a file up to the sample size exactly, in UTF-16 code units', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'small.txt'), 'héllo 👋');
    const file = await contextFromFile(path.join(dir, 'small.txt'));
    expect(file).toMatchObject({ path: path.join(dir, 'small.txt'), format: 'text', bytes: 11, chars: 'héllo 👋'.length, estimatedChars: 'héllo 👋'.length });
    expect(ContextFile.isInstance(file)).toBe(true);
    expect(ContextFile.isInstance({ path: 'x' })).toBe(false);
  });

  it('estimates a larger file from its size and the characters per byte of its beginning', async () => {
    const dir = await tempDir();
    const ascii = path.join(dir, 'ascii.txt');
    await writeFile(ascii, 'a'.repeat(CONTEXT_FILE_SAMPLE_BYTES * 3));
    expect(await contextFromFile(ascii)).toMatchObject({
      bytes: CONTEXT_FILE_SAMPLE_BYTES * 3,
      chars: undefined,
      estimatedChars: CONTEXT_FILE_SAMPLE_BYTES * 3,
    });
    // Two bytes per character (é), the sample cut inside a character at its end.
    const accented = path.join(dir, 'accented.txt');
    await writeFile(accented, `x${'é'.repeat(CONTEXT_FILE_SAMPLE_BYTES * 2)}`);
    const estimated = await contextFromFile(accented);
    expect(estimated.chars).toBeUndefined();
    expect(Math.abs(estimated.estimatedChars - (CONTEXT_FILE_SAMPLE_BYTES * 2 + 1))).toBeLessThanOrEqual(2);
  });

  it('tells what a JSON file holds from its first character', async () => {
    const dir = await tempDir();
    const cases: Array<[string, string | undefined]> = [
      ['\ufeff  [1, 2]', 'array'],
      ['{"a": 1}', 'object'],
      ['"text"', 'string'],
      ['-1.5', 'number'],
      ['true', 'boolean'],
      ['null', 'null'],
      ['', undefined],
    ];
    for (const [i, [text, kind]] of cases.entries()) {
      await writeFile(path.join(dir, `${i}.json`), text);
      expect((await contextFromFile(path.join(dir, `${i}.json`), { format: 'json' })).jsonKind).toBe(kind);
    }
  });

  it('refuses a binary file or one in another encoding, naming the file and how to convert it, instead of sending U+FFFD noise', async () => {
    const dir = await tempDir();
    const png = path.join(dir, 'image.png');
    await writeFile(png, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d]));
    await expect(contextFromFile(png)).rejects.toSatisfy((error) => InvalidOptionError.isInstance(error));
    await expect(contextFromFile(png)).rejects.toThrow(/image\.png is not UTF-8 text \(a NUL byte at offset 8 in its first 64 KiB\).*convert it first/);
    const latin1 = path.join(dir, 'latin1.txt');
    await writeFile(latin1, Buffer.from('caf\xe9 cr\xe8me', 'latin1'));
    await expect(contextFromFile(latin1)).rejects.toThrow(/latin1\.txt is not UTF-8 text \(bytes that are not UTF-8/);
  });

  it('accepts UTF-8 text whose sample ends inside a character', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'wide.txt');
    // 'é' is two bytes: with one ASCII byte first, the sample boundary falls inside a character.
    await writeFile(file, `x${'é'.repeat(CONTEXT_FILE_SAMPLE_BYTES)}`);
    const context = await contextFromFile(file);
    expect(context.bytes).toBe(1 + 2 * CONTEXT_FILE_SAMPLE_BYTES);
  });

  it('refuses what it cannot read, a directory and a pipe, naming the path', async () => {
    const dir = await tempDir();
    await expect(contextFromFile(path.join(dir, 'missing.txt'))).rejects.toThrow(/^context: cannot read .*missing\.txt: ENOENT/);
    await expect(contextFromFile(dir)).rejects.toThrow(/is a directory/);
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    await expect(contextFromFile(fifo)).rejects.toThrow(/is not a regular file; copy it to a file first/);
    await expect(contextFromFile(path.join(dir, 'x'), { format: 'yaml' as 'text' })).rejects.toThrow(InvalidOptionError);
  });
});

describe('writeContextFile', () => {
  it('copies a text file as it is, readable by the container’s user whatever the source’s mode', async () => {
    const dir = await tempDir();
    const out = await tempDir();
    const source = path.join(dir, 'private.txt');
    await writeFile(source, 'secret-free text\n', { mode: 0o600 });
    await chmod(source, 0o600);
    const params = await writeContextFile(out, 'context', await contextFromFile(source));
    expect(params).toEqual({ variable: 'context', file: 'context.txt', format: 'text' });
    expect(await readBack(out, params)).toBe('secret-free text\n');
    expect((await stat(path.join(out, 'context.txt'))).mode & 0o777).toBe(0o644);
  });

  it('copies a JSON file to be parsed by the REPL', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'data.json'), '{"rows": [1, 2, 3]}');
    const params = await writeContextFile(dir, 'data', await contextFromFile(path.join(dir, 'data.json'), { format: 'json' }));
    expect(params).toEqual({ variable: 'data', file: 'data.json', format: 'json' });
    expect(await readBack(dir, params)).toEqual({ rows: [1, 2, 3] });
  });

  it('streams a map of files as JSON, escaping content that crosses chunk boundaries', async () => {
    const dir = await tempDir();
    // Over two 1 MiB chunks of characters that need escaping or take several bytes, so chunks end
    // inside multi-byte characters and next to escapes.
    const tricky = 'quote " backslash \\ newline \n tab \t control \u0001 é € 👋 ';
    const big = path.join(dir, 'big.txt');
    await writeParts(
      big,
      Array.from({ length: 60_000 }, (_, i) => `${i}:${tricky}`),
    );
    await mkdir(path.join(dir, 'sub'));
    await writeFile(path.join(dir, 'sub', 'empty.md'), '');
    const value = {
      'big.txt': await contextFromFile(big),
      'sub/empty.md': await contextFromFile(path.join(dir, 'sub', 'empty.md')),
      '<context>': 'a literal "string"',
    };
    const params = await writeContextFile(dir, 'context', value);
    expect(params).toEqual({ variable: 'context', file: 'context.json', format: 'json' });
    expect(await readBack(dir, params)).toEqual({
      'big.txt': await readFile(big, 'utf8'),
      'sub/empty.md': '',
      '<context>': 'a literal "string"',
    });
  });

  it('streams a list of files and strings as a JSON array', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'one.txt'), 'one');
    const params = await writeContextFile(dir, 'parts', ['zero', await contextFromFile(path.join(dir, 'one.txt')), 'two']);
    expect(await readBack(dir, params)).toEqual(['zero', 'one', 'two']);
  });

  it('refuses files where they cannot load: JSON files in a map, files beside non-texts or nested deeper', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'a.json'), '[]');
    await writeFile(path.join(dir, 'a.txt'), 'A');
    const json = await contextFromFile(path.join(dir, 'a.json'), { format: 'json' });
    const text = await contextFromFile(path.join(dir, 'a.txt'));
    await expect(writeContextFile(dir, 'c', { 'a.json': json })).rejects.toThrow(/JSON file inside a list or map/);
    await expect(writeContextFile(dir, 'c', [text, 1] as never)).rejects.toThrow(/may hold only texts/);
    await expect(writeContextFile(dir, 'c', { deeper: { a: text } } as never)).rejects.toThrow(InvalidOptionError);
    // Outside a load, a ContextFile shows as its path and size.
    expect(JSON.parse(JSON.stringify({ text }))).toEqual({ text: { contextFile: text.path, format: 'text', bytes: 1 } });
  });

  it('writes strings and JSON values as before', async () => {
    const dir = await tempDir();
    expect(await readBack(dir, await writeContextFile(dir, 'context', 'plain'))).toBe('plain');
    expect(await readBack(dir, await writeContextFile(dir, 'context', { 'a.md': 'A' }))).toEqual({ 'a.md': 'A' });
    expect(await readBack(dir, await writeContextFile(dir, 'context', [1, { b: null }]))).toEqual([1, { b: null }]);
    await expect(writeContextFile(dir, 'context', undefined as never)).rejects.toThrow(/^context: /);
  });
});
