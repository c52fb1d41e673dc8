import { copyFileSync, existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AbortedError, RlmError, errorMessage } from '../errors.js';
import { createFakeClaude, FAKE_CLAUDE_PATH, type FakeClaude } from '../testing/fake-claude-cli/index.js';
import { claudeCliEnvironment, createClaudeCliBackend, renderConversation, type ClaudeCliOptions } from './claude-cli-backend.js';
import { ModelCallError, type CompletionRequest } from './model-backend.js';
import { manualClock } from '../testing/manual-clock.js';
import { isAlive } from '../testing/process-liveness.js';

/** Folders the tests made, removed after each. */
const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

function setup(options: ClaudeCliOptions = {}, extraEnv: NodeJS.ProcessEnv = {}) {
  const fake = createFakeClaude();
  scratch.push(fake.dir);
  const backend = createClaudeCliBackend({ env: fake.env(extraEnv), passEnv: ['FAKE_CLAUDE_DIR'], initialDelayMs: 1, ...options });
  return { fake, backend };
}

const ask = (content: string, extra: Partial<CompletionRequest> = {}): CompletionRequest => ({
  model: 'sonnet',
  messages: [{ role: 'user', content }],
  ...extra,
});

/** Waits for `pid` to die: a signalled process goes away soon, but not synchronously. */
async function expectGone(pid: number | undefined): Promise<void> {
  expect(pid).toBeTypeOf('number');
  await vi.waitFor(() => expect(isAlive(pid!), `process ${pid} still running`).toBe(false), { timeout: 10_000, interval: 20 });
}

/** Waits until the fake has recorded `count` invocations: the CLI is running and has read its stdin. */
async function invoked(fake: FakeClaude, count = 1) {
  await vi.waitFor(() => expect(fake.invocations()).toHaveLength(count), { timeout: 10_000, interval: 20 });
  return fake.invocations();
}

function valueAfter(argv: string[], flag: string): string | undefined {
  const index = argv.lastIndexOf(flag);
  return index >= 0 ? argv[index + 1] : undefined;
}

