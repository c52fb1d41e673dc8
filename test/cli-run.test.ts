/**
 * The built `rlm` command's main job, spawned as a user would run it, against local servers that
 * speak the OpenAI protocol, with real sandboxes: context sources, output, config precedence,
 * errors, Ctrl-C, `rlm demo` and `rlm doctor`.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createDockerClient, listSandboxes } from 'rlm';
import { parseOwner } from '../orchestrator/src/sandbox/reaper.js';
import { startFakeAnthropicServer } from '../orchestrator/src/testing/fake-anthropic-server.js';
import { startFakeOpenAIServer, type ChatRequestBody, type FakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';

function rlm(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; stdin?: string; onSpawn?: (pid: number, kill: (signal: NodeJS.Signals) => void) => void } = {},
) {
  const { onSpawn, env, ...rest } = options;
  return runRlm(args, {
    ...rest,
    env: cleanEnv(env),
    ...(onSpawn ? { onSpawn: (child: ChildProcessWithoutNullStreams) => child.pid !== undefined && onSpawn(child.pid, (signal) => child.kill(signal)) } : {}),
  });
}

const fence = (code: string) => `Let me look.\n\`\`\`repl\n${code}\n\`\`\``;

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** A root model that answers with one cell running `code` (which should call FINAL). */
async function oneCellModel(code: string): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(() => fence(code));
  servers.push(server);
  return server;
}

const openai = (server: FakeOpenAIServer) => ['--backend', 'openai', '--base-url', server.baseURL];
const withKey = { OPENAI_API_KEY: 'sk-test-cli-key' };

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'rlm-cli-run-'));
}

