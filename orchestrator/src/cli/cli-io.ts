import { AbortedError, DockerUnavailableError, InvalidOptionError, SandboxError, SandboxImageError } from '../errors.js';
import { RunLimitError } from '../engine/run-budget.js';
import { DatasetError } from '../eval/dataset/dataset-error.js';
import { ModelCallError } from '../models/model-backend.js';

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

/** The `rlm` command's exit codes; {@link exitCodeFor} says which one an error gets. */
export const ExitCode = {
  /** Answered. */
  ok: 0,
  /** The run failed: no answer (a failed model call or cell), or another error. */
  failure: 1,
  /** Bad flags, arguments, environment or config file ({@link UsageError}, `InvalidOptionError`), or a malformed dataset (`DatasetError`). */
  usage: 2,
  /** The provider refused every call: a bad key, no permission, an unknown model, an unreachable base URL (a fatal `ModelCallError`). */
  providerRefused: 3,
  /** Docker or the sandbox failed: no Docker engine, no image, a sandbox that died or ran out of memory. */
  sandbox: 4,
  /** A limit ended the run before it answered (`RunLimitError`: time, tokens, cost, failed turns); its partial answer, if any, is on stdout. */
  limitReached: 5,
  /** Ctrl-C: the run was cancelled and its sandboxes removed. */
  interrupted: 130,
  /** SIGTERM: the same, asked by a process manager (128 + 15). */
  terminated: 143,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The exit code for `error`, thrown by a command or ending a run (`RlmResult.error`); the one
 * place the CLI maps error classes to exit codes. `null` (a run that ended without an answer and
 * without an error) and anything unknown is a plain failure.
 */
export function exitCodeFor(error: unknown): ExitCodeValue {
  if (error instanceof UsageError || InvalidOptionError.isInstance(error) || DatasetError.isInstance(error)) return ExitCode.usage;
  if (AbortedError.isInstance(error)) return ExitCode.interrupted;
  if (ModelCallError.isInstance(error)) return error.fatal ? ExitCode.providerRefused : ExitCode.failure;
  if (DockerUnavailableError.isInstance(error) || SandboxImageError.isInstance(error) || SandboxError.isInstance(error)) return ExitCode.sandbox;
  if (RunLimitError.isInstance(error)) return ExitCode.limitReached;
  return ExitCode.failure;
}
