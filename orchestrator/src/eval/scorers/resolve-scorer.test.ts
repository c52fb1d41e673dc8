import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../errors.js';
import { ScriptedBackend } from '../../models/scripted-backend.js';
import type { EvalTask } from '../eval-types.js';
import { resolveScorer, SCORER_NAMES } from './index.js';
import { ScorerError } from './scorer-error.js';

const task: EvalTask = { id: 'x1', query: 'q', expected: ['Paris'], metadata: {}, row: 1 };
const input = (answer: string | null) => ({ answer, expected: task.expected, task, signal: new AbortController().signal });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rlm-scorer-'));
  await writeFile(
    path.join(dir, 'length.mjs'),
    'export function score({ answer, expected }) { return answer === null ? 0 : { score: answer.length === expected[0].length ? 1 : 0.25, note: "length " + answer.length }; }\n',
  );
  await writeFile(path.join(dir, 'async.mjs'), 'export async function score({ task }) { return task.id === "x1" ? 1 : 0; }\n');
  await writeFile(path.join(dir, 'bad-range.mjs'), 'export function score() { return 1.5; }\n');
  await writeFile(path.join(dir, 'bad-type.mjs'), 'export function score() { return "yes"; }\n');
  await writeFile(path.join(dir, 'no-score.mjs'), 'export const grade = () => 1;\n');
  await writeFile(path.join(dir, 'broken.mjs'), 'export function score( {\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('resolveScorer', () => {
  it('gives every built-in scorer by its name', async () => {
    const judge = { role: { backend: new ScriptedBackend([]), model: 'm' } };
    for (const name of SCORER_NAMES) expect((await resolveScorer(name, { cwd: dir, judge })).name).toBe(name);
  });

  it('rejects an unknown name with a did-you-mean', async () => {
    await expect(resolveScorer('contain', { cwd: dir })).rejects.toThrow(InvalidOptionError);
    await expect(resolveScorer('contain', { cwd: dir })).rejects.toThrow(/unknown scorer "contain" \(did you mean "contains"\?\)/);
    await expect(resolveScorer('bleu', { cwd: dir })).rejects.toThrow(/unknown scorer "bleu"; use one of exact, em/);
  });

  it('rejects judge without a model, a judge prompt without {answer}, and a negative tolerance', async () => {
    await expect(resolveScorer('judge', { cwd: dir })).rejects.toThrow(/judge needs a model/);
    const role = { backend: new ScriptedBackend([]), model: 'm' };
    await expect(resolveScorer('judge', { cwd: dir, judge: { role, prompt: 'Is {question} right?' } })).rejects.toThrow(
      /--judge-prompt: .*no \{answer\} placeholder/,
    );
    await expect(resolveScorer('numeric', { cwd: dir, tolerance: -1 })).rejects.toThrow(/--tolerance: must be a number of at least 0/);
  });

  it('loads a module relative to cwd or by absolute path and uses its score and note', async () => {
    const relative = await resolveScorer('./length.mjs', { cwd: dir });
    expect(relative.name).toBe('./length.mjs');
    expect(await relative.score(input('Lyons'))).toEqual({ score: 1, note: 'length 5' });
    expect(await relative.score(input('Rome'))).toEqual({ score: 0.25, note: 'length 4' });
    const absolute = await resolveScorer(path.join(dir, 'async.mjs'), { cwd: '/' });
    expect(await absolute.score(input('anything'))).toEqual({ score: 1 });
  });

  it('rejects a module that is missing, does not load or exports no score function', async () => {
    await expect(resolveScorer('./nowhere.mjs', { cwd: dir })).rejects.toThrow(/--scorer: "\.\/nowhere\.mjs" is not a scorer name and no file .* exists/);
    await expect(resolveScorer('./broken.mjs', { cwd: dir })).rejects.toThrow(/failed to load/);
    await expect(resolveScorer('./no-score.mjs', { cwd: dir })).rejects.toThrow(/exports no `score` function/);
    await expect(resolveScorer('./no-score.mjs', { cwd: dir })).rejects.toThrow(InvalidOptionError);
  });

  it('throws a ScorerError when a module returns a score outside [0, 1] or not a score at all', async () => {
    const range = await resolveScorer('./bad-range.mjs', { cwd: dir });
    await expect(range.score(input('a'))).rejects.toThrow(ScorerError);
    await expect(range.score(input('a'))).rejects.toThrow(/score\(\) returned 1\.5 for task x1; it must return a number in \[0, 1\]/);
    const type = await resolveScorer('./bad-type.mjs', { cwd: dir });
    await expect(type.score(input('a'))).rejects.toThrow(/returned "yes"/);
  });
});
