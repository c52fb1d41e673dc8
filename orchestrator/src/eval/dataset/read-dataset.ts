/**
 * Reading an evaluation dataset: a `.jsonl`, `.json` (array), `.csv` or `.parquet` file of tasks,
 * with its columns mapped to the task fields, every row checked and every context file opened
 * before anything runs, so a malformed dataset fails at once with every problem named.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { errorCode, errorMessage, InvalidOptionError } from '../../errors.js';
import { contextFromFile } from '../../sandbox/context-files.js';
import type { EvalTask } from '../eval-types.js';
import { DatasetError, type DatasetProblem } from './dataset-error.js';
import { DATASET_EXTENSIONS, datasetFormat, parseRows } from './parse-rows.js';
import { columnsInNoRow, type FieldMapping, fieldMapping, type RowTask, TASK_FIELDS, taskFromRow } from './task-row.js';

/** A dataset as {@link readDataset} gives it. */
export interface Dataset {
  /** The file's absolute path. */
  path: string;
  /** The SHA-256 of the file's bytes, in hex: what `eval.json` records, so a resume notices a changed dataset. */
  sha256: string;
  /** Every task, in file order. */
  tasks: EvalTask[];
}

export interface ReadDatasetOptions {
  /**
   * Task field → the column that holds it, for datasets whose columns are named otherwise:
   * `{ query: 'question', answer: 'gold' }` (`--field query=question`). A target `metadata.NAME`
   * copies a column into the task's metadata. Unmapped fields are read from the column of their own name.
   */
  fields?: Readonly<Record<string, string>>;
  /** How messages name the file (e.g. as the user typed it, when `file` was made absolute); default `file`. */
  name?: string;
  signal?: AbortSignal;
}

/** How many context files are opened at once while checking a dataset. */
const FILE_CHECKS_AT_ONCE = 16;

/**
 * Reads the tasks of the dataset `file` (relative paths resolve against the working directory).
 *
 * The format comes from the extension: `.jsonl` (or `.ndjson`; one JSON object a line), `.json`
 * (one array of objects), `.csv` (a header line of column names; lists and objects as JSON text)
 * or `.parquet`. A row has `query` (required), `id` (default: its row number), the context as
 * `context` (text, array or object) or `context_file` / `context_files` (paths relative to the
 * dataset file's directory), the answer as `answer` or `answers` (texts or numbers, kept as text),
 * and optionally `choices`, `scorer` and `metadata` (an object). Other columns are ignored.
 *
 * Every row is checked before this returns or throws; each context file must exist and be UTF-8
 * text (it is opened and its beginning read, as `--context-file` does; the content is read when a
 * task runs). Ids must be unique.
 *
 * @throws {InvalidOptionError} (`--field`) `options.fields` names an unknown task field.
 * @throws {DatasetError} the file cannot be read or parsed, has no rows, or has malformed rows
 *   (the message names the file, each row and field, and what to change; the first few of them).
 * @throws the signal's reason (or Node's `AbortError` from reading the file) when `options.signal` is aborted.
 */
export async function readDataset(file: string, options: ReadDatasetOptions = {}): Promise<Dataset> {
  const { signal } = options;
  const mapping = fieldMapping(options.fields);
  const absolute = path.resolve(file);
  const shown = options.name ?? file;
  const format = datasetFormat(absolute);
  if (format === undefined) {
    throw new DatasetError(shown, [{ message: `is not a dataset format rlm reads: name it ${DATASET_EXTENSIONS.join(', ')} (its extension says its format)` }]);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute, signal ? { signal } : {});
  } catch (error) {
    if (signal?.aborted) throw error;
    const code = errorCode(error);
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? errorMessage(error));
    throw new DatasetError(shown, [{ message: `cannot be read: ${why}` }], { cause: error });
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const parsed = await parseRows(format, bytes, (column) => neededColumn(column, mapping));
  signal?.throwIfAborted();
  if (parsed.rows.length === 0 && parsed.problems.length === 0) throw new DatasetError(shown, [{ message: 'has no tasks' }]);

  const columns = new Set<string>();
  for (const { value } of parsed.rows)
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) for (const key of Object.keys(value)) columns.add(key);
  const unmapped = parsed.rows.length > 0 ? columnsInNoRow(mapping, columns) : [];
  if (unmapped.length > 0) throw new DatasetError(shown, unmapped);

  const problems: DatasetProblem[] = [...parsed.problems];
  const checked: RowTask[] = [];
  const directory = path.dirname(absolute);
  for (const { row, value } of parsed.rows) {
    const result = taskFromRow(value, row, mapping, (name) => path.resolve(directory, name), parsed.columns);
    problems.push(...result.problems);
    if (result.task) checked.push(result.task);
  }
  problems.push(...duplicateIds(checked.map(({ task }) => task)));
  problems.push(...(await unreadableFiles(checked, directory, signal)));
  if (problems.length > 0) throw new DatasetError(shown, sortedProblems(problems));
  return { path: absolute, sha256, tasks: checked.map(({ task }) => task) };
}

/** Whether a task may need `column`: a mapped column, or a task field's own column that no mapping replaces. */
function neededColumn(column: string, mapping: FieldMapping): boolean {
  for (const source of mapping.values()) if (source === column) return true;
  return (TASK_FIELDS as readonly string[]).includes(column) && !mapping.has(column);
}

/** A problem for each task whose id an earlier task already has. */
function duplicateIds(tasks: readonly EvalTask[]): DatasetProblem[] {
  const first = new Map<string, EvalTask>();
  const problems: DatasetProblem[] = [];
  for (const task of tasks) {
    const earlier = first.get(task.id);
    if (earlier === undefined) {
      first.set(task.id, task);
      continue;
    }
    const numbered = (t: EvalTask) => (String(t.row) === t.id ? ` (row ${t.row} has no id, so its row number is its id)` : '');
    problems.push({
      row: task.row,
      field: 'id',
      message: `id ${JSON.stringify(task.id)} is also the id of row ${earlier.row}${numbered(earlier) || numbered(task)}: give each task an id of its own`,
    });
  }
  return problems;
}

/** Opens every context file (its size and first bytes, as `--context-file` does), a few at a time. */
async function unreadableFiles(checked: readonly RowTask[], directory: string, signal: AbortSignal | undefined): Promise<DatasetProblem[]> {
  const queue = checked.flatMap(({ task, files }) => files.map((file) => ({ row: task.row, ...file })));
  const problems: DatasetProblem[] = [];
  const worker = async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) {
      signal?.throwIfAborted();
      try {
        await contextFromFile(item.absolute);
      } catch (error) {
        const code = errorCode(InvalidOptionError.isInstance(error) ? error.cause : error);
        const why =
          code === 'ENOENT'
            ? `does not exist (paths are relative to the dataset file's directory, ${directory})`
            : errorMessage(error)
                .replace(/^context: /, '')
                .replace(item.absolute, 'it');
        problems.push({ row: item.row, field: item.field, message: `\`${item.field}\` ${item.name} ${why}` });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(FILE_CHECKS_AT_ONCE, queue.length) }, worker));
  return problems;
}

/** The file's own problems first, then by row (stable within a row). */
function sortedProblems(problems: readonly DatasetProblem[]): DatasetProblem[] {
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) => (a.problem.row ?? 0) - (b.problem.row ?? 0) || a.index - b.index)
    .map(({ problem }) => problem);
}
