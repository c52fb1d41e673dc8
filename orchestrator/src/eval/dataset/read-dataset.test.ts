import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../errors.js';
import type { EvalTask } from '../eval-types.js';
import { DatasetError } from './dataset-error.js';
import { readDataset } from './read-dataset.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-dataset-'));
});

async function write(name: string, content: string | Uint8Array | ArrayBuffer): Promise<string> {
  const file = path.join(dir, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content instanceof ArrayBuffer ? new Uint8Array(content) : content);
  return file;
}

const jsonl = (rows: unknown[]) => `${rows.map((row) => JSON.stringify(row)).join('\n')}\n`;

/** The DatasetError `promise` rejects with. */
async function datasetError(promise: Promise<unknown>): Promise<DatasetError> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  if (!DatasetError.isInstance(error)) throw new Error(`expected a DatasetError, got ${String(error)}`);
  return error;
}

/** The same three tasks, as every format gives them. */
const EXPECTED: Array<Partial<EvalTask>> = [
  { id: 'q1', query: 'What is 2+2?', expected: ['4'], context: { kind: 'inline', value: 'two and two' }, row: 1 },
  { id: '2', query: 'Name a colour', expected: ['red', 'blue'], choices: ['red', 'blue', 'green'], row: 2 },
  { id: 'q3', query: 'Which one?', expected: ['B'], scorer: 'choice', metadata: { level: 'hard' }, row: 3 },
];

