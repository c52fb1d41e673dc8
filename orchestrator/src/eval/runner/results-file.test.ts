import { appendFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ResultLine } from '../eval-types.js';
import { RESULTS_FILE, openResultsWriter, readResults } from './results-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-results-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function line(taskId: string, overrides: Partial<ResultLine> = {}): ResultLine {
  return {
    task_id: taskId,
    method: 'rlm',
    epoch: 1,
    answer: `answer ${taskId}`,
    expected: ['x'],
    score: 1,
    scorer: 'em',
    error: null,
    error_kind: null,
    cost_usd: 0.01,
    input_tokens: 10,
    output_tokens: 2,
    duration_ms: 5,
    iterations: 1,
    trajectory_file: null,
    attempts: 1,
    context_chars: 0,
    finished_at: '2026-12-03T09:00:00.000Z',
    ...overrides,
  };
}

describe('results.jsonl', () => {
  it('reads as empty when the directory has none', async () => {
    expect(await readResults(path.join(dir, 'absent'))).toEqual({ lines: [], ignored: 0 });
  });

  it('reads back every appended line, one JSON object per line', async () => {
    const writer = await openResultsWriter(dir);
    await writer.append(line('a'));
    await writer.append(line('b'));
    await writer.close();
    const text = await readFile(path.join(dir, RESULTS_FILE), 'utf8');
    expect(text.split('\n')).toHaveLength(3);
    expect(text.endsWith('\n')).toBe(true);
    expect((await readResults(dir)).lines.map((l) => l.task_id)).toEqual(['a', 'b']);
  });

  it('keeps concurrent appends whole and in call order', async () => {
    const writer = await openResultsWriter(dir);
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.append(line(`t${i}`, { answer: 'x'.repeat(10_000) }))));
    await writer.close();
    const { lines, ignored } = await readResults(dir);
    expect(ignored).toBe(0);
    expect(lines.map((l) => l.task_id)).toEqual(Array.from({ length: 50 }, (_, i) => `t${i}`));
  });

  it('lets a later line for the same (task, method, epoch) win', async () => {
    const writer = await openResultsWriter(dir);
    await writer.append(line('a', { error_kind: 'infra', score: null, error: 'docker went away' }));
    await writer.append(line('b'));
    await writer.append(line('a', { score: 0.5 }));
    await writer.close();
    const { lines } = await readResults(dir);
    expect(lines.map((l) => [l.task_id, l.score])).toEqual([
      ['b', 1],
      ['a', 0.5],
    ]);
  });

  it('ignores a line cut short by a kill, and a resumed writer starts the next line on its own line', async () => {
    const writer = await openResultsWriter(dir);
    await writer.append(line('a'));
    await writer.append(line('b'));
    await writer.close();
    const file = path.join(dir, RESULTS_FILE);
    const full = await readFile(file, 'utf8');
    // What a kill -9 in the middle of writing b's line leaves.
    await truncate(file, Buffer.byteLength(full) - 40);
    expect(await readResults(dir)).toMatchObject({ lines: [{ task_id: 'a' }], ignored: 1 });

    const resumed = await openResultsWriter(dir);
    await resumed.append(line('b'));
    await resumed.close();
    const { lines, ignored } = await readResults(dir);
    expect(lines.map((l) => l.task_id)).toEqual(['a', 'b']);
    expect(ignored).toBe(1);
    // The fragment is a line of its own, and the file ends with a newline.
    const text = await readFile(file, 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(3);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('ignores lines that are not JSON or not result lines, and counts them', async () => {
    const file = path.join(dir, RESULTS_FILE);
    await writeFile(file, `${JSON.stringify(line('a'))}\nnot json\n${JSON.stringify({ ...line('b'), score: 2 })}\n\n{"task_id":"c"}\n`);
    expect(await readResults(dir)).toMatchObject({ lines: [{ task_id: 'a' }], ignored: 3 });
  });

  it('refuses an invalid line without writing it, and appends after close', async () => {
    const writer = await openResultsWriter(dir);
    await expect(writer.append({ ...line('a'), score: 3 })).rejects.toThrow(/not a valid result line/);
    await writer.close();
    await writer.close();
    await expect(writer.append(line('a'))).rejects.toThrow(/closed/);
    expect(await readFile(path.join(dir, RESULTS_FILE), 'utf8')).toBe('');
  });

  it('leaves a file that ends with a newline as it is when reopened', async () => {
    const file = path.join(dir, RESULTS_FILE);
    await appendFile(file, `${JSON.stringify(line('a'))}\n`);
    const writer = await openResultsWriter(dir);
    await writer.append(line('b'));
    await writer.close();
    expect((await readFile(file, 'utf8')).split('\n')).toHaveLength(3);
  });
});
