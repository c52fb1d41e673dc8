/**
 * The built, bundled `rlm` command starts light: its version and each help page load no package
 * (no zod, provider SDK or dockerode), as the unit test (orchestrator/src/cli/start-up.test.ts)
 * proves of the sources; here the bundler's chunks are checked too. A hook preloaded through
 * NODE_OPTIONS records every module the process loads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADED_MODULES_ENV, MODULE_LOAD_RECORDER, readLoadedPackages } from '../orchestrator/src/testing/loaded-modules.js';
import { RLM_BIN, runRlm } from './support/rlm-process.js';

const ORCHESTRATOR = path.dirname(path.dirname(RLM_BIN));

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-start-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** Runs the built `rlm args…` recording what it loads besides its own files and Node's built-ins. */
async function rlmRecorded(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const record = path.join(scratch, `loaded-${Math.random().toString(36).slice(2)}.json`);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$/.test(key)) env[key] = value;
  Object.assign(env, { NODE_OPTIONS: `--import ${MODULE_LOAD_RECORDER}`, [LOADED_MODULES_ENV]: record }, extraEnv);
  const exit = await runRlm(args, { env, cwd: scratch });
  const own = [path.join(ORCHESTRATOR, 'bin'), path.join(ORCHESTRATOR, 'dist')];
  return { ...exit, packages: await readLoadedPackages(record, { own, relativeTo: path.dirname(ORCHESTRATOR) }) };
}

describe('the built rlm command starts light', () => {
  it.each([
    ['--version', /^\d+\.\d+\.\d+\n$/],
    ['--help', /^Usage: rlm \[query\] \[options\]/],
    ['view --help', /^Usage: rlm view/],
    ['sandbox --help', /^Usage: rlm sandbox/],
    ['sandbox build --help', /^Usage: rlm sandbox build/],
    ['sandbox exec --help', /^Usage: rlm sandbox exec/],
    ['doctor --help', /^Usage: rlm doctor/],
    ['demo --help', /^Usage: rlm demo/],
  ])('rlm %s prints its text without loading any package', async (command, prints) => {
    const result = await rlmRecorded(command.split(' '));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(prints);
    expect(result.packages).toEqual([]);
  });

  it('records the packages a command does load: `rlm doctor` loads dockerode and zod', async () => {
    // No Docker engine at that socket: the check fails at once, nothing is contacted.
    const result = await rlmRecorded(['doctor', '--json'], { DOCKER_HOST: `unix://${path.join(scratch, 'no-docker.sock')}` });
    expect(result.code).toBe(1);
    expect(result.packages).toEqual(expect.arrayContaining(['dockerode', 'zod']));
  });
});
