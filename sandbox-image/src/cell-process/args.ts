/**
 * The cell process's command line, written by the server (cell-process-spawn.ts) and read by the
 * cell process (main.ts), and the file descriptor of their pipe. Free of the protocol's schemas,
 * so the server can start its cell process before it has loaded them.
 */
import { parseArgs } from 'node:util';
import type { Language } from '@rlm/shared';

/** The file descriptor of the pipe in the cell process: not 0–2, which a cell might write to for its own reasons. */
export const CELL_CHANNEL_FD = 3;

const LANGUAGES: readonly Language[] = ['javascript', 'python'];

export interface CellProcessArgs {
  language: Language;
  contextDir: string;
  heapLimitMb?: number | undefined;
  /** A cell worker bundle other than the one next to the cell process's (tests). */
  workerUrl?: string | undefined;
  pyodideDir?: string | undefined;
  snapshotFile?: string | undefined;
  unresponsiveGraceMs?: number | undefined;
}

/** The cell process's argv (after its script); every value as `--name=value`. */
export function formatCellProcessArgs(args: CellProcessArgs): string[] {
  const optional = (name: string, value: string | number | undefined) => (value === undefined ? [] : [`--${name}=${value}`]);
  return [
    `--language=${args.language}`,
    `--context-dir=${args.contextDir}`,
    ...optional('heap-limit-mb', args.heapLimitMb),
    ...optional('worker-url', args.workerUrl),
    ...optional('pyodide-dir', args.pyodideDir),
    ...optional('snapshot-file', args.snapshotFile),
    ...optional('unresponsive-grace-ms', args.unresponsiveGraceMs),
  ];
}

/** @throws {TypeError} a missing or malformed option, named in the message. */
export function parseCellProcessArgs(argv: readonly string[]): CellProcessArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      language: { type: 'string' },
      'context-dir': { type: 'string' },
      'heap-limit-mb': { type: 'string' },
      'worker-url': { type: 'string' },
      'pyodide-dir': { type: 'string' },
      'snapshot-file': { type: 'string' },
      'unresponsive-grace-ms': { type: 'string' },
    },
    strict: true,
  });
  const language = LANGUAGES.find((name) => name === values.language);
  if (!language) throw new TypeError(`--language must be javascript or python, got ${String(values.language)}`);
  if (!values['context-dir']) throw new TypeError('--context-dir is required');
  const integer = (name: 'heap-limit-mb' | 'unresponsive-grace-ms', min: number) => {
    const raw = values[name];
    if (raw === undefined) return undefined;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new TypeError(`--${name} must be an integer of at least ${min}, got ${raw}`);
    return value;
  };
  return {
    language,
    contextDir: values['context-dir'],
    heapLimitMb: integer('heap-limit-mb', 1),
    workerUrl: values['worker-url'],
    pyodideDir: values['pyodide-dir'],
    snapshotFile: values['snapshot-file'],
    unresponsiveGraceMs: integer('unresponsive-grace-ms', 0),
  };
}
