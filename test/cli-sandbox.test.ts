/**
 * The built `rlm` command, spawned as a user would run it.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRlm } from './support/rlm-process.js';

const rlm = (args: string[], env: NodeJS.ProcessEnv = {}) => runRlm(args, { env: { ...process.env, ...env } });

describe('rlm', () => {
  it('prints its version and help', async () => {
    const [version, help] = await Promise.all([rlm(['--version']), rlm(['sandbox', '--help'])]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('rlm sandbox <command>');
  });

  it("exits 2 with one line and the command's help hint on a bad flag, with the nearest flag", async () => {
    const [bogus, typo] = await Promise.all([rlm(['sandbox', 'ls', '--bogus']), rlm(['sandbox', 'prune', '--imags'])]);
    expect(bogus.code).toBe(2);
    expect(bogus.stderr).toBe('rlm: unknown option --bogus for rlm sandbox ls\nRun `rlm sandbox ls --help` for usage.\n');
    expect(typo.stderr).toBe('rlm: unknown option --imags for rlm sandbox prune (did you mean --images?)\nRun `rlm sandbox prune --help` for usage.\n');
  });

  it('prints each sandbox command its own help, not the group page', async () => {
    const subs = ['build', 'ls', 'prune', 'check', 'exec'];
    const [group, ...pages] = await Promise.all([rlm(['sandbox', '--help']), ...subs.map((sub) => rlm(['sandbox', sub, '--help']))]);
    subs.forEach((sub, i) => {
      const page = pages[i];
      expect(page?.code, sub).toBe(0);
      expect(page?.stdout.split('\n')[0], sub).toMatch(new RegExp(`^Usage: rlm sandbox ${sub}( |$)`));
      expect(page?.stdout, sub).not.toBe(group.stdout);
    });
    expect(pages[4]?.stdout).toContain('--timeout S');
  });

  it('prints the group page on stderr with exit 2 when no sandbox command is given, and suggests one for a typo', async () => {
    const [none, typo] = await Promise.all([rlm(['sandbox']), rlm(['sandbox', 'prnue'])]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: rlm sandbox <command> \[options\]\n/);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/^rlm: unknown sandbox command "prnue" \(did you mean "rlm sandbox prune"\?\); expected build, ls, prune, check or exec\n/);
  });

  it('refuses a negative --timeout of sandbox exec with its range', async () => {
    const result = await rlm(['sandbox', 'exec', '1', '--timeout', '-5']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('rlm: --timeout must be a number of seconds greater than 0 (got -5)\nRun `rlm sandbox exec --help` for usage.\n');
  });

  it('says in one line how to fix an unreachable Docker engine, exit 4, no stack trace', async () => {
    const result = await rlm(['sandbox', 'ls'], { DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(result.code).toBe(4);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/nonexistent\/docker\.sock/);
    expect(result.stderr).toMatch(/DOCKER_HOST/);
  });

  it('runs a cell in a fresh sandbox with a context file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-test-'));
    const contextFile = path.join(dir, 'doc.txt');
    await writeFile(contextFile, 'alpha\nbeta\ngamma\n');
    const result = await rlm(['sandbox', 'exec', 'print(context.trim().split("\\n").length); console.error("to stderr")', '--context-file', contextFile]);
    expect(result.stderr).toContain('to stderr');
    expect(result.stdout).toBe('3\n');
    expect(result.code).toBe(0);
  });

  it('exits 1 and names the file when a context file cannot be read', async () => {
    const result = await rlm(['sandbox', 'exec', '1', '--context-file', '/nonexistent/file.txt']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe('rlm: --context-file: cannot read /nonexistent/file.txt: ENOENT');
  });

  it('verifies the isolation of a real sandbox with `sandbox check`', async () => {
    const result = await rlm(['sandbox', 'check', '--json']);
    const report = JSON.parse(result.stdout) as { ok: boolean; findings: Array<{ name: string; ok: boolean; detail: string }> };
    expect(report.findings.filter((f) => !f.ok)).toEqual([]);
    expect(report.findings.map((f) => f.name)).toEqual(
      expect.arrayContaining(['network: loopback only', "host's loopback unreachable", 'root filesystem read-only', 'non-root user', 'no host environment']),
    );
    expect(result.code).toBe(0);
  });
});