describe('rlm [query]', () => {
  it('answers a query over a context file: the answer on stdout, exit 0', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'notes.txt'), 'the vault code is 4711\n');
    const server = await oneCellModel('FINAL(context.match(/code is (\\d+)/)[1])');
    const result = await rlm(['What is the vault code?', '--context-file', 'notes.txt', ...openai(server)], { cwd: dir, env: withKey });
    expect(result.stdout).toBe('4711\n');
    expect(result.code).toBe(0);
    // The root model saw the query, never the context.
    expect(JSON.stringify(server.requests[0]?.messages)).toContain('What is the vault code?');
    expect(JSON.stringify(server.requests[0]?.messages)).not.toContain('4711');
    expect(server.received[0]?.headers.authorization).toBe('Bearer sk-test-cli-key');
  });

  it('makes several files a map of path → content, and reads --context-dir with --glob', async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, 'docs', 'deep'), { recursive: true });
    await writeFile(path.join(dir, 'a.txt'), 'A');
    await writeFile(path.join(dir, 'b.txt'), 'B');
    await writeFile(path.join(dir, 'docs', 'one.md'), '# one');
    await writeFile(path.join(dir, 'docs', 'deep', 'two.md'), '# two');
    await writeFile(path.join(dir, 'docs', 'skip.txt'), 'not markdown');
    const server = await oneCellModel('FINAL(JSON.stringify(context))');

    const [files, tree] = await Promise.all([
      rlm(['q', '--context-file', 'a.txt', '--context-file', 'b.txt', ...openai(server)], { cwd: dir, env: withKey }),
      rlm(['q', '--context-dir', 'docs', '--glob', '**/*.md', ...openai(server)], { cwd: dir, env: withKey }),
    ]);
    expect(files.code).toBe(0);
    expect(JSON.parse(files.stdout)).toEqual({ 'a.txt': 'A', 'b.txt': 'B' });
    expect(tree.code).toBe(0);
    expect(JSON.parse(tree.stdout)).toEqual({ 'deep/two.md': '# two', 'one.md': '# one' });
  });

  it('reads the context from standard input with -', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the cell's code holds a template literal
    const server = await oneCellModel('FINAL(`${context.length} chars: ${context.trim()}`)');
    const result = await rlm(['q', '-', ...openai(server)], { env: withKey, stdin: 'piped text\n' });
    expect(result.stdout).toBe('11 chars: piped text\n');
    expect(result.code).toBe(0);
  });

  it('with --json prints exactly one JSON object on stdout, with usage per model', async () => {
    const dir = await tempDir();
    const server = await oneCellModel('FINAL("forty-two")');
    const result = await rlm(['q', '--context', 'x', '--model', 'gpt-5-mini', '--json', '--log-dir', dir, ...openai(server)], { env: withKey });
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(Object.keys(json)).toEqual(expect.arrayContaining(['answer', 'success', 'error', 'iterations', 'usage', 'costUsd', 'durationMs', 'trajectoryFile']));
    expect(json).toMatchObject({ answer: 'forty-two', success: true, error: null, iterations: 1 });
    expect(json.usage).toEqual({
      'gpt-5-mini': expect.objectContaining({ calls: 1, inputTokens: expect.any(Number), outputTokens: expect.any(Number), costUsd: expect.any(Number) }),
    });
    expect(json.costUsd).toBeGreaterThan(0);
    expect(typeof json.trajectoryFile).toBe('string');
    expect(existsSync(json.trajectoryFile as string)).toBe(true);
    expect(path.dirname(json.trajectoryFile as string)).toBe(dir);
  });

  it('runs the root and the sub model on different servers', async () => {
    const rootServer = await oneCellModel('FINAL(llm_query("ping"))');
    const subServer = await startFakeOpenAIServer((body) => `pong from ${body.model}`);
    servers.push(subServer);
    const result = await rlm(
      [
        'q',
        '--context',
        'x',
        ...openai(rootServer),
        '--model',
        'root-model',
        '--sub-backend',
        'custom',
        '--sub-base-url',
        subServer.baseURL,
        '--sub-model',
        'small-model',
        '--json',
      ],
      { env: withKey },
    );
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout) as { answer: string; usage: Record<string, { calls: number }> };
    expect(json.answer).toBe('pong from small-model');
    expect(rootServer.requests.map((r) => r.model)).toEqual(['root-model']);
    expect(subServer.requests.map((r) => r.model)).toEqual(['small-model']);
    // The root's key never goes to the sub's provider.
    expect(subServer.received[0]?.headers.authorization).not.toContain('sk-test-cli-key');
    expect(Object.keys(json.usage).sort()).toEqual(['root-model', 'small-model']);
  });

  it('runs the root model on Anthropic and the sub model on a local vLLM', async () => {
    const anthropic = await startFakeAnthropicServer();
    anthropic.defaultReply = { text: fence('FINAL(llm_query("ping"))'), usage: { input_tokens: 900, output_tokens: 20, cache_read_input_tokens: 800 } };
    const vllm = await startFakeOpenAIServer(() => 'pong');
    servers.push(vllm);
    try {
      const result = await rlm(
        [
          'q',
          '--context',
          'x',
          '--backend',
          'anthropic',
          '--base-url',
          anthropic.url,
          '--model',
          'claude-sonnet-5-5',
          '--sub-backend',
          'vllm',
          '--sub-base-url',
          vllm.baseURL,
          '--sub-model',
          'qwen3-8b',
          '--json',
        ],
        { env: { ANTHROPIC_API_KEY: 'sk-ant-test' } },
      );
      expect(result.code).toBe(0);
      const json = JSON.parse(result.stdout) as { answer: string; usage: Record<string, { calls: number; cacheReadTokens: number }> };
      expect(json.answer).toBe('pong');
      expect(json.usage['claude-sonnet-5-5']).toMatchObject({ calls: 1, cacheReadTokens: 800 });
      expect(json.usage['qwen3-8b']?.calls).toBe(1);
      expect(JSON.stringify(anthropic.requests.find((r) => r.path.startsWith('/v1/messages'))?.headers)).toContain('sk-ant-test');
      expect(vllm.received[0]?.headers.authorization ?? '').not.toContain('sk-ant-test');
    } finally {
      await anthropic.close();
    }
  });

  it('takes settings from the config file, the environment beating it and a flag beating both', async () => {
    const dir = await tempDir();
    const server = await oneCellModel('FINAL("ok")');
    await writeFile(
      path.join(dir, 'rlm.config.yaml'),
      [
        'root:',
        '  backend: custom',
        `  baseURL: ${server.baseURL}`,
        '  model: from-config',
        '  apiKeyEnv: MY_PROXY_KEY',
        'limits:',
        '  maxIterations: 3',
        'logDir: trajectories',
        '',
      ].join('\n'),
    );
    const env = { MY_PROXY_KEY: 'proxy-key-value' };
    // Three runs at once; each one's --json output names the model it used.
    const run = async (args: string[], extraEnv: NodeJS.ProcessEnv) => {
      const result = await rlm(['q', '--context', 'x', '--json', ...args], { cwd: dir, env: { ...env, ...extraEnv } });
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.code).toBe(0);
      const json = JSON.parse(result.stdout) as { trajectoryFile: string; usage: Record<string, unknown> };
      return { models: Object.keys(json.usage), trajectoryFile: json.trajectoryFile };
    };
    const [fromConfig, fromEnv, fromFlag] = await Promise.all([
      run([], {}),
      run([], { RLM_MODEL: 'from-env' }),
      run(['--model', 'from-flag'], { RLM_MODEL: 'from-env' }),
    ]);
    expect(fromConfig.models).toEqual(['from-config']);
    expect(fromEnv.models).toEqual(['from-env']);
    expect(fromFlag.models).toEqual(['from-flag']);
    expect(server.requests.map((r: ChatRequestBody) => r.model).sort()).toEqual(['from-config', 'from-env', 'from-flag']);
    // logDir in the config file is relative to the file.
    expect(path.dirname(fromConfig.trajectoryFile)).toBe(path.join(dir, 'trajectories'));
    expect(server.received.map((r) => r.headers.authorization)).toEqual(Array(3).fill('Bearer proxy-key-value'));
  });

  it('names the file and the key of an unknown config key, exit 2', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, 'rlm.config.yaml'), 'root:\n  backend: openai\n  modle: gpt-5\n');
    const result = await rlm(['q', '--context', 'x'], { cwd: dir, env: withKey });
    expect(result.stderr).toBe('rlm: rlm.config.yaml: root.modle: unknown key (did you mean "model"?)\n');
    expect(result.code).toBe(2);
  });

  it('says in one line which variable to set when the key is missing, exit 2 (a setting to fix)', async () => {
    const [result, anthropic] = await Promise.all([rlm(['q', '--context', 'x', '--backend', 'openai']), rlm(['q', '--context', 'x'])]);
    expect(result.stderr).toBe('rlm: apiKey: openai has no API key; set OPENAI_API_KEY\n');
    expect(result.code).toBe(2);
    expect(anthropic.stderr.trim().split('\n')).toHaveLength(1);
    expect(anthropic.stderr).toContain('ANTHROPIC_API_KEY');
    expect(anthropic.code).toBe(2);
  });

  it('exits 2 with one line and a hint on bad usage', async () => {
    const [bogus, number, noContext, missing] = await Promise.all([
      rlm(['q', '--context', 'x', '--bogus']),
      rlm(['q', '--context', 'x', '--max-iterations', 'many']),
      rlm(['q']),
      rlm(['q', '--context-file', '/nonexistent/file.txt'], { env: withKey }),
    ]);
    expect(bogus.stderr).toMatch(/^rlm: .*--bogus.*\nRun `rlm --help` for usage\.\n$/);
    expect(bogus.code).toBe(2);
    expect(number.stderr).toMatch(/^rlm: --max-iterations must be a whole number \(got "many"\)\n/);
    expect(number.code).toBe(2);
    expect(noContext.stderr).toMatch(/^rlm: no context/);
    expect(noContext.code).toBe(2);
    expect(missing.stderr).toBe('rlm: --context-file: cannot read /nonexistent/file.txt: ENOENT\n');
    expect(missing.code).toBe(1);
  });

  it('prints the usage on stderr and exits 2 when run with no arguments; --help prints it on stdout and exits 0', async () => {
    const [none, help] = await Promise.all([rlm([]), rlm(['--help'])]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^Usage: rlm \[query\] \[options\]\n/);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toBe(none.stderr);
  });

  it('reads a negative number as a value, with a space or =, and refuses it naming the flag and its range, exit 2', async () => {
    const [spaced, joined, depth] = await Promise.all([
      rlm(['q', '--context', 'x', '--budget', '-1']),
      rlm(['q', '--context', 'x', '--budget=-1']),
      rlm(['q', '--context', 'x', '--max-depth', '-2']),
    ]);
    expect(spaced.stderr).toBe('rlm: --budget must be a number greater than 0 (got -1)\nRun `rlm --help` for usage.\n');
    expect(spaced.code).toBe(2);
    expect(joined.stderr).toBe(spaced.stderr);
    expect(joined.code).toBe(2);
    expect(depth.stderr).toBe('rlm: --max-depth must be a whole number, 0 or more (got -2)\nRun `rlm --help` for usage.\n');
  });

  it('suggests the nearest flag for an unknown one, and the nearest command for a mistyped one, exit 2', async () => {
    const [flag, command] = await Promise.all([rlm(['q', '--context', 'x', '--budgte', '1']), rlm(['sandbx', 'ls'])]);
    expect(flag.stderr).toBe('rlm: unknown option --budgte (did you mean --budget?)\nRun `rlm --help` for usage.\n');
    expect(flag.code).toBe(2);
    expect(command.stderr).toBe(
      'rlm: unknown command "sandbx" (did you mean "rlm sandbox"?)\nTo ask "sandbx" as the question, write: rlm --query sandbx …; `rlm --help` lists the commands.\n',
    );
    expect(command.code).toBe(2);
  });

  for (const [signal, name, code] of [
    ['SIGINT', 'Ctrl-C', 130],
    ['SIGTERM', 'SIGTERM', 143],
  ] as const) {
    it(`on ${name} removes the run's sandboxes and exits ${code}`, async () => {
      const docker = createDockerClient();
      let childPid = 0;
      const ownedByChild = async () => (await listSandboxes({ docker })).filter((s) => parseOwner(s.owner)?.pid === childPid);
      let kill!: (signal: NodeJS.Signals) => void;
      let whileRunning: Awaited<ReturnType<typeof ownedByChild>> = [];
      // The root model answers with a cell that makes a sub-call, then runs for a minute; the sub-call
      // arriving here says the cell runs, so that is when Ctrl-C comes.
      const server = await startFakeOpenAIServer(async (_body, index) => {
        if (index === 0) return fence('llm_query("the cell is running"); await new Promise((resolve) => setTimeout(resolve, 60_000)); FINAL("too late")');
        whileRunning = await ownedByChild();
        kill(signal);
        return 'interrupted before this mattered';
      });
      servers.push(server);
      const result = await rlm(['q', '--context', 'x', ...openai(server)], {
        env: withKey,
        onSpawn: (pid, killChild) => {
          childPid = pid;
          kill = killChild;
        },
      });
      expect(result.code).toBe(code);
      expect(result.stderr).toContain('interrupted');
      expect(whileRunning).toHaveLength(1);
      expect(await ownedByChild()).toEqual([]);
    });
  }
});

