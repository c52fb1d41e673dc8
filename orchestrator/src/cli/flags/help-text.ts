/**
 * The help pages and the README's option table, made from cli-flags.ts. Light on purpose (no
 * dependency): `rlm --help` prints from here.
 */
import { type ArgumentSpec, COMMANDS, type CommandName, type CommandSpec, type FlagSpec, flagFor, flagsOf, subcommandsOf } from './cli-flags.js';

/** Help pages wrap at this many columns. */
const WIDTH = 98;
/** Where an entry's text starts: two spaces and a label of up to 19 characters, then two spaces. */
const TEXT_COLUMN = 23;

/** The `--help` page of `command`. */
export function helpText(command: CommandName): string {
  const spec: CommandSpec = COMMANDS[command];
  const out: string[] = [];
  const synopsis = `rlm ${commandWords(command)}${synopsisTail(command)}`.replace(/ +/g, ' ').trimEnd();
  out.push(`Usage: ${synopsis}`);
  if (command === 'run') out.push('       rlm <command> [options]');
  if (spec.description) out.push('', ...paragraphs(spec.description));
  const subcommands = subcommandsOf(command);
  if (subcommands.length > 0) {
    out.push('', 'Commands:');
    for (const sub of subcommands) {
      const sub_spec: CommandSpec = COMMANDS[sub];
      const aliases = sub_spec.aliases?.length ? ` (also: ${sub_spec.aliases.join(', ')})` : '';
      out.push(...entry(`${sub.slice(command === 'run' ? 0 : command.length + 1)}${synopsisTail(sub)}`, `${sub_spec.summary}${aliases}`));
    }
  }
  for (const [group, entries] of sections(command)) {
    out.push('', `${group}:`);
    for (const item of entries) out.push(...entry(item.label, plain(item.text)));
  }
  if (spec.footer) out.push('', ...paragraphs(spec.footer));
  return `${out.join('\n')}\n`;
}

/** The rows of `command`'s option table in the README: its arguments and flags, without `--help`. */
export function optionRows(command: CommandName = 'run'): Array<{ option: string; meaning: string }> {
  const rows: Array<{ option: string; meaning: string }> = [];
  for (const [, entries] of sections(command)) {
    for (const item of entries) {
      if (item.flag?.meta) continue;
      const details = item.flag?.details ? `. ${item.flag.details}` : '';
      rows.push({ option: `\`${item.label.replace(/, -(\w)$/, '`, `-$1')}\``, meaning: `${item.text}${details}`.replaceAll('|', '\\|') });
    }
  }
  return rows;
}

/** The README's option table of `command` in markdown, columns padded as a formatter leaves them. */
export function optionTable(command: CommandName = 'run'): string {
  const rows = [{ option: 'option', meaning: 'meaning' }, ...optionRows(command)];
  const left = Math.max(...rows.map((row) => row.option.length));
  const right = Math.max(...rows.map((row) => row.meaning.length));
  const line = (a: string, b: string) => `| ${a.padEnd(left)} | ${b.padEnd(right)} |`;
  const [head, ...body] = rows.map((row) => line(row.option, row.meaning));
  return [head, line('-'.repeat(left), '-'.repeat(right)), ...body].join('\n');
}

/** `--context-file F`, `--help, -h`: a flag as help pages list it. */
export function flagLabel(flag: FlagSpec): string {
  return `--${flag.name}${flag.type === 'string' ? ` ${flag.value ?? 'VALUE'}` : ''}${flag.short ? `, -${flag.short}` : ''}`;
}

interface Entry {
  label: string;
  /** Its text with the default, in the cli-flags.ts markup (backticks for code). */
  text: string;
  flag?: FlagSpec;
}

/** The command's arguments and flags by section, in the sections' order. */
function sections(command: CommandName): Map<string, Entry[]> {
  const spec: CommandSpec = COMMANDS[command];
  const groups = spec.groups ?? ['Options'];
  const result = new Map<string, Entry[]>(groups.map((group) => [group, []]));
  const sectionOf = (group: string | undefined, what: string) => {
    const found = groups.length === 1 ? groups[0] : groups.find((g) => g === group);
    if (found === undefined)
      throw new Error(`cli-flags.ts: ${what} of ${command} is in group ${JSON.stringify(group)}, which is not one of ${groups.join(', ')}`);
    return result.get(found) as Entry[];
  };
  for (const argument of spec.arguments ?? ([] as ArgumentSpec[]))
    sectionOf(argument.group, argument.label).push({ label: argument.label, text: argument.help });
  for (const flag of flagsOf(command).map((f) => flagFor(f, command))) {
    const text = flag.default === undefined ? flag.help : `${flag.help} (default ${flag.default})`;
    sectionOf(flag.group, `--${flag.name}`).push({ label: flagLabel(flag), text, flag });
  }
  for (const [group, entries] of result) if (entries.length === 0) result.delete(group);
  return result;
}

function commandWords(command: CommandName): string {
  return command === 'run' ? '' : command;
}

/** What follows the command's words in its synopsis: ` [DIR | FILE] [--port N] [--no-open]`, ` [options]`. */
function synopsisTail(command: CommandName): string {
  const spec: CommandSpec = COMMANDS[command];
  const args = spec.args ? ` ${spec.args}` : '';
  if (subcommandsOf(command).length > 0) return `${args} [options]`;
  const flags = flagsOf(command).filter((flag) => !flag.meta);
  if (flags.length === 0) return args;
  if (flags.length > 4) return `${args} [options]`;
  return `${args} ${flags.map((flag) => `[${flagLabel(flag)}]`).join(' ')}`;
}

/** A label and its text, the text wrapped at column {@link TEXT_COLUMN} (below the label when the label is long). */
function entry(label: string, text: string): string[] {
  const lines = wrap(text, WIDTH - TEXT_COLUMN);
  const indent = ' '.repeat(TEXT_COLUMN);
  const head = `  ${label}`;
  if (head.length + 2 > TEXT_COLUMN) return [head, ...lines.map((line) => indent + line)];
  return [head.padEnd(TEXT_COLUMN) + (lines[0] ?? ''), ...lines.slice(1).map((line) => indent + line)];
}

/** Text paragraphs (separated by a blank line) wrapped at {@link WIDTH}, blank lines between. */
function paragraphs(text: string): string[] {
  return plain(text)
    .split('\n\n')
    .flatMap((paragraph, i) => [...(i > 0 ? [''] : []), ...wrap(paragraph, WIDTH)]);
}

/** The cli-flags.ts markup as a terminal shows it: code spans without their backticks. */
function plain(text: string): string {
  return text.replaceAll('`', '');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}
