/**
 * The `rlm` command's dispatcher. Every error a user can cause ends as one line with the fix,
 * never a stack trace (set RLM_DEBUG=1 to see the stack).
 *
 * Start-up is kept light: this module and what it imports statically use nothing but Node's
 * built-ins and the error classes, so `rlm --version` and `rlm --help` load no dependency. A
 * command's module is imported once the command is chosen. Every command's flags and help come
 * from flags/cli-flags.ts: the help of the main command, `view`, `demo`, `doctor` and `eval`'s is answered
 * here, before their modules load; `sandbox` answers its subcommands' help itself, before it loads
 * Docker's client. `start-up.test.ts` checks what each of these paths loads.
 */
import { readFileSync } from 'node:fs';
import { closest } from '../did-you-mean.js';
import { errorMessage, RlmError } from '../errors.js';
import { ExitCode, exitCodeFor, UsageError, type CliIo } from './cli-io.js';
import { COMMANDS, type CommandName, findCommand, subcommandsOf } from './flags/cli-flags.js';
import { helpText } from './flags/help-text.js';
import { parseCommandFlags } from './flags/parse-flags.js';

/** The rlm package's version (its package.json, two levels above this module as source and bundled). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Whether `argv` asks for `command`'s help. Its flags are parsed as the command parses them, so a
 * mistake in them is reported here, the same as the command would, before its module loads.
 */
function asksForHelp(argv: readonly string[], command: CommandName): boolean {
  return parseCommandFlags(argv, command).values.help === true;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
        // Nothing asked: a usage error, so the usage goes to stderr.
        io.stderr(helpText('run'));
        return ExitCode.usage;
      case '--help':
      case '-h':
        io.stdout(helpText('run'));
        return ExitCode.ok;
      case 'help':
        io.stdout(helpText(helpTopic(rest)));
        return ExitCode.ok;
      case '--version':
      case '-v':
        io.stdout(`${version()}\n`);
        return ExitCode.ok;
      case 'sandbox': {
        // Light until a subcommand that needs Docker runs; it answers each subcommand's --help.
        const { sandboxCommand } = await import('./commands/sandbox-command.js');
        return await sandboxCommand(rest, io);
      }
      case 'eval': {
        // `rlm eval DATASET` or `rlm eval generate|rescore|compare …`; help is answered here, light.
        const sub = evalSubcommand(rest[0]);
        const args = sub === 'eval' ? rest : rest.slice(1);
        if (asksForHelp(args, sub)) {
          io.stdout(helpText(sub));
          return ExitCode.ok;
        }
        const { evalCommand } = await import('./commands/eval-command.js');
        return await evalCommand(sub, args, io);
      }
      case 'serve': {
        // `rlm serve [flags]`, `rlm serve teams create NAME`…; help is answered here, light.
        const sub = serveSubcommand(rest);
        const args = rest.slice(sub.split(' ').length - 1);
        if (asksForHelp(args, sub)) {
          io.stdout(helpText(sub));
          return ExitCode.ok;
        }
        const { serveCommand } = await import('./commands/serve-command.js');
        return await serveCommand(sub, args, io);
      }
      case 'view':
      case 'demo':
      case 'doctor': {
        if (asksForHelp(rest, command)) {
          io.stdout(helpText(command));
          return ExitCode.ok;
        }
        return await runCommandModule(command, rest, io);
      }
      default: {
        // `rlm "question" --context-file f`: anything that is not a command is the main command's.
        refuseMistypedCommand(command);
        const { values } = parseCommandFlags(argv, 'run');
        if (values.help) {
          io.stdout(helpText('run'));
          return ExitCode.ok;
        }
        if (values.version) {
          io.stdout(`${version()}\n`);
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

async function runCommandModule(command: 'view' | 'demo' | 'doctor', argv: string[], io: CliIo): Promise<number> {
  switch (command) {
    case 'view': {
      const { viewCommand } = await import('./commands/view-command.js');
      return await viewCommand(argv, io);
    }
    case 'demo': {
      const { demoCommand } = await import('./commands/demo-command.js');
      return await demoCommand(argv, io);
    }
    case 'doctor': {
      const { doctorCommand } = await import('./commands/doctor-command.js');
      return await doctorCommand(argv, io);
    }
  }
}

/** Which `rlm eval` command `word` (the first argument after `eval`) starts. */
function evalSubcommand(word: string | undefined): 'eval' | 'eval generate' | 'eval rescore' | 'eval compare' {
  if (word === 'generate' || word === 'rescore' || word === 'compare') return `eval ${word}`;
  return 'eval';
}

/**
 * Which `rlm serve` command `words` (the arguments after `serve`) start: `serve teams create`,
 * `serve teams` (alone, or with an unknown word: refused with the nearest), or `serve` itself.
 */
function serveSubcommand(words: readonly string[]): Extract<CommandName, `serve${string}`> {
  const [group, action] = words;
  if (group !== 'teams' && group !== 'tokens' && group !== 'runs') {
    if (group !== undefined && /^[a-z]+$/.test(group)) {
      const near = closest(group, ['teams', 'tokens', 'runs']);
      throw new UsageError(`unknown command "rlm serve ${group}"${near ? ` (did you mean "rlm serve ${near}"?)` : ''}`, {
        hint: 'Run `rlm serve --help` for usage.',
      });
    }
    return 'serve';
  }
  if (action === undefined || action.startsWith('-')) return `serve ${group}`;
  const found = findCommand(`serve ${group} ${action}`);
  if (found?.startsWith('serve ')) return found as Extract<CommandName, `serve${string}`>;
  const near = closest(
    action,
    subcommandsOf(`serve ${group}`).map((name) => name.split(' ')[2] ?? ''),
  );
  throw new UsageError(`unknown command "rlm serve ${group} ${action}"${near ? ` (did you mean "rlm serve ${group} ${near}"?)` : ''}`, {
    hint: `Run \`rlm serve ${group} --help\` for its commands.`,
  });
}

/** The command `rlm help [command…]` asks about: `rlm help sandbox exec` is `sandbox exec`'s page. */
function helpTopic(words: readonly string[]): CommandName {
  if (words.length === 0) return 'run';
  const asked = words.join(' ');
  const found = findCommand(asked);
  if (found) return found;
  const names = Object.keys(COMMANDS).filter((name) => name !== 'run');
  const near = closest(asked, names);
  throw new UsageError(`no help on "${asked}"${near ? ` (did you mean "rlm help ${near}"?)` : ''}; the commands: ${names.join(', ')}`);
}

/**
 * Refuses a first argument that looks like a mistyped command (`rlm sandbx`) rather than running
 * it as a one-word query: one word, a typo away from a command. A query of one such word is still
 * possible with `--query`.
 */
function refuseMistypedCommand(word: string): void {
  if (!/^[a-z][a-z-]*$/i.test(word)) return;
  const near = closest(word, [...subcommandsOf('run'), 'help']);
  if (near === undefined) return;
  throw new UsageError(`unknown command "${word}" (did you mean "rlm ${near}"?)`, {
    hint: `To ask "${word}" as the question, write: rlm --query ${word} …; \`rlm --help\` lists the commands.`,
  });
}
