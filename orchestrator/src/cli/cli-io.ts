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
}

/** Bad flags or arguments: exit code 2, one line, and the help hint. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  interrupted: 130,
} as const;
