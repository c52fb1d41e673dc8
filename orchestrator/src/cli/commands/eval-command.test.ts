/**
 * `rlm eval`'s usage errors, `generate`, `compare` and `rescore`, through the dispatcher with an
 * in-memory terminal: nothing here starts a sandbox or calls a model (runs are tested end to end
 * in test/cli-eval.test.ts).
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatasetError } from '../../eval/dataset/dataset-error.js';
import type { EvalManifest, EvalSummary, ResultLine } from '../../eval/eval-types.js';
import { type CliIo, exitCodeFor } from '../cli-io.js';
import { runCli } from '../run-cli.js';

async function run(argv: string[], cwd: string) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: { OPENAI_API_KEY: 'sk-test', PATH: process.env.PATH ?? '' },
    signal: new AbortController().signal,
    cwd,
  };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}

const tmp = () => mkdtemp(path.join(os.tmpdir(), 'rlm-eval-command-'));

function line(overrides: Partial<ResultLine>): ResultLine {
  return {
    task_id: '1',
    method: 'rlm',
    epoch: 1,
    answer: 'Paris',
    expected: ['Paris'],
    score: 1,
    scorer: 'em',
    error: null,
    error_kind: null,
    cost_usd: 0.001,
    input_tokens: 10,
    output_tokens: 2,
    duration_ms: 100,
    iterations: 1,
    trajectory_file: null,
    attempts: 1,
    context_chars: 10,
    finished_at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

async function evaluationDir(lines: readonly ResultLine[], dataset?: string): Promise<string> {
  const dir = await tmp();
  const manifest: EvalManifest = {
    version: 1,
    dataset: { path: dataset ?? path.join(dir, 'gone.jsonl'), sha256: 'x', tasks: 3 },
    options: { methods: ['rlm'], scorer: 'em', epochs: 1 },
    task_ids: ['1', '2', '3'],
    created_at: '2026-01-01T00:00:00.000Z',
    rlm_version: '0.1.0',
  };
  await writeFile(path.join(dir, 'eval.json'), JSON.stringify(manifest));
  await writeFile(path.join(dir, 'results.jsonl'), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  return dir;
}

describe('rlm eval', () => {
  it('maps a DatasetError to exit code 2', () => {
    expect(exitCodeFor(new DatasetError('d.jsonl', [{ row: 3, field: 'query', message: '`query` is missing' }]))).toBe(2);
  });

  it('refuses bad usage with exit 2 and one line: no dataset, an unknown method, a bad count, a malformed --field', async () => {
    const cwd = await tmp();
    const cases: Array<[string[], string]> = [
      [['eval'], 'no dataset'],
      [['eval', 'd.jsonl', '--methods', 'rlm,drect'], 'unknown method "drect" (did you mean direct?)'],
      [['eval', 'd.jsonl', '--concurrency', '0'], '--concurrency must be a whole number of at least 1 (got 0)'],
      [['eval', 'd.jsonl', '--budget', '-1'], '--budget must be a number above 0 (got -1)'],
      [['eval', 'd.jsonl', '--field', 'query'], '--field query: write FIELD=COLUMN'],
      [['eval', 'generate', 'nia'], 'unknown dataset "nia" (did you mean niah?)'],
      [['eval', 'compare', 'a'], 'give two evaluation directories, got 1'],
    ];
    for (const [argv, message] of cases) {
      const result = await run(argv, cwd);
      expect({ argv, code: result.code }).toEqual({ argv, code: 2 });
      expect(result.stderr).toContain(message);
      expect(result.stdout).toBe('');
    }
  });

  it('names the row and field of a malformed dataset, exit 2, before any run', async () => {
    const cwd = await tmp();
    await writeFile(path.join(cwd, 'd.jsonl'), `${JSON.stringify({ query: 'q', answer: 'a' })}\n${JSON.stringify({ answer: 'b' })}\n`);
    const result = await run(['eval', 'd.jsonl', '--backend', 'openai', '--out', 'out'], cwd);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/d\.jsonl.*row 2/);
    expect(result.stderr).toContain('query');
  });

  it('generates a dataset deterministically per seed', async () => {
    const cwd = await tmp();
    const a = await run(['eval', 'generate', 'niah', '--n', '3', '--context-chars', '2000', '--seed', '7', '--out', 'a.jsonl'], cwd);
    const b = await run(['eval', 'generate', 'niah', '--n', '3', '--context-chars', '2000', '--seed', '7'], cwd);
    expect(a.code).toBe(0);
    expect(a.stderr).toContain('3 niah tasks');
    expect(b.code).toBe(0);
    expect(await readFile(path.join(cwd, 'a.jsonl'), 'utf8')).toBe(b.stdout);
    expect(b.stdout.trim().split('\n')).toHaveLength(3);
  });

  it('rescores stored answers with another scorer, keeping infrastructure errors, and rewrites the summary and report', async () => {
    const dir = await evaluationDir([
      line({ task_id: '1', answer: 'It is Paris.', score: 0, scorer: 'em' }),
      line({ task_id: '2', answer: 'paris', score: 1 }),
      line({ task_id: '3', answer: null, score: null, error: 'sandbox start failed', error_kind: 'infra' }),
    ]);
    const result = await run(['eval', 'rescore', dir, '--scorer', 'contains', '--json'], dir);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as EvalSummary;
    expect(summary.methods.rlm).toMatchObject({ n: 3, scored: 2, errors: 1, accuracy: 1 });
    const lines = (await readFile(path.join(dir, 'results.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ResultLine);
    expect(lines.map((l) => [l.task_id, l.score, l.scorer, l.error_kind])).toEqual([
      ['1', 1, 'contains', null],
      ['2', 1, 'contains', null],
      ['3', null, 'em', 'infra'],
    ]);
    expect(JSON.parse(await readFile(path.join(dir, 'eval.json'), 'utf8')).options.scorer).toBe('contains');
    expect(await readFile(path.join(dir, 'report.html'), 'utf8')).toContain('<table id="results">');
  });

  it('compares two evaluations over their common tasks', async () => {
    const a = await evaluationDir([line({ task_id: '1', score: 1 }), line({ task_id: '2', score: 1 }), line({ task_id: '3', score: 1 })]);
    const b = await evaluationDir([line({ task_id: '1', score: 0 }), line({ task_id: '2', score: 1 }), line({ task_id: '4', score: 0 })]);
    const json = await run(['eval', 'compare', a, b, '--json'], a);
    expect(json.code).toBe(0);
    const rows = JSON.parse(json.stdout) as Array<{ method: string; tasks: number; difference: number }>;
    expect(rows).toEqual([expect.objectContaining({ method: 'rlm', tasks: 2, accuracyA: 1, accuracyB: 0.5, difference: 0.5 })]);
    const text = await run(['eval', 'compare', a, b], a);
    expect(text.stdout).toContain('+0.500');
    await mkdir(path.join(a, 'empty'));
    const missing = await run(['eval', 'compare', a, path.join(a, 'empty')], a);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no evaluation directory');
  });
});
