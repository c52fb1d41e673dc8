/**
 * What a command needs from its surroundings, so commands run the same under a terminal, in a
 * pipe and in tests.
 */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Fires on Ctrl-C. */
  signal: AbortSignal;
  /** Where `-` reads from; default `process.stdin`. */
  stdin?: NodeJS.ReadableStream;
  /** Whether stdout is a terminal (colour in reports printed there); default false. */
  stdoutIsTTY?: boolean;
  /** Whether stderr is a terminal (live status line, colour); default false. */
  stderrIsTTY?: boolean;
  /** The terminal's width in columns, asked each time (it can change); default 80. */
  stderrColumns?: () => number | undefined;
  /** The directory relative paths and the config file are found from; default `process.cwd()`. */
  cwd?: string;
}

/**
 * Bad flags, arguments, environment variables or config file: exit code 2, one line, and a hint
 * (by default, to `rlm --help`).
 */
export class UsageError extends Error {
  override name = 'UsageError';
  /** The second line printed; `undefined` means the `rlm --help` hint. */
  readonly hint: string | undefined;
  constructor(message: string, options: { hint?: string } = {}) {
    super(message);
    this.hint = options.hint;
  }
}

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  interrupted: 130,
} as const;
