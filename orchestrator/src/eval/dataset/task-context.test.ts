import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ContextFile, type ContextValue, writeContextFile } from '../../sandbox/context-files.js';
import type { EvalTask } from '../eval-types.js';
import { readDataset } from './read-dataset.js';
import { taskContextChars, taskContextText, taskContextValue } from './task-context.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-task-context-'));
});

/** What a REPL's `context` would be: the value written as a sandbox writes it, and read back. */
async function inRepl(value: ContextValue): Promise<unknown> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'rlm-task-context-out-'));
  const params = await writeContextFile(out, 'context', value);
  const text = await readFile(path.join(out, params.file), 'utf8');
  return params.format === 'json' ? JSON.parse(text) : text;
}

async function tasksOf(rows: unknown[]): Promise<EvalTask[]> {
  const file = path.join(dir, 'set.jsonl');
  await writeFile(file, rows.map((row) => JSON.stringify(row)).join('\n'));
  return (await readDataset(file)).tasks;
}

describe('a task context', () => {
  it('is given to the REPL as the CLI gives --context-file: one file as file-backed text, several as a map keyed by the paths the row wrote', async () => {
    await mkdir(path.join(dir, 'docs'));
    await writeFile(path.join(dir, 'docs', 'a.txt'), 'alpha');
    await writeFile(path.join(dir, 'docs', 'b.json'), '{"b": 1}');
    const [none, inline, list, one, several] = await tasksOf([
      { query: 'q' },
      { query: 'q', context: 'plain text' },
      { query: 'q', context: ['x', 'y'] },
      { query: 'q', context_file: 'docs/a.txt' },
      { query: 'q', context_files: ['docs/a.txt', 'docs/b.json'] },
    ]);
    expect(await taskContextValue(none as EvalTask)).toBeUndefined();
    expect(await taskContextValue(inline as EvalTask)).toBe('plain text');
    expect(await inRepl((await taskContextValue(list as EvalTask)) as ContextValue)).toEqual(['x', 'y']);
    const file = await taskContextValue(one as EvalTask);
    expect(ContextFile.isInstance(file)).toBe(true);
    expect(file).toMatchObject({ path: path.join(dir, 'docs', 'a.txt'), format: 'text', bytes: 5 });
    const map = (await taskContextValue(several as EvalTask)) as Record<string, unknown>;
    expect(Object.keys(map)).toEqual(['docs/a.txt', 'docs/b.json']);
    expect(Object.values(map).every((value) => ContextFile.isInstance(value))).toBe(true);
    expect(await inRepl(map as ContextValue)).toEqual({ 'docs/a.txt': 'alpha', 'docs/b.json': '{"b": 1}' });
  });

  it('is one text for the direct method: a text as it is, list items and map entries separated, other values as JSON, files read whole', async () => {
    await writeFile(path.join(dir, 'a.txt'), 'alpha');
    await writeFile(path.join(dir, 'b.txt'), 'beta');
    const tasks = await tasksOf([
      { query: 'q' },
      { query: 'q', context: 'plain' },
      { query: 'q', context: ['x', 'y'] },
      { query: 'q', context: { 'a.md': 'A', 'b.md': 'B' } },
      { query: 'q', context: { rows: [1, 2] } },
      { query: 'q', context_file: 'a.txt' },
      { query: 'q', context_files: ['a.txt', 'b.txt'] },
    ]);
    const texts = await Promise.all(tasks.map((task) => taskContextText(task)));
    expect(texts).toEqual([
      '',
      'plain',
      'x\n\ny',
      '--- a.md ---\nA\n\n--- b.md ---\nB',
      '{"rows":[1,2]}',
      'alpha',
      '--- a.txt ---\nalpha\n\n--- b.txt ---\nbeta',
    ]);
    expect(await Promise.all(tasks.slice(0, 6).map((task) => taskContextChars(task)))).toEqual(texts.slice(0, 6).map((text) => text.length));
    expect(await taskContextChars(tasks[6] as EvalTask)).toBe('alpha'.length + 'beta'.length);
  });

  it('counts the characters of a large multi-byte file exactly (not the bytes, not an estimate), and remembers them per task', async () => {
    const text = 'é€😀a'.repeat(50_000);
    await writeFile(path.join(dir, 'big.txt'), text);
    const [task] = await tasksOf([{ query: 'q', context_file: 'big.txt' }]);
    expect(await taskContextChars(task as EvalTask)).toBe(text.length);
    await rm(path.join(dir, 'big.txt'));
    expect(await taskContextChars(task as EvalTask)).toBe(text.length);
    await expect(taskContextValue(task as EvalTask)).rejects.toThrow(/ENOENT/);
  });
});
