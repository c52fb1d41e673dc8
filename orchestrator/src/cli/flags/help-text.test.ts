import { describe, expect, it } from 'vitest';
import { COMMANDS, type CommandName, FLAGS, flagsOf } from './cli-flags.js';
import { flagLabel, helpText } from './help-text.js';

const ALL_COMMANDS = Object.keys(COMMANDS) as CommandName[];

describe('help pages', () => {
  it('the main page has the commands, every group of flags with defaults, the precedence and the exit codes', () => {
    const help = helpText('run');
    expect(help.startsWith('Usage: rlm [query] [options]\n       rlm <command> [options]\n')).toBe(true);
    for (const heading of ['Commands:', 'Query and context:', 'Models:', 'Limits (for the whole recursion tree):', 'Run:', 'Output:']) {
      expect(help).toContain(`\n${heading}\n`);
    }
    for (const command of ['demo', 'doctor', 'view', 'sandbox']) expect(help).toMatch(new RegExp(`\\n  ${command}\\b`));
    expect(help).toMatch(/--max-iterations N +model turns \(default 30\)/);
    expect(help).toContain('Precedence: flags, then environment');
    expect(help).toMatch(/Exit codes: 0 answered, .* 143 terminated \(SIGTERM\)\./s);
    // Code spans lose their backticks in a terminal.
    expect(help).not.toContain('`');
  });

  it('lists every flag of every command on its page, and nothing wider than 98 columns but a long word', () => {
    for (const command of ALL_COMMANDS) {
      const help = helpText(command);
      for (const flag of flagsOf(command)) expect(help, `${command}: --${flag.name}`).toContain(`  ${flagLabel(flag)}`);
      for (const line of help.split('\n')) if (line.length > 98) expect(line.trim(), `${command}: ${line}`).not.toContain(' ');
    }
  });

  it('gives each sandbox command a page of its own, and the group page lists them', () => {
    const group = helpText('sandbox');
    for (const sub of ['build', 'ls', 'prune', 'check', 'exec'] as const) {
      const page = helpText(`sandbox ${sub}`);
      expect(page.split('\n')[0]).toMatch(new RegExp(`^Usage: rlm sandbox ${sub}\\b`));
      expect(page).not.toBe(group);
      expect(group).toMatch(new RegExp(`\\n  ${sub}\\b`));
    }
    expect(helpText('sandbox exec').split('\n')[0]).toBe('Usage: rlm sandbox exec [CODE] [--file F] [--context-file F] [--timeout S] [--json]');
    expect(helpText('sandbox exec')).toMatch(/--timeout S +limit of the cell, in seconds \(default 60\)/);
    expect(helpText('sandbox check')).toMatch(/--runtime NAME/);
  });

  it("shows a command's own variant of a shared flag", () => {
    expect(helpText('demo')).toMatch(/--log-dir DIR +where the trajectory goes \(default .*rlm-demo\)/);
    expect(helpText('run')).toMatch(/--log-dir DIR +write the run's trajectory/);
    expect(helpText('doctor').split('\n')[0]).toBe('Usage: rlm doctor [--config FILE] [--json]');
    expect(helpText('view').split('\n')[0]).toBe('Usage: rlm view [DIR | FILE] [--port N] [--no-open]');
  });

  it('covers every flag of the table on some page', () => {
    const shown = ALL_COMMANDS.map(helpText).join('\n');
    for (const flag of FLAGS) expect(shown).toContain(`--${flag.name}`);
  });
});