describe('rlm demo', () => {
  it('runs offline with a scripted model, a real sandbox and sub-calls, and writes a trajectory', async () => {
    const dir = await tempDir();
    const result = await rlm(['demo', '--json', '--log-dir', dir]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/SCRIPTED/);
    const json = JSON.parse(result.stdout) as {
      answer: string;
      success: boolean;
      scripted: boolean;
      iterations: number;
      usage: Record<string, { calls: number }>;
      trajectoryFile: string;
    };
    expect(json).toMatchObject({ success: true, scripted: true });
    expect(json.answer).toContain('INC-2291');
    expect(json.answer).toContain('487 minutes');
    expect(json.answer).toContain('CHG-4471');
    expect(json.iterations).toBeGreaterThanOrEqual(3);
    expect(json.usage['scripted-demo-sub']?.calls).toBeGreaterThan(4);
    const lines = (await readFile(json.trajectoryFile, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string });
    expect(lines[0]?.type).toBe('metadata');
    expect(lines.filter((l) => l.type === 'iteration')).toHaveLength(json.iterations);
    // The child RLM started by rlm_query is nested in the trajectory.
    expect(JSON.stringify(lines)).toContain('"kind":"rlm_query"');
  });
});

describe('rlm doctor', () => {
  it('checks Node, Docker and the image, and lists set keys by name only', async () => {
    const result = await rlm(['doctor'], { env: { OPENAI_API_KEY: 'sk-do-not-print-me' } });
    expect(result.code).toBe(0);
    for (const name of ['node', 'docker engine', 'docker mode', 'resource limits', 'gVisor (runsc)', 'sandbox image', 'provider keys']) {
      expect(result.stdout).toMatch(new RegExp(`^(ok  |warn|FAIL)  ${name.replace(/[()]/g, '\\$&')}`, 'm'));
    }
    expect(result.stdout).toContain('OPENAI_API_KEY');
    expect(result.stdout).not.toContain('sk-do-not-print-me');
  });

  it('fails, with the fix, when Docker is unreachable', async () => {
    const result = await rlm(['doctor', '--json'], { env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' } });
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as { ok: boolean; checks: Array<{ name: string; status: string; fix?: string }> };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.name === 'docker engine')).toMatchObject({ status: 'fail', fix: expect.stringContaining('DOCKER_HOST') });
  });
});
