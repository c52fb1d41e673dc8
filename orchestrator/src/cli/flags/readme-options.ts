/**
 * The README's table of the main command's options (and `rlm eval`'s, when its markers are there) is generated from cli-flags.ts, between two
 * markers: `pnpm docs:cli` rewrites it (write-readme-options.ts), and readme-options.test.ts fails,
 * naming the flag, when the README and the definitions disagree.
 */
import { optionRows, optionTable } from './help-text.js';

/** The command that rewrites the README's table, for messages. */
export const README_FIX = 'pnpm docs:cli';

export const TABLE_START = `<!-- rlm options: generated from orchestrator/src/cli/flags/cli-flags.ts by \`${README_FIX}\`; edit the flags there, not this table -->`;
export const TABLE_END = '<!-- end of rlm options -->';

/** `rlm eval`'s table: generated and checked the same way when its markers are in the README. */
export const EVAL_TABLE_START = `<!-- rlm eval options: generated from orchestrator/src/cli/flags/cli-flags.ts by \`${README_FIX}\`; edit the flags there, not this table -->`;
export const EVAL_TABLE_END = '<!-- end of rlm eval options -->';

/**
 * `readme` with the table between the markers made anew.
 *
 * @throws {Error} the markers are missing or out of order.
 */
export function withOptionTable(readme: string): string {
  const { before, after } = split(readme);
  const withRun = `${before}${TABLE_START}\n\n${optionTable('run')}\n\n${TABLE_END}${after}`;
  if (!withRun.includes(EVAL_TABLE_START)) return withRun;
  const evalParts = split(withRun, EVAL_TABLE_START, EVAL_TABLE_END);
  return `${evalParts.before}${EVAL_TABLE_START}\n\n${optionTable('eval')}\n\n${EVAL_TABLE_END}${evalParts.after}`;
}

/**
 * How the table in `readme` differs from the flag definitions, one line per flag that differs
 * (missing, extra, or with another text); empty when they agree. Padding is ignored, so a
 * markdown formatter's alignment does not count as a difference.
 */
export function optionTableDifferences(readme: string): string[] {
  let table: string;
  try {
    table = split(readme).table;
  } catch (error) {
    return [(error as Error).message];
  }
  const problems = tableDifferences(table, 'run');
  if (readme.includes(EVAL_TABLE_START)) {
    try {
      problems.push(...tableDifferences(split(readme, EVAL_TABLE_START, EVAL_TABLE_END).table, 'eval').map((problem) => `rlm eval: ${problem}`));
    } catch (error) {
      problems.push((error as Error).message);
    }
  }
  return problems;
}

function tableDifferences(table: string, command: 'run' | 'eval'): string[] {
  const found = rowsOf(table);
  const expected = optionRows(command);
  const problems: string[] = [];
  const foundByOption = new Map(found.map((row) => [row.option, row.meaning]));
  const expectedOptions = new Set(expected.map((row) => row.option));
  for (const row of expected) {
    const meaning = foundByOption.get(row.option);
    if (meaning === undefined) problems.push(`${row.option}: missing from the README's table`);
    else if (meaning !== row.meaning) problems.push(`${row.option}: the README says "${meaning}", cli-flags.ts says "${row.meaning}"`);
  }
  for (const row of found) if (!expectedOptions.has(row.option)) problems.push(`${row.option}: in the README's table, but rlm has no such option`);
  if (problems.length === 0 && found.map((row) => row.option).join('\n') !== expected.map((row) => row.option).join('\n')) {
    problems.push("the README's table lists the options in another order than cli-flags.ts");
  }
  return problems;
}

function split(readme: string, startMarker = TABLE_START, endMarker = TABLE_END): { before: string; table: string; after: string } {
  const start = readme.indexOf(startMarker);
  const end = readme.indexOf(endMarker);
  if (start === -1 || end === -1 || end < start) {
    throw new Error(`README.md has no generated option table: put the lines ${startMarker} and ${endMarker} where it goes, then run \`${README_FIX}\``);
  }
  return { before: readme.slice(0, start), table: readme.slice(start + startMarker.length, end), after: readme.slice(end + endMarker.length) };
}

/** The body rows of a markdown table, cells trimmed (the header and its rule left out). */
function rowsOf(table: string): Array<{ option: string; meaning: string }> {
  const rows = table
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('|'))
    .map((line) =>
      line
        .slice(1, line.endsWith('|') && !line.endsWith('\\|') ? -1 : undefined)
        .split(/(?<!\\)\|/)
        .map((cell) => cell.trim()),
    );
  return rows.slice(2).map(([option = '', ...rest]) => ({ option, meaning: rest.join('|') }));
}
