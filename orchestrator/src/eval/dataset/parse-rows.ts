/**
 * The four file formats a dataset may be, read into rows of column → value before any task field
 * is looked at. A row that cannot be parsed (a JSONL line that is not JSON) is a problem of its
 * row, and the others are still read, so one error can list them all. CSV and Parquet parsers are
 * imported when a file of theirs is read, so `rlm` does not load them otherwise.
 */
import path from 'node:path';
import { errorMessage } from '../../errors.js';
import type { DatasetProblem } from './dataset-error.js';

/** The formats, by file extension (lower case). `.ndjson` is JSONL under another name. */
export type DatasetFormat = 'jsonl' | 'json' | 'csv' | 'parquet';

/** The file extensions {@link readDataset} reads. */
export const DATASET_EXTENSIONS = ['.jsonl', '.ndjson', '.json', '.csv', '.parquet'] as const;

/** A row as the file holds it: its 1-based number and its value, before mapping and validation. */
export interface RawRow {
  row: number;
  value: unknown;
}

export interface ParsedRows {
  rows: RawRow[];
  problems: DatasetProblem[];
  /** Every column of the file, when the rows hold only some of them (Parquet read by column). */
  columns?: string[];
}

/** The format of `file` from its extension, or undefined when it is none of {@link DATASET_EXTENSIONS}. */
export function datasetFormat(file: string): DatasetFormat | undefined {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return 'jsonl';
  if (extension === '.json') return 'json';
  if (extension === '.csv') return 'csv';
  if (extension === '.parquet') return 'parquet';
  return undefined;
}

/**
 * The rows of a file of `format` whose bytes are `bytes`. `wanted(column)` says which columns a
 * task needs: a Parquet file, being stored by column, reads only those (an OOLONG file's second
 * copy of every context, with labels, is never decoded); the other formats read every column.
 */
export async function parseRows(format: DatasetFormat, bytes: Buffer, wanted: (column: string) => boolean = () => true): Promise<ParsedRows> {
  switch (format) {
    case 'jsonl':
      return parseJsonl(bytes);
    case 'json':
      return parseJson(bytes);
    case 'csv':
      return await parseCsv(bytes);
    case 'parquet':
      return await parseParquet(bytes, wanted);
  }
}

/**
 * One JSON value a line; the row is the line number, so an editor finds it. Blank lines are
 * skipped. Lines are cut from the bytes one at a time, so a file larger than the longest string
 * V8 can hold (about 512 MiB) still reads.
 */
function parseJsonl(bytes: Buffer): ParsedRows {
  const rows: RawRow[] = [];
  const problems: DatasetProblem[] = [];
  let start = 0;
  for (let line = 1; start < bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end === -1) end = bytes.length;
    let text = bytes.toString('utf8', start, end);
    start = end + 1;
    if (line === 1) text = text.replace(/^\uFEFF/, '');
    if (text.trim() === '') continue;
    try {
      rows.push({ row: line, value: JSON.parse(text) });
    } catch (error) {
      problems.push({ row: line, message: `is not valid JSON (${errorMessage(error)}); a .jsonl dataset holds one JSON object per line` });
    }
  }
  return { rows, problems };
}

/** One JSON array of rows; the row is the item's 1-based position. */
function parseJson(bytes: Buffer): ParsedRows {
  const hint = 'a .json dataset is one JSON array of task objects (for one object per line, name the file .jsonl)';
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (error) {
    return { rows: [], problems: [{ message: `is not valid JSON (${errorMessage(error)}); ${hint}` }] };
  }
  if (!Array.isArray(value)) return { rows: [], problems: [{ message: `holds ${describeValue(value)}, not an array; ${hint}` }] };
  return { rows: value.map((item, index) => ({ row: index + 1, value: item })), problems: [] };
}

/**
 * A header line of column names, then one record a row (RFC 4180: quoted fields may hold commas,
 * quotes and newlines); the row is the record's 1-based number after the header. Every value is
 * text; an empty cell counts as absent.
 */
async function parseCsv(bytes: Buffer): Promise<ParsedRows> {
  const { parse } = await import('csv-parse/sync');
  try {
    const records: Record<string, string>[] = parse(bytes, { columns: true, bom: true, skip_empty_lines: true });
    return { rows: records.map((record, index) => ({ row: index + 1, value: withoutEmptyCells(record) })), problems: [] };
  } catch (error) {
    // csv-parse's messages name the line ("Invalid Record Length: expect 3, got 4 on line 5").
    return {
      rows: [],
      problems: [
        {
          message: `is not valid CSV: ${errorMessage(error)}; the first line names the columns, and a value with a comma, quote or newline is quoted ("a ""b"", c")`,
        },
      ],
    };
  }
}

function withoutEmptyCells(record: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [column, value] of Object.entries(record)) if (value !== '') kept[column] = value;
  return kept;
}

/**
 * Every row of every row group, as column → value (hyparquet's `parquetReadObjects`); the row is
 * its 1-based position. Values become plain JSON: 64-bit integers become numbers (or decimal text
 * beyond 2^53), dates ISO 8601 text, binary columns UTF-8 text, lists arrays and structs objects.
 * Every codec is read (hyparquet-compressors adds gzip, zstd, brotli and lz4 to snappy).
 */
async function parseParquet(bytes: Buffer, wanted: (column: string) => boolean): Promise<ParsedRows> {
  const [{ parquetMetadata, parquetReadObjects, parquetSchema }, { compressors }] = await Promise.all([import('hyparquet'), import('hyparquet-compressors')]);
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  try {
    const metadata = parquetMetadata(file);
    const columns = parquetSchema(metadata).children.map((child) => child.element.name);
    const records = await parquetReadObjects({ file, metadata, compressors, columns: columns.filter(wanted) });
    return { rows: records.map((record, index) => ({ row: index + 1, value: plainValue(record) })), problems: [], columns };
  } catch (error) {
    return { rows: [], problems: [{ message: `cannot be read as Parquet: ${errorMessage(error)}` }] };
  }
}

/** A Parquet value as plain JSON. */
function plainValue(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8');
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>, plainValue);
  if (Array.isArray(value)) return value.map(plainValue);
  if (typeof value === 'object' && value !== null) {
    const plain: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) plain[key] = plainValue(item);
    return plain;
  }
  return value;
}

/** `value` in a few words, for messages: `a string`, `an array`, `null`… */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length <= 40 ? `the text ${JSON.stringify(value)}` : 'a text';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'boolean') return String(value);
  return `a ${typeof value}`;
}
