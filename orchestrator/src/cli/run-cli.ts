/**
 * The `rlm` command's dispatcher. Every error a user can cause ends as one line with the fix,
 * never a stack trace (set RLM_DEBUG=1 to see the stack).
 */
import { readFileSync } from 'node:fs';
import { errorMessage, RlmError } from '../errors.js';
import { ExitCode, exitCodeFor, UsageError, type CliIo } from './cli-io.js';
import { demoCommand } from './commands/demo-command.js';
import { doctorCommand } from './commands/doctor-command.js';
import { RUN_HELP, runCommand } from './commands/run-command.js';
import { sandboxCommand } from './commands/sandbox-command.js';
import { viewCommand } from './commands/view-command.js';

// The run command's help is the top-level help: `rlm [query]` is the main command.
const HELP = RUN_HELP;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.stdout(HELP);
        return command === undefined ? ExitCode.usage : ExitCode.ok;
      case '--version':
      case '-v':
        io.stdout(`${version()}\n`);
        return ExitCode.ok;
      case 'sandbox':
        return await sandboxCommand(rest, io);
      case 'view':
        return await viewCommand(rest, io);
      case 'demo':
        return await demoCommand(rest, io);
      case 'doctor':
        return await doctorCommand(rest, io);
      default:
        // `rlm "question" --context-file f`: anything that is not a command is the main command's.
        return await runCommand(argv, io);
    }
  } catch (error) {
    if (io.signal.aborted) {
      io.stderr('rlm: interrupted\n');
      return ExitCode.interrupted;
    }
    if (error instanceof UsageError) {
      const hint = error.hint ?? 'Run `rlm --help` for usage.';
      io.stderr(`rlm: ${error.message}\n${hint ? `${hint}\n` : ''}`);
      return exitCodeFor(error);
    }
    if (RlmError.isInstance(error)) {
      io.stderr(`rlm: ${error.message}\n`);
      if (io.env.RLM_DEBUG) io.stderr(`${error.stack}\n`);
      return exitCodeFor(error);
    }
    // Not an rlm error: a bug, so the stack goes with it.
    io.stderr(`rlm: unexpected error: ${errorMessage(error)}\n`);
    if (error instanceof Error) io.stderr(`${error.stack}\n`);
    return exitCodeFor(error);
  }
}
