/**
 * Reads a command's flags as cli-flags.ts defines them, with Node's `parseArgs` doing the
 * tokenising and this module the checking, so that every mistake is one line that says what to
 * write instead:
 *
 * - an unknown flag suggests the nearest flag of the command (`--budgte` → `--budget`);
 * - a value may start with a dash when it is a number (`--budget -1` reads -1; its range is the
 *   setting's to check), any other dash-led value must be written `--flag=-x`;
 * - a switch given a value (`--json=yes`) and a flag without its value are named.
 */
import { parseArgs } from 'node:util';
import { closest } from '../../did-you-mean.js';
import { UsageError } from '../cli-io.js';
import { type CommandName, FLAGS, type FlagSpec, type FlagValues, flagsOf } from './cli-flags.js';

export interface ParsedFlags<C extends CommandName> {
  values: FlagValues<C>;
  /** The arguments that are not flags, in order (everything after `--` included). */
  positionals: string[];
}

/** A value that starts with a dash yet is no flag: a negative number (`-1`, `-0.5`, `-.5`, `-1e3`). */
const NEGATIVE_NUMBER = /^-(?:\d|\.\d)/;

/**
 * Parses `argv` (what follows the command's name) as `command`'s flags.
 *
 * @throws {UsageError} an unknown flag, a flag without its value, a switch with a value; the hint
 *   names the command's `--help`.
 */
export function parseCommandFlags<C extends CommandName>(argv: readonly string[], command: C): ParsedFlags<C> {
  const specs = flagsOf(command);
  const byName = new Map(specs.map((spec) => [spec.name, spec]));
  const options = Object.fromEntries(
    specs.map((spec) => [spec.name, { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) }]),
  );
  const fail = (message: string) => new UsageError(message, { hint: helpHint(command) });
  // Not strict: the tokens are checked below, with messages of our own.
  const { tokens } = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | string[] | boolean> = {};
  const positionals: string[] = [];
  for (const token of tokens) {
    if (token.kind === 'positional') {
      positionals.push(token.value);
      continue;
    }
    if (token.kind === 'option-terminator') continue;
    const spec = byName.get(token.name);
    if (spec === undefined) throw fail(unknownFlag(token.rawName, specs, command));
    const flag = `--${spec.name}`;
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw fail(`${flag} takes no value; write ${flag} alone`);
      values[spec.name] = true;
      continue;
    }
    const value = token.value;
    if (value === undefined) throw fail(`${flag} needs a value: ${flag} ${spec.value ?? 'VALUE'}`);
    // Node reads the argument after a flag as its value, even `--json`: a dash-led value that is
    // no number is more likely a forgotten value than a value.
    if (!token.inlineValue && value.length > 1 && value.startsWith('-') && !NEGATIVE_NUMBER.test(value)) {
      throw fail(`${flag} needs a value, got the flag ${value}; for a value that starts with "-", write ${flag}=${value}`);
    }
    if (spec.multiple) values[spec.name] = [...((values[spec.name] as string[] | undefined) ?? []), value];
    else values[spec.name] = value;
  }
  return { values: values as FlagValues<C>, positionals };
}

/** The usage error's second line: where the command's flags are listed. */
export function helpHint(command: CommandName): string {
  return `Run \`rlm ${command === 'run' ? '' : `${command} `}--help\` for usage.`;
}

function unknownFlag(raw: string, specs: readonly FlagSpec[], command: CommandName): string {
  const name = raw.replace(/^-+/, '');
  const names = specs.map((spec) => spec.name);
  const near = raw.startsWith('--') ? closest(name, names) : undefined;
  const where = command === 'run' ? '' : ` for rlm ${command}`;
  if (NEGATIVE_NUMBER.test(raw)) return `unknown option ${raw}${where}; to give ${raw} as an argument, put it after --: -- ${raw}`;
  if (near) return `unknown option ${raw}${where} (did you mean --${near}?)`;
  // A flag of another command: say whose, so `rlm demo --model x` learns why.
  const owners = (FLAGS as readonly FlagSpec[])
    .filter((flag) => flag.name === name)
    .flatMap((flag) => flag.commands.map((c) => `rlm${c === 'run' ? '' : ` ${c}`}`));
  return `unknown option ${raw}${where}${owners.length > 0 ? `; it is an option of ${owners.join(', ')}` : ''}`;
}

/** A value as an error shows it after "got": a number as it is, anything else quoted. */
export function gotValue(value: string): string {
  return value.trim() !== '' && Number.isFinite(Number(value)) ? value : JSON.stringify(value);
}
