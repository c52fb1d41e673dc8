import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES, DEFAULT_MODELS } from '../../models/create-backend.js';
import { DEFAULT_SANDBOX_LIMITS } from '../../sandbox/container-spec.js';
import { SETTING_SOURCES } from '../config/settings.js';
import { COMMANDS, type CommandName, FLAGS, type FlagSpec, findCommand, flagsOf } from './cli-flags.js';

const ALL_COMMANDS = Object.keys(COMMANDS) as CommandName[];
const flag = (name: string, command: CommandName = 'run') => flagsOf(command).find((f) => f.name === name) as FlagSpec;

describe('the flag table', () => {
  it('gives no command two flags of one name or one short name', () => {
    for (const command of ALL_COMMANDS) {
      const flags = flagsOf(command);
      expect(new Set(flags.map((f) => f.name)).size, command).toBe(flags.length);
      const shorts = flags.flatMap((f) => (f.short ? [f.short] : []));
      expect(new Set(shorts).size, command).toBe(shorts.length);
    }
  });

  it('gives every flag a value name when it takes a value, and a help text', () => {
    for (const f of FLAGS as readonly FlagSpec[]) {
      expect(f.help.length, f.name).toBeGreaterThan(0);
      if (f.type === 'string') expect(f.value, `--${f.name}`).toBeDefined();
    }
  });

  it('lists in --backend exactly the backends there are, and the default model in --model', () => {
    const listed = [...flag('backend').help.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    expect(listed).toEqual(BACKEND_NAMES);
    expect(flag('model').help).toContain(`\`${DEFAULT_MODELS.anthropic}\``);
  });

  it("shows the sandbox's default memory", () => {
    expect(Number(flag('memory-mb').default)).toBe(DEFAULT_SANDBOX_LIMITS.memoryBytes / 2 ** 20);
  });

  it('gives the settings one source per setting flag, each with its variable', () => {
    expect(SETTING_SOURCES.map((s) => s.flag)).toContain('budget');
    expect(SETTING_SOURCES.find((s) => s.flag === 'budget')).toEqual({
      path: ['limits', 'maxCostUsd'],
      flag: 'budget',
      multiple: false,
      kind: 'number',
      env: 'RLM_BUDGET',
    });
    expect(SETTING_SOURCES.find((s) => s.flag === 'model-alias')).toMatchObject({ multiple: true, kind: 'model-alias' });
    const envs = SETTING_SOURCES.flatMap((s) => (s.env ? [s.env] : []));
    expect(new Set(envs).size).toBe(envs.length);
  });

  it('finds a command by its words or an alias', () => {
    expect(findCommand('sandbox exec')).toBe('sandbox exec');
    expect(findCommand('sandbox list')).toBe('sandbox ls');
    expect(findCommand('list')).toBeUndefined();
    expect(findCommand('sandbox nope')).toBeUndefined();
  });
});
