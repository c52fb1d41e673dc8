/**
 * The `rlm` command's dispatcher. Every error a user can cause ends as one line with the fix,
 * never a stack trace (set RLM_DEBUG=1 to see the stack).
 *
 * Start-up is kept light: this module and what it imports statically use nothing but Node's
 * built-ins and the error classes, so `rlm --version` and `rlm --help` load no dependency. A
 * command's module is imported once the command is chosen. `view`, `sandbox` and `demo` import
 * their own dependencies after reading their flags; the run and `doctor` modules import theirs up
 * front, so their `--help` is answered here, from their flag modules, before they load.
 * `start-up.test.ts` checks what each of these paths loads.
 */
import { readFileSync } from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import { errorMessage, RlmError } from '../errors.js';
import { ExitCode, exitCodeFor, UsageError, type CliIo } from './cli-io.js';
import { DOCTOR_FLAGS, DOCTOR_HELP } from './commands/doctor-flags.js';
import { parseFlags, RUN_FLAGS, RUN_HELP } from './commands/run-flags.js';

// The run command's help is the top-level help: `rlm [query]` is the main command.
const HELP = RUN_HELP;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Whether `argv` asks for the command's help, parsed as the command parses it. Flags that do not
 * parse are the command's to report: they answer false and the command's module loads and says
 * what is wrong, so its messages stay its own.
 */
function asksForHelp(argv: string[], flags: NonNullable<ParseArgsConfig['options']>): boolean {
  try {
    return parseFlags(argv, flags).values.help === true;
  } catch {
    return false;
  }
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
      case 'sandbox': {
        const { sandboxCommand } = await import('./commands/sandbox-command.js');
        return await sandboxCommand(rest, io);
      }
      case 'view': {
        const { viewCommand } = await import('./commands/view-command.js');
        return await viewCommand(rest, io);
      }
      case 'demo': {
        const { demoCommand } = await import('./commands/demo-command.js');
        return await demoCommand(rest, io);
      }
      case 'doctor': {
        if (asksForHelp(rest, DOCTOR_FLAGS)) {
          io.stdout(DOCTOR_HELP);
          return ExitCode.ok;
        }
        const { doctorCommand } = await import('./commands/doctor-command.js');
        return await doctorCommand(rest, io);
      }
      default: {
        // `rlm "question" --context-file f`: anything that is not a command is the main command's.
        if (asksForHelp(argv, RUN_FLAGS)) {
          io.stdout(RUN_HELP);
          return ExitCode.ok;
        }
        const { runCommand } = await import('./commands/run-command.js');
        return await runCommand(argv, io);
      }
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
