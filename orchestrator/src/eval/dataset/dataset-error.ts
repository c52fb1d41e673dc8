import { RlmError, type RlmErrorOptions } from '../../errors.js';

/** One thing wrong with a dataset: where (row, field) and what to change. */
export interface DatasetProblem {
  /** The 1-based row (see {@link DatasetError.row}); undefined for the file as a whole. */
  row?: number | undefined;
  /** The task field concerned (`query`, `context_file`…), when there is one. */
  field?: string | undefined;
  /** What is wrong and how to fix it, without the file and row (the error's message adds them). */
  message: string;
}

/** How many problems a {@link DatasetError}'s message lists; the rest are counted. */
export const DATASET_PROBLEMS_SHOWN = 5;

/**
 * A dataset that cannot be read or has malformed rows. Every row is checked before this is thrown,
 * so its message lists the first few problems ({@link DATASET_PROBLEMS_SHOWN}) and counts the rest:
 * `niah.jsonl row 7: \`query\` is missing (…)`. `kind`: `dataset`.
 */
export class DatasetError extends RlmError {
  /** The marker by which `DatasetError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.DatasetError';
  /** `'DatasetError'`, as stack traces and `String(error)` show it. */
  override name = 'DatasetError';
  /** The dataset file, as the caller named it. */
  readonly file: string;
  /**
   * The first problem's 1-based row: the line for `.jsonl`, the item of the array for `.json`, the
   * record after the header for `.csv`, the row for `.parquet`. Undefined when the file as a whole is at fault.
   */
  readonly row: number | undefined;
  /** The first problem's field, when it concerns one. */
  readonly field: string | undefined;
  /** Every problem found, in row order (the message shows the first few). */
  readonly problems: readonly DatasetProblem[];

  constructor(file: string, problems: readonly DatasetProblem[], options?: RlmErrorOptions) {
    super(datasetMessage(file, problems), { kind: 'dataset', ...options });
    this.file = file;
    this.problems = problems;
    this.row = problems[0]?.row;
    this.field = problems[0]?.field;
  }
}

function where(file: string, problem: DatasetProblem): string {
  return problem.row === undefined ? file : `${file} row ${problem.row}`;
}

function datasetMessage(file: string, problems: readonly DatasetProblem[]): string {
  const [first] = problems;
  if (first === undefined) return `${file}: the dataset is malformed`;
  if (problems.length === 1) return `${where(file, first)}: ${first.message}`;
  const shown = problems.slice(0, DATASET_PROBLEMS_SHOWN).map((problem) => `  ${problem.row === undefined ? '' : `row ${problem.row}: `}${problem.message}`);
  const more = problems.length - shown.length;
  return [`${file}: ${problems.length} problems`, ...shown, ...(more > 0 ? [`  … and ${more} more`] : [])].join('\n');
}
