/**
 * The `rlm` package as a user gets it: `pnpm pack` of orchestrator/ (from the build `pnpm test`
 * made), `npm install` of the tarball into an empty folder outside the repository, then, from
 * there, a consumer's TypeScript file typechecked strictly (`nodenext`, `skipLibCheck: false`)
 * with the repository's TypeScript and run (a Python cell in a real sandbox, Pyodide coming from the
 * `pyodide` dependency), and `rlm demo` run through the installed bin. One pack and one install serve
 * every test. Needs the npm registry for the package's dependencies.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ORCHESTRATOR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'orchestrator');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const VERSION = (JSON.parse(await readFile(path.join(ORCHESTRATOR, 'package.json'), 'utf8')) as { version: string }).version;

/** The environment of every child: no provider keys, no RLM_* settings, no npm settings of the repository's. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    // pnpm's npm_* variables would carry the workspace's settings into npm; the registry stays.
    if (key === 'npm_config_registry' || !/_API_KEY$|^HF_TOKEN$|^RLM_|^NODE_OPTIONS$|^npm_|^PNPM_/i.test(key)) env[key] = value;
  }
  return env;
}

const CONSUMER = `import { RLM, RlmError, createAnthropicBackend, type CompleteOptions, type ParsedTrajectory, type RlmResult } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';

// A backend factory the package now exports, with an option only Anthropic has.
const anthropic = createAnthropicBackend({ apiKey: 'not-a-key', maxRetries: 0 });
const options: CompleteOptions = { onTextDelta: () => {} };
const parsed: ParsedTrajectory | null = null;

const rlm = new RLM({
  root: { backend: new ScriptedBackend(['\`\`\`python\\nFINAL(str(6 * 7))\\n\`\`\`']), model: 'scripted' },
  language: 'python',
});
const result: RlmResult = await rlm.completion({ context: 'unused', query: 'What is six times seven?' });
console.log(JSON.stringify({ answer: result.answer, success: result.success, backend: anthropic.name, isError: RlmError.isInstance(result.error), options: typeof options.onTextDelta, parsed }));
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2023',
    lib: ['ES2023'],
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    // Nothing ambient but what the package's types reference themselves (TypeScript 6's default).
    types: [],
    outDir: 'out',
  },
  files: ['consumer.ts'],
};

let dir: string;
let tarball: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-package-install-'));
  const env = cleanEnv();
  await run('pnpm', ['pack', '--pack-destination', dir], { cwd: ORCHESTRATOR, env });
  const packed = (await readdir(dir)).filter((name) => name.endsWith('.tgz'));
  expect(packed).toEqual([`rlm-${VERSION}.tgz`]);
  tarball = path.join(dir, packed[0] ?? '');
  const project = path.join(dir, 'consumer');
  await mkdir(project);
  await writeFile(path.join(project, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module' })}\n`);
  await run('npm', ['install', '--no-audit', '--no-fund', tarball], { cwd: project, env, maxBuffer: 16 * 1024 * 1024 });
  await writeFile(path.join(project, 'consumer.ts'), CONSUMER);
  await writeFile(path.join(project, 'tsconfig.json'), `${JSON.stringify(TSCONFIG, null, 2)}\n`);
}, 600_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const project = () => path.join(dir, 'consumer');

describe('the packed rlm package', () => {
  it('depends on no workspace package and leaves Pyodide to the pyodide dependency', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.trim().split('\n');
    expect(files).toContain('package/dist/bundle/index.js');
    expect(files).toContain('package/dist/bundle/index.d.ts');
    expect(files).toContain('package/dist/sandbox-assets/repl-server.js');
    expect(files).toContain('package/dist/viewer-assets/viewer.js');
    expect(files).toContain('package/dist/sandbox-assets/pyodide/python-snapshot.bin');
    expect(files.filter((file) => /pyodide\.asm\.wasm|python_stdlib\.zip/.test(file))).toEqual([]);
    const manifest = JSON.parse(await readFile(path.join(project(), 'node_modules', 'rlm', 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(Object.keys(manifest.dependencies).filter((name) => name.startsWith('@rlm/'))).toEqual([]);
    expect(manifest.dependencies.pyodide).toMatch(/^\d+\.\d+\.\d+$/);
    const types = await readFile(path.join(project(), 'node_modules', 'rlm', 'dist', 'bundle', 'index.d.ts'), 'utf8');
    expect(types).not.toMatch(/from ['"]@rlm\//);
  });

  it('typechecks a consumer strictly and runs it: a Python cell in a sandbox answers', async () => {
    await run(process.execPath, [TSC, '-p', project()], { cwd: project(), env: cleanEnv() }).catch((error: { stdout?: string }) => {
      throw new Error(`tsc failed:\n${error.stdout ?? String(error)}`);
    });
    const { stdout } = await run(process.execPath, [path.join(project(), 'out', 'consumer.js')], { cwd: project(), env: cleanEnv() });
    expect(JSON.parse(stdout)).toEqual({ answer: '42', success: true, backend: 'anthropic', isError: false, options: 'function', parsed: null });
  });

  it('runs `rlm --version` and `rlm demo` from the installed bin', async () => {
    const bin = path.join(project(), 'node_modules', '.bin', 'rlm');
    const version = await run(bin, ['--version'], { cwd: project(), env: cleanEnv() });
    expect(version.stdout.trim()).toBe(VERSION);
    const demo = await run(bin, ['demo', '--json', '--quiet', '--log-dir', path.join(dir, 'logs')], { cwd: project(), env: cleanEnv() });
    const json = JSON.parse(demo.stdout) as { answer: string; success: boolean; scripted: boolean };
    expect(json).toMatchObject({ success: true, scripted: true });
    expect(json.answer).toContain('INC-2291');
  });
});