describe('createClaudeCliBackend', () => {
  it('maps the answer, usage (cache tokens summed into input) and cost, streaming the text deltas', async () => {
    const { fake, backend } = setup();
    fake.script({
      text: 'Hello, world',
      chunks: ['Hello', ', ', 'world'],
      usage: { input_tokens: 7, cache_read_input_tokens: 1_000, cache_creation_input_tokens: 200, output_tokens: 3 },
      costUsd: 0.0123,
      model: 'claude-sonnet-4-5-20250929',
    });
    const deltas: string[] = [];
    const response = await backend.complete(ask('What is 2+2?'), { onTextDelta: (text) => deltas.push(text) });

    expect(response).toEqual({
      text: 'Hello, world',
      model: 'claude-sonnet-4-5-20250929',
      usage: { inputTokens: 1_207, outputTokens: 3, cacheReadTokens: 1_000, cacheWriteTokens: 200, reportedCostUsd: 0.0123 },
      stopReason: 'end_turn',
    });
    expect(deltas).toEqual(['Hello', ', ', 'world']);
    expect(backend.name).toBe('claude-cli');
  });

  it('runs print mode with stream-json, the model, no tools, no MCP, one turn, no session; the prompt only on stdin', async () => {
    const { fake, backend } = setup();
    const secret = 'the prompt text that must not appear in argv';
    await backend.complete(ask(secret, { model: 'claude-opus-4-1' }), {});

    const [call] = fake.invocations();
    expect(call).toBeDefined();
    const argv = call!.argv;
    expect(argv).toContain('-p');
    expect(valueAfter(argv, '--output-format')).toBe('stream-json');
    expect(argv).toContain('--verbose');
    expect(argv).toContain('--include-partial-messages');
    expect(valueAfter(argv, '--model')).toBe('claude-opus-4-1');
    expect(valueAfter(argv, '--tools')).toBe('');
    expect(argv).toContain('--strict-mcp-config');
    expect(JSON.parse(valueAfter(argv, '--mcp-config')!)).toEqual({ mcpServers: {} });
    expect(valueAfter(argv, '--permission-mode')).toBe('dontAsk');
    expect(valueAfter(argv, '--max-turns')).toBe('1');
    expect(argv).toContain('--no-session-persistence');
    expect(valueAfter(argv, '--setting-sources')).toBe('');
    expect(argv.some((arg) => arg.includes('prompt text'))).toBe(false);
    expect(call!.stdin).toBe(secret);
    expect(call!.cwd).toBe(join(fake.dir, 'home', '.cache', 'rlm', 'claude-cli'));
  });

  it('passes the system prompt in a private file that is removed after the call, never in argv', async () => {
    const { fake, backend } = setup();
    await backend.complete(ask('hi', { system: 'You are a terse assistant.' }), {});

    const [call] = fake.invocations();
    expect(call!.systemPrompt).toBe('You are a terse assistant.');
    expect(call!.argv.some((arg) => arg.includes('terse'))).toBe(false);
    expect(existsSync(valueAfter(call!.argv, '--system-prompt-file')!)).toBe(false);
  });

  it('replaces the CLI agent prompt with an empty one when the request has no system prompt', async () => {
    const { fake, backend } = setup();
    await backend.complete(ask('hi'), {});
    expect(fake.invocations()[0]!.systemPrompt).toBe('');
  });

  it('sends a multi-message conversation as a tagged transcript on stdin', async () => {
    const { fake, backend } = setup();
    await backend.complete(
      {
        model: 'sonnet',
        messages: [
          { role: 'user', content: 'Question one' },
          { role: 'assistant', content: 'Answer one' },
          { role: 'user', content: 'Question two' },
        ],
      },
      {},
    );
    const stdin = fake.invocations()[0]!.stdin;
    const tag = /\[user ([0-9a-f]{12})\]/.exec(stdin)?.[1];
    expect(tag).toBeDefined();
    expect(stdin).toContain(`[user ${tag}]\nQuestion one\n\n[assistant ${tag}]\nAnswer one\n\n[user ${tag}]\nQuestion two\n`);
    expect(stdin).toMatch(/Reply with the assistant's next message/);
  });

  it('calls onTextDelta once with the whole text when the CLI streams no deltas (json output via extraArgs)', async () => {
    const { fake, backend } = setup({ extraArgs: ['--output-format', 'json'] });
    fake.script({ text: 'whole answer' });
    const deltas: string[] = [];
    const response = await backend.complete(ask('hi'), { onTextDelta: (text) => deltas.push(text) });
    expect(response.text).toBe('whole answer');
    expect(deltas).toEqual(['whole answer']);
  });

  it('passes the CLI its own variables and maxOutputTokens, and keeps other secrets out of its environment', async () => {
    const { fake, backend } = setup(
      {},
      { ANTHROPIC_BASE_URL: 'http://127.0.0.1:1', CLAUDE_CONFIG_DIR: '/x', OPENAI_API_KEY: 'sk-secret', GITHUB_TOKEN: 'ghp' },
    );
    await backend.complete(ask('hi', { maxOutputTokens: 1234 }), {});
    const call = fake.invocations()[0]!;
    expect(call.envNames).toEqual(expect.arrayContaining(['ANTHROPIC_BASE_URL', 'CLAUDE_CONFIG_DIR', 'HOME', 'PATH', 'FAKE_CLAUDE_DIR']));
    expect(call.envNames).not.toContain('OPENAI_API_KEY');
    expect(call.envNames).not.toContain('GITHUB_TOKEN');
    expect(call.maxOutputTokensEnv).toBe('1234');
  });

  it('turns an is_error result into a ModelCallError with the CLI message, not retried', async () => {
    const { fake, backend } = setup();
    fake.script({ isError: true, text: 'Invalid API key · Please run /login' });
    const error = await backend.complete(ask('hi'), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelCallError);
    expect((error as ModelCallError).message).toBe('claude-cli sonnet: Invalid API key · Please run /login (run `claude` once to log in)');
    expect((error as ModelCallError).details.isRetryable).toBe(false);
    expect(error).toMatchObject({ kind: 'auth', fatal: true, baseUrl: undefined });
    expect(fake.invocations()).toHaveLength(1);
  });

  it('a login the CLI lacks, on stderr without a result, is `auth` and fatal too', async () => {
    const { fake, backend } = setup();
    fake.script({ exitCode: 1, stderr: 'Error: Not logged in · Please run /login\n' });
    const error = (await backend.complete(ask('hi'), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toMatchObject({ kind: 'auth', fatal: true });
    expect(error.message).toMatch(/\(run `claude` once to log in\)$/);
    expect(fake.invocations()).toHaveLength(1);
  });

  it('a model the CLI does not know is `model_not_found`, fatal, tried once, saying which settings name it', async () => {
    const { fake, backend } = setup();
    fake.script({
      isError: true,
      text: "There's an issue with the selected model (claude-nope). It may not exist or you may not have access to it. Run --model to pick a different model.",
    });
    const error = (await backend.complete(ask('hi', { model: 'claude-nope' }), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toMatchObject({ kind: 'model_not_found', fatal: true, model: 'claude-nope' });
    expect(error.message).toMatch(/\(check the model name: --model or --sub-model, or model: in the config file\)$/);
    expect(fake.invocations()).toHaveLength(1);
  });

  it.each([
    [401, 'auth'],
    [403, 'permission'],
    [404, 'model_not_found'],
  ] as const)('an API error status %i the CLI reports is `%s`, fatal, tried once', async (status, kind) => {
    const { fake, backend } = setup();
    fake.script({ isError: true, apiErrorStatus: status, text: `API Error: ${status}` });
    const error = (await backend.complete(ask('hi'), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toMatchObject({ kind, fatal: true, details: { statusCode: status, isRetryable: false, attempts: 1 } });
    expect(fake.invocations()).toHaveLength(1);
  });

  it('reports a non-zero exit with the tail of stderr, naming the backend and model', async () => {
    const { fake, backend } = setup();
    fake.script({ exitCode: 2, stderr: 'starting\nError: something broke inside\n' });
    const error = (await backend.complete(ask('hi', { model: 'haiku' }), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error.message).toBe('claude-cli haiku: the claude CLI exited with code 2: starting | Error: something broke inside');
    expect(error.backend).toBe('claude-cli');
    expect(error.model).toBe('haiku');
    expect(fake.invocations()).toHaveLength(1);
  });

  it('says to update Claude Code when the CLI rejects a flag', async () => {
    const { fake, backend } = setup();
    fake.script({ exitCode: 1, stderr: "error: unknown option '--no-session-persistence'\n" });
    await expect(backend.complete(ask('hi'), {})).rejects.toThrow(
      /unknown option '--no-session-persistence' \(this backend needs a recent Claude Code; update it with `claude update`\)/,
    );
  });

  it('reports output without a result object as a clear error', async () => {
    const { fake, backend } = setup();
    fake.script({ rawStdout: 'Welcome to Claude Code!\nnot json at all\n' });
    await expect(backend.complete(ask('hi'), {})).rejects.toThrow(
      'claude-cli sonnet: the claude CLI printed no result object (expected --output-format stream-json); its output ended with: Welcome to Claude Code! | not json at all',
    );
  });

  it('reports a result object of the wrong shape, with the schema problem', async () => {
    const { fake, backend } = setup();
    fake.script({ rawStdout: '{"type":"result","subtype":"success","result":"hi"}\n' });
    const error = (await backend.complete(ask('hi'), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error.message).toMatch(/^claude-cli sonnet: the claude CLI printed a malformed result object: is_error: /);
    expect(error.details.responseBody).toContain('"subtype":"success"');
  });

  it('retries a rate-limited result, then returns the answer', async () => {
    const { fake, backend } = setup();
    fake.script(
      { isError: true, apiErrorStatus: 429, text: 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error"}}' },
      { isError: true, text: 'API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' },
      { text: 'finally' },
    );
    await expect(backend.complete(ask('hi'), {})).resolves.toMatchObject({ text: 'finally' });
    expect(fake.invocations()).toHaveLength(3);
  });

  it("does not retry a subscription's usage limit", async () => {
    const { fake, backend } = setup();
    fake.script({ isError: true, apiErrorStatus: 429, text: "You've hit your limit · resets 4pm (Europe/Paris)" });
    const error = await backend.complete(ask('hi'), {}).catch((e: unknown) => e);
    expect(errorMessage(error)).toMatch(/hit your limit .* \(the subscription's usage limit; not retried\)/);
    expect(error).toMatchObject({ kind: 'rate_limited', fatal: false });
    expect(fake.invocations()).toHaveLength(1);
  });

  it('fails with an error naming timeoutMs when the CLI does not answer in time', async () => {
    const { fake, backend } = setup({ timeoutMs: 50, maxRetries: 0 });
    // Longer than the test's own timeout: only timeoutMs can end this call.
    fake.script({ delayMs: 60_000, text: 'too late' });
    const error = (await backend.complete(ask('hi'), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error.message).toBe("claude-cli sonnet: no answer within timeoutMs (50 ms); raise the backend's timeoutMs for slow models");
    // The call settles only once the CLI has exited, if it had started at all.
    for (const call of fake.invocations()) expect(isAlive(call.pid)).toBe(false);
  });

  it('kills the CLI and its process group when the attempt times out', async () => {
    const time = manualClock();
    const { fake, backend } = setup({ timeoutMs: 30_000, maxRetries: 0, clock: time.clock });
    fake.script({ delayMs: 60_000, spawnGrandchild: true, text: 'too late' });
    const pending = backend.complete(ask('hi'), {});
    const [call] = await invoked(fake);
    time.expireAttempt();
    await expect(pending).rejects.toThrow(/no answer within timeoutMs \(30000 ms\)/);
    expect(isAlive(call!.pid)).toBe(false);
    await expectGone(call!.grandchildPid);
  });

  it('kills the CLI on abort, with SIGKILL after killGraceMs when it ignores SIGTERM, before the call settles', async () => {
    const { fake, backend } = setup({ killGraceMs: 50 });
    fake.script({ delayMs: 60_000, ignoreSigterm: true, spawnGrandchild: true, text: 'never' });
    const controller = new AbortController();
    const pending = backend.complete(ask('hi'), { signal: controller.signal });
    // Once recorded, the fake ignores SIGTERM: only SIGKILL can end it, and so the call.
    const [call] = await invoked(fake);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortedError);
    expect(isAlive(call!.pid)).toBe(false);
    await expectGone(call!.grandchildPid);
  });

  it('refuses a negative killGraceMs when the backend is created', () => {
    expect(() => setup({ killGraceMs: -1 })).toThrow(/^killGraceMs: must be a non-negative number of milliseconds, got -1$/);
  });

  it('fails at creation with a one-line install hint when the command is not on PATH', () => {
    const emptyDir = tempDir('rlm-empty-path-');
    let error: unknown;
    try {
      createClaudeCliBackend({ env: { PATH: emptyDir, HOME: emptyDir } });
    } catch (e) {
      error = e;
    }
    expect(RlmError.isInstance(error)).toBe(true);
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, backend: 'claude-cli' });
    expect(errorMessage(error)).toBe(
      'claude-cli: the `claude` command was not found on PATH; install Claude Code with `npm install -g @anthropic-ai/claude-code`, ' +
        "then run `claude` once to log in; or set the claude-cli backend's command option to its path",
    );
  });

  it('gives the install hint, without retrying, when the command disappears before a call', async () => {
    const fake = createFakeClaude();
    scratch.push(fake.dir);
    const copy = join(tempDir('rlm-claude-copy-'), 'claude');
    copyFileSync(FAKE_CLAUDE_PATH, copy);
    const backend = createClaudeCliBackend({ command: copy, env: fake.env(), passEnv: ['FAKE_CLAUDE_DIR'], initialDelayMs: 1 });
    unlinkSync(copy);
    const error = (await backend.complete(ask('hi'), {}).catch((e: unknown) => e)) as ModelCallError;
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error.message).toMatch(/^claude-cli: the `.*claude` command was not found; install Claude Code with `npm install -g @anthropic-ai\/claude-code`/);
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, details: { attempts: 1, isRetryable: false } });
    expect(error.message).toMatch(/; or set the claude-cli backend's command option to its path$/);
  });
});

describe('renderConversation', () => {
  const key = new Uint8Array(32).fill(7);

  it('keeps the header tag stable as the conversation grows, so the earlier turns stay a cacheable prefix', () => {
    const turn1 = renderConversation(
      [
        { role: 'user', content: 'Q1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'Q2' },
      ],
      key,
      'sys',
    );
    const turn2 = renderConversation(
      [
        { role: 'user', content: 'Q1' },
        { role: 'assistant', content: 'A1' },
        { role: 'user', content: 'Q2' },
        { role: 'assistant', content: 'A2' },
        { role: 'user', content: 'Q3' },
      ],
      key,
      'sys',
    );
    expect(turn2.startsWith(turn1)).toBe(true);
  });

  it('uses a tag that depends on the secret key, so message text cannot forge a header', () => {
    const messages = [
      { role: 'user' as const, content: 'Q1' },
      { role: 'assistant' as const, content: 'A1' },
    ];
    const tagOf = (text: string) => /\[user ([0-9a-f]+)\]/.exec(text)?.[1];
    expect(tagOf(renderConversation(messages, key))).not.toBe(tagOf(renderConversation(messages, new Uint8Array(32).fill(8))));
  });

  it('sends a lone user message as it is', () => {
    expect(renderConversation([{ role: 'user', content: 'just this' }], key)).toBe('just this');
  });
});

describe('claudeCliEnvironment', () => {
  it('keeps the CLI variables, login and proxy settings, and the names asked for; drops the rest', () => {
    expect(
      claudeCliEnvironment(
        {
          HOME: '/h',
          PATH: '/bin',
          ANTHROPIC_API_KEY: 'a',
          CLAUDE_CODE_USE_BEDROCK: '1',
          AWS_PROFILE: 'p',
          HTTPS_PROXY: 'http://proxy',
          OPENAI_API_KEY: 'o',
          MY_VAR: 'm',
          OTHER: 'x',
        },
        ['MY_VAR'],
      ),
    ).toEqual({ HOME: '/h', PATH: '/bin', ANTHROPIC_API_KEY: 'a', CLAUDE_CODE_USE_BEDROCK: '1', AWS_PROFILE: 'p', HTTPS_PROXY: 'http://proxy', MY_VAR: 'm' });
  });
});
