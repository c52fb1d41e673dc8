/**
 * What `rlm` loads to start: its version, its help and each command's help come from light
 * modules, without zod, the provider SDKs or dockerode (run-cli.ts says how). The command runs in a
 * child process from its TypeScript sources (no build needed) with a hook that records every module
 * the process loads; a command that does load those packages shows that the record sees them.
 * test/cli-start.test.ts checks the same of the built, bundled command.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOADED_MODULES_ENV, MODULE_LOAD_RECORDER, readLoadedPackages } from '../testing/loaded-modules.js';

const ORCHESTRATOR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = path.join(ORCHESTRATOR, 'src', 'cli', 'main.ts');
const VERSION = (JSON.parse(await readFile(path.join(ORCHESTRATOR, 'package.json'), 'utf8')) as { version: string }).version;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'rlm-start-up-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

interface Started {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What it loaded besides the orchestrator's sources and Node's built-ins (see readLoadedPackages). */
  packages: string[];
}

/** Runs `rlm args…` from the sources in an empty directory, without provider keys or RLM_* settings. */
async function startRlm(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Started> {
  const record = path.join(scratch, `loaded-${Math.random().toString(36).slice(2)}.json`);
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$/.test(key)) env[key] = value;
  Object.assign(env, { [LOADED_MODULES_ENV]: record }, extraEnv);
  // Type stripping cannot run parameter properties, which the engine's sources use: transform them.
  const node = ['--experimental-transform-types', '--disable-warning=ExperimentalWarning', '--conditions=rlm-source', '--import', MODULE_LOAD_RECORDER];
  const child = spawn(process.execPath, [...node, MAIN, ...args], { cwd: scratch, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const packages = await readLoadedPackages(record, { own: [path.join(ORCHESTRATOR, 'src')], relativeTo: path.dirname(ORCHESTRATOR) });
  return { code, stdout, stderr, packages };
}

describe('rlm start-up', () => {
  it.each([
    ['--version', `${VERSION}\n`],
    ['--help', 'Usage: rlm [query] [options]'],
    ['question --help', 'Usage: rlm [query] [options]'],
    ['view --help', 'Usage: rlm view'],
    ['sandbox --help', 'Usage: rlm sandbox'],
    ['sandbox exec --help', 'Usage: rlm sandbox exec'],
    ['help sandbox build', 'Usage: rlm sandbox build'],
    ['doctor --help', 'Usage: rlm doctor'],
    ['demo --help', 'Usage: rlm demo'],
    ['eval --help', 'Usage: rlm eval DATASET'],
    ['eval generate --help', 'Usage: rlm eval generate'],
    ['help eval rescore', 'Usage: rlm eval rescore'],
    ['serve --help', 'Usage: rlm serve [options]'],
    ['serve tokens create --help', 'Usage: rlm serve tokens create'],
    ['help serve teams create', 'Usage: rlm serve teams create NAME'],
  ])('rlm %s prints its text without loading any package (no zod, provider SDK or dockerode)', async (command, prints) => {
    const started = await startRlm(command.split(' '));
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    expect(started.stdout.startsWith(prints)).toBe(true);
    expect(started.packages).toEqual([]);
  });

  it('an unknown flag is answered with the nearest one without loading any package', async () => {
    const started = await startRlm(['q', '--budgte', '1']);
    expect(started.code).toBe(2);
    expect(started.stderr).toBe('rlm: unknown option --budgte (did you mean --budget?)\nRun `rlm --help` for usage.\n');
    expect(started.packages).toEqual([]);
  });

  it('a usage error of a command that loads lazily is still its own, and loads no package', async () => {
    const started = await startRlm(['view', '--port', 'eighty']);
    expect(started.code).toBe(2);
    expect(started.stderr).toBe('rlm: --port must be a port number from 1 to 65535 (got "eighty")\nRun `rlm view --help` for usage.\n');
    expect(started.packages).toEqual([]);
  });

  it('records the packages a command does load: `rlm doctor` loads dockerode and zod', async () => {
    // No Docker engine at that socket: the check fails at once, nothing is contacted.
    const started = await startRlm(['doctor', '--json'], { DOCKER_HOST: `unix://${path.join(scratch, 'no-docker.sock')}` });
    expect(started.code).toBe(1);
    expect(started.stdout).toContain('"docker engine"');
    expect(started.packages).toEqual(expect.arrayContaining(['dockerode', 'zod']));
  });
});