describe('readDataset', () => {
  it('reads the same tasks from .jsonl, .json, .csv and .parquet, with the SHA-256 of the file bytes', async () => {
    const rows = [
      { id: 'q1', query: 'What is 2+2?', context: 'two and two', answer: 4 },
      { query: 'Name a colour', answers: ['red', 'blue'], choices: ['red', 'blue', 'green'], ignored: 'x' },
      { id: 'q3', query: 'Which one?', answer: 'B', scorer: 'choice', metadata: { level: 'hard' } },
    ];
    const csv = [
      'id,query,context,answer,answers,choices,scorer,metadata',
      'q1,What is 2+2?,two and two,4,,,,',
      ',Name a colour,,,"[""red"",""blue""]","[""red"",""blue"",""green""]",,',
      'q3,Which one?,,B,,,choice,"{""level"":""hard""}"',
    ].join('\r\n');
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: ['q1', null, 'q3'], type: 'STRING' },
        { name: 'query', data: rows.map((row) => row.query), type: 'STRING' },
        { name: 'context', data: ['two and two', null, null], type: 'STRING' },
        { name: 'answer', data: [4n, null, 'B'].map((v) => (v === null ? null : String(v))), type: 'STRING' },
        { name: 'answers', data: [null, ['red', 'blue'], null], type: 'JSON' },
        { name: 'choices', data: [null, ['red', 'blue', 'green'], null], type: 'JSON' },
        { name: 'scorer', data: [null, null, 'choice'], type: 'STRING' },
        { name: 'metadata', data: [null, null, { level: 'hard' }], type: 'JSON' },
      ],
    });
    const files = [
      await write('set.jsonl', jsonl(rows)),
      await write('set.json', JSON.stringify(rows, null, 2)),
      await write('set.csv', `\uFEFF${csv}`),
      await write('set.parquet', parquet),
    ];
    for (const file of files) {
      const dataset = await readDataset(file);
      expect(dataset.path).toBe(file);
      expect(dataset.sha256).toBe(
        createHash('sha256')
          .update(await readFile(file))
          .digest('hex'),
      );
      expect(dataset.tasks, file).toHaveLength(3);
      for (const [index, expected] of EXPECTED.entries()) expect(dataset.tasks[index], `${file} task ${index + 1}`).toMatchObject(expected);
      expect(dataset.tasks[0]?.metadata).toEqual({});
      expect(dataset.tasks[1]?.context).toBeUndefined();
    }
  });

  it('numbers JSONL rows by line (blank lines skipped) and turns Parquet integers, dates and lists into plain values', async () => {
    const file = await write('gaps.jsonl', `\uFEFF${JSON.stringify({ query: 'a' })}\n\n   \n${JSON.stringify({ query: 'b' })}`);
    expect((await readDataset(file)).tasks.map((task) => [task.id, task.row])).toEqual([
      ['1', 1],
      ['4', 4],
    ]);
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: 'qid', data: [7n, 2n ** 60n], type: 'INT64' },
        { name: 'question', data: ['a?', 'b?'], type: 'STRING' },
        { name: 'gold', data: [12n, 13n], type: 'INT64' },
        { name: 'asked', data: [new Date(Date.UTC(2024, 0, 2)), new Date(Date.UTC(2024, 0, 3))], type: 'TIMESTAMP' },
      ],
    });
    const dataset = await readDataset(await write('typed.parquet', parquet), {
      fields: { id: 'qid', query: 'question', answer: 'gold', 'metadata.asked': 'asked' },
    });
    expect(dataset.tasks.map((task) => [task.id, task.expected, task.metadata])).toEqual([
      ['7', ['12'], { asked: '2024-01-02T00:00:00.000Z' }],
      [String(2n ** 60n), ['13'], { asked: '2024-01-03T00:00:00.000Z' }],
    ]);
    // Only the columns a task needs are decoded, but a message lists all of the file's.
    const unmapped = await datasetError(readDataset(await write('typed2.parquet', parquet), { name: 'typed.parquet' }));
    expect(unmapped.problems[0]?.message).toBe(
      "`query` is missing (map another column with --field query=COLUMN; the row's columns: qid, question, gold, asked)",
    );
  });

  it('maps other column names to task fields (--field), metadata.NAME included, and hides the unmapped column of that name', async () => {
    const file = await write(
      'mapped.jsonl',
      jsonl([
        { question: 'Q1', query: 'not this', gold: 'A', level: 'easy', metadata: { source: 'x' } },
        { question: 'Q2', gold: 'B' },
      ]),
    );
    const dataset = await readDataset(file, { fields: { query: 'question', answer: 'gold', 'metadata.level': 'level' } });
    expect(dataset.tasks.map((task) => [task.query, task.expected, task.metadata])).toEqual([
      ['Q1', ['A'], { source: 'x', level: 'easy' }],
      ['Q2', ['B'], {}],
    ]);
  });

  it('checks every row before failing and names the file, each row and field, and what to fix', async () => {
    const rows: unknown[] = Array.from({ length: 12 }, (_, i) => ({ id: `t${i + 1}`, query: `q${i + 1}`, answer: 'a' }));
    rows[6] = { id: 't7', question: 'where is it?', answer: 'a' };
    rows[8] = { id: 't9', query: '   ', answer: 'a' };
    rows[9] = { id: 't10', query: 'q', answers: 'a' };
    rows[10] = ['not', 'an', 'object'];
    rows[11] = { id: 't12', query: 'q', context: 'c', context_file: 'c.txt', answer: 'a', answers: ['a'] };
    const file = await write('niah.jsonl', `${jsonl(rows)}{"query": \n`);
    const error = await datasetError(readDataset(file, { name: 'niah.jsonl' }));
    expect(error.kind).toBe('dataset');
    expect(error.file).toBe('niah.jsonl');
    expect([error.row, error.field]).toEqual([7, 'query']);
    expect(error.problems.map((problem) => [problem.row, problem.field])).toEqual([
      [7, 'query'],
      [9, 'query'],
      [10, 'answers'],
      [11, undefined],
      [12, 'context_file'],
      [12, 'answers'],
      [13, undefined],
    ]);
    expect(error.message).toBe(
      [
        'niah.jsonl: 7 problems',
        "  row 7: `query` is missing (map another column with --field query=COLUMN; the row's columns: id, question, answer)",
        '  row 9: `query` must be a non-empty text (got the text "   ")',
        '  row 10: `answers` must be a list of texts or numbers (got the text "a")',
        '  row 11: is an array, not an object of task fields (query, context, answer…)',
        '  row 12: has `context` and `context_file`: give the context one way only',
        '  … and 2 more',
      ].join('\n'),
    );
    expect(error.problems[6]?.message).toMatch(/^is not valid JSON \(.+\); a \.jsonl dataset holds one JSON object per line$/);

    const one = await datasetError(readDataset(await write('one.jsonl', jsonl([{ query: 'a' }, { prompt: 'b' }])), { name: 'one.jsonl' }));
    expect(one.message).toBe("one.jsonl row 2: `query` is missing (map another column with --field query=COLUMN; the row's columns: prompt)");
  });

  it('says which mapped column a row lacks, and refuses a --field column no row has (with the nearest name)', async () => {
    const file = await write('m.jsonl', jsonl([{ question: 'a', gold: 'x' }, { prompt: 'b' }]));
    const lacking = await datasetError(readDataset(file, { fields: { query: 'question' }, name: 'm.jsonl' }));
    expect(lacking.message).toBe(
      "m.jsonl row 2: `query` is missing: the row has no column `question` (mapped with --field query=question); the row's columns: prompt",
    );
    const misspelt = await datasetError(readDataset(file, { fields: { query: 'question', answer: 'golds' }, name: 'm.jsonl' }));
    expect(misspelt.message).toBe(
      'm.jsonl: no row has the column `golds` that --field answer=golds maps (did you mean "gold"?); the columns: question, gold, prompt',
    );
    expect(misspelt.field).toBe('answer');
    await expect(readDataset(file, { fields: { qeury: 'question' } })).rejects.toThrow(InvalidOptionError);
    await expect(readDataset(file, { fields: { qeury: 'question' } })).rejects.toThrow(
      '--field: qeury=question: "qeury" is not a task field (did you mean "query"?)',
    );
    await expect(readDataset(file, { fields: { query: '' } })).rejects.toThrow('--field: query=: name the column to read');
  });

  it('refuses duplicate ids, naming both rows, a row number taken as an id included', async () => {
    const file = await write(
      'dup.jsonl',
      jsonl([{ id: 'a', query: 'q' }, { id: 'b', query: 'q' }, { id: 'a', query: 'q' }, { id: 5, query: 'q' }, { query: 'q' }]),
    );
    const error = await datasetError(readDataset(file, { name: 'dup.jsonl' }));
    expect(error.problems.map((problem) => problem.message)).toEqual([
      'id "a" is also the id of row 1: give each task an id of its own',
      'id "5" is also the id of row 4 (row 5 has no id, so its row number is its id): give each task an id of its own',
    ]);
    expect(error.problems.map((problem) => problem.row)).toEqual([3, 5]);
  });

  it('resolves context files against the dataset file, keeps their names, and names a row whose file does not exist', async () => {
    await write('data/docs/a.txt', 'alpha');
    await write('data/docs/b.md', 'beta');
    await write('shared/c.txt', 'gamma');
    const file = await write(
      'data/set.jsonl',
      jsonl([
        { query: 'one', context_file: 'docs/a.txt' },
        { query: 'two', context_files: ['docs/a.txt', 'docs/b.md', '../shared/c.txt'] },
        { query: 'csv-like', context_files: '["docs/b.md"]' },
      ]),
    );
    const { tasks } = await readDataset(file);
    expect(tasks[0]?.context).toEqual({ kind: 'files', paths: [path.join(dir, 'data/docs/a.txt')], names: ['docs/a.txt'] });
    expect(tasks[1]?.context).toEqual({
      kind: 'files',
      paths: [path.join(dir, 'data/docs/a.txt'), path.join(dir, 'data/docs/b.md'), path.join(dir, 'shared/c.txt')],
      names: ['docs/a.txt', 'docs/b.md', '../shared/c.txt'],
    });
    expect(tasks[2]?.context).toMatchObject({ names: ['docs/b.md'] });

    await write('data/bin.dat', Buffer.from([0x41, 0x00, 0x42]));
    const broken = await write(
      'data/broken.jsonl',
      jsonl([
        { query: 'ok', context_file: 'docs/a.txt' },
        { query: 'gone', context_file: 'docs/missing.txt' },
        { query: 'dir', context_files: ['docs', 'docs/a.txt', 'docs/a.txt'] },
        { query: 'binary', context_file: 'bin.dat' },
      ]),
    );
    const error = await datasetError(readDataset(broken, { name: 'broken.jsonl' }));
    expect(error.problems).toEqual([
      {
        row: 2,
        field: 'context_file',
        message: `\`context_file\` docs/missing.txt does not exist (paths are relative to the dataset file's directory, ${path.join(dir, 'data')})`,
      },
      { row: 3, field: 'context_files', message: '`context_files` names docs/a.txt twice' },
      { row: 4, field: 'context_file', message: expect.stringMatching(/^`context_file` bin\.dat .*is not UTF-8 text \(a NUL byte at offset 1/) },
    ]);
    const dirRow = await datasetError(readDataset(await write('data/dir.jsonl', jsonl([{ query: 'dir', context_file: 'docs' }])), { name: 'dir.jsonl' }));
    expect(dirRow.message).toMatch(/^dir\.jsonl row 1: `context_file` docs .*is a directory/);
  });

  it('fails on the file as a whole with what to change: unknown extension, missing file, not JSON, not an array, bad CSV, no rows, not Parquet', async () => {
    const cases: Array<[string, string | Buffer, RegExp]> = [
      ['set.txt', 'x', /^set\.txt: is not a dataset format rlm reads: name it \.jsonl, \.ndjson, \.json, \.csv, \.parquet/],
      ['set.json', '{"query": "a"}', /^set\.json: holds an object, not an array; a \.json dataset is one JSON array of task objects/],
      ['bad.json', '[{"query": ', /^bad\.json: is not valid JSON \(.+\); a \.json dataset is one JSON array/],
      ['bad.csv', 'query,answer\n"a,b\n', /^bad\.csv: is not valid CSV: .*; the first line names the columns/],
      ['ragged.csv', 'query,answer\na,b,c\n', /^ragged\.csv: is not valid CSV: .*line 2/],
      ['empty.jsonl', '\n\n', /^empty\.jsonl: has no tasks$/],
      ['header.csv', 'query,answer\n', /^header\.csv: has no tasks$/],
      ['fake.parquet', 'not parquet at all', /^fake\.parquet: cannot be read as Parquet: /],
    ];
    for (const [name, content, message] of cases) {
      const error = await datasetError(readDataset(await write(name, content), { name }));
      expect(error.message, name).toMatch(message);
      expect(error.row, name).toBeUndefined();
    }
    await expect(readDataset(path.join(dir, 'nope.jsonl'))).rejects.toThrow(`${path.join(dir, 'nope.jsonl')}: cannot be read: no such file`);
    await mkdir(path.join(dir, 'sub.jsonl'));
    await expect(readDataset(path.join(dir, 'sub.jsonl'), { name: 'sub.jsonl' })).rejects.toThrow('sub.jsonl: cannot be read: it is a directory');
  });

  it('stops when its signal is aborted', async () => {
    const file = await write('set.jsonl', jsonl([{ query: 'a' }]));
    await expect(readDataset(file, { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
  });
});
