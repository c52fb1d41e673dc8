/**
 * A dataset row as a task: its columns mapped to the task fields (`--field query=question`), each
 * field checked with zod, and every problem described with what to change.
 */
import { z } from 'zod';
import { suggestion } from '../../did-you-mean.js';
import { InvalidOptionError } from '../../errors.js';
import type { EvalTask, TaskContext } from '../eval-types.js';
import type { DatasetProblem } from './dataset-error.js';
import { describeValue } from './parse-rows.js';

/** The fields of a task row. Any other column is ignored (map it with `--field metadata.NAME=COLUMN` to keep it). */
export const TASK_FIELDS = ['id', 'query', 'context', 'context_file', 'context_files', 'answer', 'answers', 'choices', 'scorer', 'metadata'] as const;
export type TaskField = (typeof TASK_FIELDS)[number];

/** The prefix of a mapping target that copies a column into the task's metadata: `metadata.difficulty=difficulty`. */
const METADATA_PREFIX = 'metadata.';

/** Task field → source column, checked. */
export type FieldMapping = ReadonlyMap<string, string>;

/**
 * Checks `fields` (target → source column) and returns it as a map. A target is a task field or
 * `metadata.NAME`.
 *
 * @throws {InvalidOptionError} (`--field`) an unknown target (with the nearest field), or an empty name.
 */
export function fieldMapping(fields: Readonly<Record<string, string>> | undefined): FieldMapping {
  const mapping = new Map<string, string>();
  for (const [target, source] of Object.entries(fields ?? {})) {
    const shown = `${target}=${source}`;
    if (target.startsWith(METADATA_PREFIX)) {
      if (target.length === METADATA_PREFIX.length)
        throw new InvalidOptionError('--field', `${shown}: name the metadata key, as in metadata.difficulty=COLUMN`);
    } else if (!(TASK_FIELDS as readonly string[]).includes(target)) {
      throw new InvalidOptionError(
        '--field',
        `${shown}: ${JSON.stringify(target)} is not a task field${suggestion(target, TASK_FIELDS)}; give FIELD=COLUMN with FIELD one of ${TASK_FIELDS.join(', ')}, or metadata.NAME`,
      );
    }
    if (source === '') throw new InvalidOptionError('--field', `${shown}: name the column to read, as in ${target}=COLUMN`);
    mapping.set(target, source);
  }
  return mapping;
}

/** A row checked as a task, before its files are opened and its id is checked against the others'. */
export interface RowTask {
  task: EvalTask;
  /** The files the row names (`context_file` / `context_files`), as written and resolved. */
  files: Array<{ field: 'context_file' | 'context_files'; name: string; absolute: string }>;
}

const Scalar = z.union([z.string(), z.number().finite(), z.boolean()]);
const PlainObject = z.custom<Record<string, unknown>>(isPlainObject);

/** Each field's schema and what the message says it must be. */
const FIELD_SCHEMAS = {
  id: { schema: z.union([z.string().trim().min(1), z.number().finite()]), must: 'a non-empty text or a number' },
  query: { schema: z.string().trim().min(1), must: 'a non-empty text' },
  context: { schema: z.union([z.string(), z.array(z.unknown()), PlainObject]), must: 'a text, an array or an object' },
  context_file: { schema: z.string().trim().min(1), must: 'a path (text), relative to the dataset file' },
  context_files: { schema: z.array(z.string().trim().min(1)).min(1), must: 'a non-empty list of paths (texts), relative to the dataset file' },
  answer: { schema: Scalar, must: 'a text or a number' },
  answers: { schema: z.array(Scalar), must: 'a list of texts or numbers' },
  choices: { schema: z.array(z.union([z.string(), z.number().finite()])).min(1), must: 'a non-empty list of texts' },
  scorer: { schema: z.string().trim().min(1), must: 'a scorer name or a module path' },
  metadata: { schema: PlainObject, must: 'an object' },
} satisfies Record<TaskField, { schema: z.ZodType; must: string }>;

/** Fields that hold a list or an object, which a CSV cell (or a Parquet text column) gives as JSON text. */
const JSON_TEXT_FIELDS: ReadonlySet<TaskField> = new Set(['answers', 'choices', 'context_files', 'metadata']);

/**
 * The task in `value` (row `row`), or the problems that keep it from being one. `resolve` turns a
 * path the row names into an absolute path (relative to the dataset file's directory).
 */
