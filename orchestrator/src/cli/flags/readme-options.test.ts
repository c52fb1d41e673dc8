import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { optionTable } from './help-text.js';
import { EVAL_TABLE_END, EVAL_TABLE_START, README_FIX, TABLE_END, TABLE_START, optionTableDifferences, withOptionTable } from './readme-options.js';

const README = new URL('../../../../README.md', import.meta.url);

/** A README holding only the generated table. */
const generated = () => withOptionTable(`# rlm\n\n${TABLE_START}\n${TABLE_END}\n\nmore\n`);

describe("the README's option table", () => {
  it('agrees with the flag definitions', async () => {
    const differences = optionTableDifferences(await readFile(README, 'utf8'));
    expect(differences, `README.md's option table is out of date; run \`${README_FIX}\` to rewrite it:\n${differences.join('\n')}`).toEqual([]);
  });

  it('is written between the markers, leaving the rest, and rewriting it changes nothing', () => {
    const readme = generated();
    expect(readme).toContain(optionTable('run'));
    expect(readme.startsWith(`# rlm\n\n${TABLE_START}\n\n| option`)).toBe(true);
    expect(readme.endsWith(`\n\n${TABLE_END}\n\nmore\n`)).toBe(true);
    expect(withOptionTable(readme)).toBe(readme);
    expect(optionTableDifferences(readme)).toEqual([]);
  });

  it('names the flag whose text differs, or that is missing or extra', () => {
    const readme = generated();
    const changed = readme.replace('spending limit in US dollars', 'money');
    expect(optionTableDifferences(changed)).toEqual(['`--budget USD`: the README says "money", cli-flags.ts says "spending limit in US dollars"']);
    const missing = readme
      .split('\n')
      .filter((line) => !line.startsWith('| `--budget USD`'))
      .join('\n');
    expect(optionTableDifferences(missing)).toEqual(["`--budget USD`: missing from the README's table"]);
    const extra = readme.replace(`\n\n${TABLE_END}`, `\n| \`--bogus\` | a flag that is not there |\n\n${TABLE_END}`);
    expect(optionTableDifferences(extra)).toEqual(["`--bogus`: in the README's table, but rlm has no such option"]);
  });

  it('ignores padding, so a formatter may align the columns', () => {
    const readme = generated().replace(/ {2,}\|/g, ' |');
    expect(optionTableDifferences(readme)).toEqual([]);
  });

  it("writes and checks `rlm eval`'s table too when its markers are there", () => {
    const readme = withOptionTable(`${generated()}\n${EVAL_TABLE_START}\n${EVAL_TABLE_END}\n`);
    expect(readme).toContain(optionTable('eval'));
    expect(optionTableDifferences(readme)).toEqual([]);
    expect(optionTableDifferences(readme.replace('only the first N tasks', 'some tasks'))).toEqual([
      'rlm eval: `--limit N`: the README says "some tasks", cli-flags.ts says "only the first N tasks"',
    ]);
  });

  it('says where the markers go when they are missing', () => {
    expect(optionTableDifferences('# rlm\n')[0]).toMatch(/^README\.md has no generated option table: .*pnpm docs:cli/);
  });
});
