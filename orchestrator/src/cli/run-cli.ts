/**
 * The `rlm` command's dispatcher. Every error a user can cause ends as one line with the fix,
 * never a stack trace (set RLM_DEBUG=1 to see the stack).
 */
import { readFileSync } from 'node:fs';
import { RlmError } from '../errors.js';
import { ExitCode, UsageError, type CliIo } from './cli-io.js';
import { sandboxCommand } from './commands/sandbox-command.js';

const HELP = `Usage: rlm <command> [options]

Recursive Language Models with the REPL in a hardened Docker sandbox.

Commands:
  sandbox build|ls|prune|check|exec   manage and exercise sandboxes (rlm sandbox --help)

Options:
  --help, -h      show this help
  --version, -v   print the version
`;

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
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (io.signal.aborted) {
      io.stderr('rlm: interrupted\n');
      return ExitCode.interrupted;
    }
    if (error instanceof UsageError) {
      io.stderr(`rlm: ${error.message}\nRun \`rlm --help\` for usage.\n`);
      return ExitCode.usage;
    }
    if (RlmError.isInstance(error)) {
      io.stderr(`rlm: ${error.message}\n`);
      if (io.env.RLM_DEBUG) io.stderr(`${error.stack}\n`);
      return ExitCode.failure;
    }
    io.stderr(`rlm: unexpected error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof Error) io.stderr(`${error.stack}\n`);
    return ExitCode.failure;
  }
}