export function taskFromRow(
  value: unknown,
  row: number,
  mapping: FieldMapping,
  resolve: (file: string) => string,
  /** The file's columns, for messages, when the row holds only those a task needs (Parquet). */
  fileColumns?: readonly string[],
): { task?: RowTask; problems: DatasetProblem[] } {
  if (!isPlainObject(value)) {
    return { problems: [{ row, message: `is ${describeValue(value)}, not an object of task fields (query, context, answer…)` }] };
  }
  const problems: DatasetProblem[] = [];
  const columns = fileColumns ?? Object.keys(value);
  /** The field as messages show it: `query`, or `query` (column `question`) when mapped. */
  const shown = (field: string): string => {
    const source = mapping.get(field);
    return source === undefined || source === field ? `\`${field}\`` : `\`${field}\` (column \`${source}\`)`;
  };
  const raw = (field: string): unknown => {
    const found = value[mapping.get(field) ?? field];
    return found === null ? undefined : found;
  };

  const fields: Partial<Record<TaskField, unknown>> = {};
  for (const field of TASK_FIELDS) {
    let found = raw(field);
    if (found === undefined) continue;
    if (JSON_TEXT_FIELDS.has(field) && typeof found === 'string' && /^\s*[[{]/.test(found)) {
      try {
        found = JSON.parse(found);
      } catch {
        problems.push({
          row,
          field,
          message: `${shown(field)} must be ${FIELD_SCHEMAS[field].must}, given as JSON (got ${describeValue(found)}, which is not JSON)`,
        });
        continue;
      }
    }
    const parsed = FIELD_SCHEMAS[field].schema.safeParse(found);
    if (!parsed.success) {
      const item = parsed.error.issues[0]?.path[0];
      const what = typeof item === 'number' && Array.isArray(found) ? `item ${item + 1} of ${shown(field)}` : shown(field);
      const got = typeof item === 'number' && Array.isArray(found) ? found[item] : found;
      problems.push({ row, field, message: `${what} must be ${FIELD_SCHEMAS[field].must} (got ${describeValue(got)})` });
      continue;
    }
    fields[field] = parsed.data;
  }

  if (fields.query === undefined && !problems.some((problem) => problem.field === 'query')) {
    problems.push({ row, field: 'query', message: missingMessage('query', mapping, columns) });
  }
  const contexts = (['context', 'context_file', 'context_files'] as const).filter((field) => fields[field] !== undefined);
  if (contexts.length > 1) {
    problems.push({ row, field: contexts[1], message: `has ${contexts.map(shown).join(' and ')}: give the context one way only` });
  }
  if (fields.answer !== undefined && fields.answers !== undefined) {
    problems.push({ row, field: 'answers', message: `has both ${shown('answer')} and ${shown('answers')}: give one answer, or the list of accepted answers` });
  }
  const names = fields.context_files as string[] | undefined;
  const repeated = names?.find((name, index) => names.indexOf(name) !== index);
  if (repeated !== undefined) problems.push({ row, field: 'context_files', message: `${shown('context_files')} names ${repeated} twice` });

  const metadata: Record<string, unknown> = { ...((fields.metadata as Record<string, unknown> | undefined) ?? {}) };
  for (const [target, source] of mapping) {
    // A row without the column leaves the key out (columnsInNoRow catches a misspelt column).
    if (target.startsWith(METADATA_PREFIX) && value[source] !== undefined && value[source] !== null)
      metadata[target.slice(METADATA_PREFIX.length)] = value[source];
  }
  if (problems.length > 0) return { problems };

  const files: RowTask['files'] = [];
  let context: EvalTask['context'];
  if (fields.context !== undefined) {
    context = { kind: 'inline', value: fields.context as TaskContext };
  } else if (fields.context_file !== undefined || names !== undefined) {
    const field = fields.context_file !== undefined ? 'context_file' : 'context_files';
    const written = fields.context_file !== undefined ? [fields.context_file as string] : (names as string[]);
    for (const name of written) files.push({ field, name, absolute: resolve(name) });
    context = { kind: 'files', paths: files.map((file) => file.absolute), names: written };
  }
  const answers = fields.answers !== undefined ? (fields.answers as unknown[]) : fields.answer !== undefined ? [fields.answer] : [];
  const task: EvalTask = {
    id: fields.id === undefined ? String(row) : String(fields.id).trim(),
    query: fields.query as string,
    expected: answers.map((answer) => String(answer)),
    metadata,
    row,
  };
  if (context !== undefined) task.context = context;
  if (fields.choices !== undefined) task.choices = (fields.choices as unknown[]).map((choice) => String(choice));
  if (fields.scorer !== undefined) task.scorer = (fields.scorer as string).trim();
  return { task: { task, files }, problems: [] };
}

/**
 * Problems for the columns named by `--field` that no row has: most likely misspelt, and otherwise
 * every task would silently lack that field. `columns` is every column some row has.
 */
export function columnsInNoRow(mapping: FieldMapping, columns: ReadonlySet<string>): DatasetProblem[] {
  const all = [...columns];
  const problems: DatasetProblem[] = [];
  for (const [target, source] of mapping) {
    if (columns.has(source)) continue;
    problems.push({
      field: target,
      message: `no row has the column \`${source}\` that --field ${target}=${source} maps${columnsHint(source, all, 'the columns')}`,
    });
  }
  return problems;
}

function missingMessage(field: TaskField, mapping: FieldMapping, columns: readonly string[]): string {
  const source = mapping.get(field);
  if (source !== undefined && source !== field) {
    return `\`${field}\` is missing: the row has no column \`${source}\` (mapped with --field ${field}=${source})${columnsHint(source, columns)}`;
  }
  return `\`${field}\` is missing (map another column with --field ${field}=COLUMN${columns.length > 0 ? `; the row's columns: ${listColumns(columns)}` : ''})`;
}

function columnsHint(source: string, columns: readonly string[], which = "the row's columns"): string {
  return columns.length === 0 ? '' : `${suggestion(source, columns)}; ${which}: ${listColumns(columns)}`;
}

function listColumns(columns: readonly string[]): string {
  const shown = columns.slice(0, 12).join(', ');
  return columns.length > 12 ? `${shown}, … (${columns.length} in all)` : shown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
