/**
 * A backend that runs Claude Code's `claude` command in print mode, for people with a Claude
 * subscription and no API key: every completion is one `claude -p` process, with tools, MCP
 * servers, settings and session history turned off, so it is a plain model call.
 */
import { summarizeZodError } from '@rlm/shared';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { InvalidOptionError, RlmError, errorMessage } from '../errors.js';
import {
  ModelCallError,
  type ModelCallErrorKind,
  type ChatMessage,
  type CompleteOptions,
  type CompletionRequest,
  type CompletionResponse,
  type ModelBackend,
} from './model-backend.js';
import { kindOfHttpError } from './provider-failures.js';
import { isRetryableStatus, ResilientCaller, type AttemptFailure, type ResilienceOptions, type ResilienceSeams } from './resilience.js';

/** Options of {@link createClaudeCliBackend}: the `claude` executable, its environment, plus the retry and timeout settings of {@link ResilienceOptions}. */
export type ClaudeCliOptions = ResilienceOptions &
  ResilienceSeams & {
    /** The Claude Code executable: a name looked up on `PATH`, or a path. Default `claude`. */
    command?: string;
    /**
     * Where `PATH`, `HOME` and the variables passed to the CLI come from; default `process.env`.
     * Only what the CLI needs reaches it (see {@link claudeCliEnvironment}); add names with `passEnv`.
     */
    env?: NodeJS.ProcessEnv;
    /** Further variable names to pass from `env` to the CLI, e.g. a proxy setting of your own. */
    passEnv?: readonly string[];
    /**
     * Appended after this backend's own arguments; for flags this backend does not set (say
     * `--fallback-model`). A later flag overrides an earlier one, so this can also loosen ours,
     * e.g. `['--setting-sources', 'user']` to load your user settings.
     */
    extraArgs?: readonly string[];
    /** Used in errors and usage reports; default `claude-cli`. */
    name?: string;
    /**
     * The CLI's working directory; default `$XDG_CACHE_HOME/rlm/claude-cli` (or `~/.cache/…`),
     * created empty with mode 0700. Claude Code keeps per-directory state and reads `CLAUDE.md` from
     * its working directory, so one fixed, empty directory keeps both out of the calls.
     */
    cwd?: string;
    /** After SIGTERM (abort or timeout), milliseconds the CLI gets to exit before SIGKILL; default 2000. */
    killGraceMs?: number;
  };

/** Claude Code processes are heavy (a runtime each); fewer in flight than an HTTP backend allows. */
const DEFAULT_MAX_CONCURRENCY = 4;
/** After SIGTERM, how long the CLI gets to exit before SIGKILL, unless `killGraceMs` says otherwise. */
const DEFAULT_KILL_GRACE_MS = 2_000;
/** The longest stdout line accepted (the result line carries the whole answer). */
const MAX_LINE_CHARS = 16 * 1024 * 1024;
/** How much of stderr and of unparsed stdout is kept for error messages. */
const TAIL_CHARS = 8 * 1024;

const INSTALL_HINT =
  "install Claude Code with `npm install -g @anthropic-ai/claude-code`, then run `claude` once to log in; or set the claude-cli backend's command option to its path";

/**
 * Creates the backend. Each {@link ModelBackend.complete} call runs
 *
 * ```
 * claude -p --output-format stream-json --verbose --include-partial-messages --model <model>
 *   --system-prompt-file <file> --tools "" --strict-mcp-config --mcp-config '{"mcpServers":{}}'
 *   --permission-mode dontAsk --max-turns 1 --no-session-persistence --setting-sources ""
 *   [extraArgs…]
 * ```
 *
 * and writes the conversation to its stdin (never to argv, which other users can read through
 * `ps` and which has size limits). The system prompt goes in a private temporary file, replacing
 * Claude Code's own agent prompt; when the request has none, the CLI gets an empty one.
 *
 * - **Conversation.** A single user message is sent as it is. A longer conversation is sent as
 *   one transcript: a short preamble, then each message under a `[user <tag>]` or
 *   `[assistant <tag>]` header line, and the model is asked for the next assistant message. The
 *   tag is a keyed hash of the conversation's start, so text inside a message cannot forge a
 *   header, and it stays the same as the conversation grows, so Claude Code's prompt cache keeps
 *   hitting on the earlier turns.
 * - **No tools.** Built-in tools are removed (`--tools ""`), MCP servers limited to none, settings
 *   files not loaded (so no hooks or permission rules of yours apply), anything left that asks
 *   for a permission is denied, and the run stops after one turn: prompts cannot make the CLI act
 *   on this machine.
 * - **Streaming.** Text deltas go to `onTextDelta` as the CLI streams them; when it streams none,
 *   `onTextDelta` gets the whole text once.
 * - **Usage.** `inputTokens` is `input_tokens + cache_read_input_tokens +
 *   cache_creation_input_tokens`; `reportedCostUsd` is the CLI's `total_cost_usd`, which on a
 *   subscription is what the call would have cost at API prices, not money charged.
 * - **`maxOutputTokens`** is passed as `CLAUDE_CODE_MAX_OUTPUT_TOKENS` (the CLI has no flag).
 * - **Failures.** A result with `is_error`, or an exit without a result, becomes a
 *   {@link ModelCallError} carrying the CLI's message or the tail of its stderr; rate limits,
 *   "overloaded" and 5xx are retried (per {@link ResilienceOptions}), a subscription's usage limit
 *   and everything else are not. Its `kind`: `auth` when the CLI is not logged in or its key is
 *   refused, `permission` on a 403, `model_not_found` when it does not know the model,
 *   `rate_limited` for rate and usage limits, `unreachable` when the command is gone. Abort and `timeoutMs` kill the CLI's whole process group
 *   (SIGTERM, then SIGKILL after `killGraceMs`, 2 s by default); the call settles only once the CLI
 *   has exited.
 * - **Concurrency.** At most 4 CLI processes at once unless `maxConcurrency` says otherwise: each
 *   is a full Claude Code runtime, and they share one subscription's rate limits.
 *
 * Needs a Claude Code recent enough to know these flags; an older one fails with a message
 * saying to run `claude update`.
 *
 * @throws {ModelCallError} the command is not on `PATH`: `kind: 'unreachable'`, `model` empty, one line
 *   saying how to install Claude Code or point the `command` option at it.
 * @throws {RlmError} the command is a Windows batch wrapper, which cannot be run safely.
 * @throws {InvalidOptionError} `killGraceMs` is not a non-negative number.
 */
export function createClaudeCliBackend(options: ClaudeCliOptions = {}): ModelBackend {
  const name = options.name ?? 'claude-cli';
  const sourceEnv = options.env ?? process.env;
  const command = options.command ?? 'claude';
  const executable = findExecutable(command, sourceEnv);
  // A ModelCallError, so a caller handles a missing CLI like any provider it cannot reach; no model is known yet.
  if (!executable) throw new ModelCallError(notInstalledMessage(name, command), name, '', { isRetryable: false }, { kind: 'unreachable' });
  if (process.platform === 'win32' && /\.(cmd|bat)$/i.test(executable)) {
    // Node refuses to run batch files without a shell, and a shell would re-parse our arguments.
    throw new RlmError(
      `${name}: ${executable} is a batch wrapper, which cannot be run safely; install Claude Code's native build or set the backend's command to claude.exe`,
    );
  }
  const childEnv = claudeCliEnvironment(sourceEnv, options.passEnv);
  const workDir = options.cwd ?? defaultWorkDir(sourceEnv);
  const extraArgs = [...(options.extraArgs ?? [])];
  const killGraceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  if (!(Number.isFinite(killGraceMs) && killGraceMs >= 0))
    throw new InvalidOptionError('killGraceMs', `must be a non-negative number of milliseconds, got ${killGraceMs}`);
  const caller = new ResilientCaller(
    name,
    {
      maxRetries: options.maxRetries,
      initialDelayMs: options.initialDelayMs,
      maxDelayMs: options.maxDelayMs,
      maxRetryAfterMs: options.maxRetryAfterMs,
      timeoutMs: options.timeoutMs,
      maxConcurrency: options.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    },
    options.clock,
  );
  const transcriptKey = randomBytes(32);

  return {
    name,
    // Every answer carries the CLI's `total_cost_usd`.
    reportsCost: true,
    async complete(request: CompletionRequest, { signal, onTextDelta }: CompleteOptions = {}): Promise<CompletionResponse> {
      if (request.messages.length === 0) {
        throw new ModelCallError(`${name} ${request.model}: the request has no messages`, name, request.model, { isRetryable: false });
      }
      const prompt = renderConversation(request.messages, transcriptKey, request.system);
      return caller.call(
        request.model,
        (attemptSignal) =>
          runAttempt({
            name,
            executable,
            command,
            workDir,
            extraArgs,
            childEnv,
            killGraceMs,
            request,
            prompt,
            signal: attemptSignal,
            ...(onTextDelta ? { onTextDelta } : {}),
          }),
        (error) => classifyFailure(error, name, command, request.model),
        signal,
      );
    },
  };
}

/**
 * The variables the CLI gets from `env`: its own (`ANTHROPIC_*`, `CLAUDE_*`, `DISABLE_*`), what it
 * needs to find its login and config (`HOME`, `XDG_*`, `USER`, the Windows profile variables),
 * `PATH`, locale and time zone, temporary directories, proxies and CA certificates, and the AWS /
 * Google Cloud variables of its Bedrock and Vertex modes; plus the names in `passEnv`. Other
 * secrets of the host process (other providers' keys, tokens) stay out.
 */
export function claudeCliEnvironment(env: NodeJS.ProcessEnv, passEnv: readonly string[] = []): NodeJS.ProcessEnv {
  const extra = new Set(passEnv.map((variable) => variable.toUpperCase()));
  const passed: NodeJS.ProcessEnv = {};
  for (const [variable, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const upper = variable.toUpperCase();
    if (PASSED_NAMES.has(upper) || PASSED_PREFIXES.some((prefix) => upper.startsWith(prefix)) || extra.has(upper)) passed[variable] = value;
  }
  return passed;
}

const PASSED_NAMES = new Set([
  'HOME',
  'PATH',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TERM',
  'TMPDIR',
  'TEMP',
  'TMP',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'CLOUD_ML_REGION',
  'MAX_THINKING_TOKENS',
  'USERPROFILE',
  'APPDATA',
  'LOCALAPPDATA',
  'SYSTEMROOT',
  'WINDIR',
  'COMSPEC',
  'PATHEXT',
]);
const PASSED_PREFIXES = ['ANTHROPIC_', 'CLAUDE_', 'DISABLE_', 'LC_', 'XDG_', 'AWS_', 'VERTEX_REGION_'];

/**
 * What goes to the CLI's stdin: a lone user message as it is, a longer conversation as a
 * transcript whose header tag is `HMAC(key, system + first message)`, stable while the conversation
 * grows.
 */
export function renderConversation(messages: readonly ChatMessage[], key: Uint8Array, system = ''): string {
  const [first] = messages;
  if (messages.length === 1 && first?.role === 'user') return first.content;
  const tag = createHmac('sha256', key)
    .update(`${system}\u0000${first?.role ?? ''}\u0000${first?.content ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  const preamble =
    `The conversation so far is below. Each message starts with a header line, [user ${tag}] or [assistant ${tag}]; ` +
    `only lines with exactly this tag start a message. Reply with the assistant's next message: its text only, without a header.`;
  return `${[preamble, ...messages.map((message) => `[${message.role} ${tag}]\n${message.content}`)].join('\n\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// One attempt: spawn, feed stdin, read the stream, interpret the result.

interface AttemptInput {
  name: string;
  executable: string;
  command: string;
  workDir: string;
  extraArgs: string[];
  killGraceMs: number;
  childEnv: NodeJS.ProcessEnv;
  request: CompletionRequest;
  prompt: string;
  signal: AbortSignal;
  onTextDelta?: (text: string) => void;
}

async function runAttempt(input: AttemptInput): Promise<CompletionResponse> {
  const { name, request } = input;
  input.signal.throwIfAborted();
  await mkdir(input.workDir, { recursive: true, mode: 0o700 });
  const scratch = await mkdtemp(join(tmpdir(), 'rlm-claude-cli-'));
  try {
    const systemPromptFile = join(scratch, 'system-prompt.md');
    await writeFile(systemPromptFile, request.system ?? '', { mode: 0o600 });
    const args = [
      '-p',
      '--output-format',
      'stream-json',
      '--verbose', // stream-json requires it in print mode
      '--include-partial-messages',
      '--model',
      request.model,
      '--system-prompt-file',
      systemPromptFile,
      '--tools',
      '',
      '--strict-mcp-config',
      '--mcp-config',
      '{"mcpServers":{}}',
      '--permission-mode',
      'dontAsk',
      '--max-turns',
      '1',
      '--no-session-persistence',
      '--setting-sources',
      '',
      ...input.extraArgs,
    ];
    const env = {
      ...input.childEnv,
      ...(request.maxOutputTokens === undefined ? {} : { CLAUDE_CODE_MAX_OUTPUT_TOKENS: String(request.maxOutputTokens) }),
    };
    let streamed = false;
    const onTextDelta = input.onTextDelta;
    const outcome = await runCli(input.executable, args, { cwd: input.workDir, env, killGraceMs: input.killGraceMs }, input.prompt, input.signal, (text) => {
      streamed = true;
      safeDelta(onTextDelta, text);
    });
    const response = interpretOutcome(outcome, name, request.model);
    if (!streamed && response.text) safeDelta(onTextDelta, response.text);
    return response;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** `onTextDelta` must not throw; if it does, the call goes on rather than leaving the CLI unread. */
function safeDelta(onTextDelta: ((text: string) => void) | undefined, text: string): void {
  try {
    onTextDelta?.(text);
  } catch {
    // deliberately ignored, see above
  }
}

interface CliOutcome {
  exitCode: number | null;
  exitSignal: NodeJS.Signals | null;
  /** The last `{"type":"result"}` object printed, unparsed. */
  result?: unknown;
  /** The model named by the `system`/`init` event. */
  initModel?: string;
  stderrTail: string;
  /** Lines of stdout that were not JSON, last ones first kept. */
  unparsedTail: string;
}

/** Thrown when the attempt's signal fired; the caller turns it into the timeout or abort error. */
class CliKilled extends Error {
  override name = 'CliKilled';
}

/** The CLI's output broke a limit; not worth retrying. */
class CliOutputTooLarge extends Error {
  override name = 'CliOutputTooLarge';
}

const TextDeltaEvent = z.object({
  type: z.literal('stream_event'),
  event: z.object({
    type: z.literal('content_block_delta'),
    delta: z.object({ type: z.literal('text_delta'), text: z.string() }),
  }),
});
const InitEvent = z.object({ type: z.literal('system'), subtype: z.literal('init'), model: z.string() });

/**
 * Runs the CLI to the end. Settles only after the process has exited: on abort it is sent SIGTERM,
 * SIGKILL after `killGraceMs`, and its process group is swept with SIGKILL on exit, so
 * nothing it started outlives the call.
 */
function runCli(
  executable: string,
  args: string[],
  { killGraceMs, ...options }: { cwd: string; env: NodeJS.ProcessEnv; killGraceMs: number },
  stdinText: string,
  signal: AbortSignal,
  onTextDelta: (text: string) => void,
): Promise<CliOutcome> {
  return new Promise<CliOutcome>((resolvePromise, reject) => {
    signal.throwIfAborted();
    const useGroup = process.platform !== 'win32';
    let child: ChildProcess;
    try {
      child = spawn(executable, args, { ...options, stdio: ['pipe', 'pipe', 'pipe'], detached: useGroup, windowsHide: true });
    } catch (error) {
      reject(error);
      return;
    }

    let spawnError: Error | undefined;
    let failure: Error | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let result: unknown;
    let initModel: string | undefined;
    let stderrTail = '';
    let unparsedTail = '';
    let partialLine = '';
    const stdoutDecoder = new StringDecoder('utf8');
    const stderrDecoder = new StringDecoder('utf8');

    const signalChild = (sig: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        if (useGroup) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const stop = (reason: Error) => {
      if (failure) return;
      failure = reason;
      signalChild('SIGTERM');
      killTimer = setTimeout(() => signalChild('SIGKILL'), killGraceMs);
      killTimer.unref();
    };
    const onAbort = () => stop(new CliKilled('the call was aborted or timed out'));
    signal.addEventListener('abort', onAbort, { once: true });

    const handleLine = (rawLine: string) => {
      // Some versions print terminal escape sequences into stdout even when it is not a TTY.
      const line = rawLine.replace(ANSI_ESCAPE, '').trim();
      if (!line) return;
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        unparsedTail = keepTail(`${unparsedTail}${line}\n`);
        return;
      }
      const delta = TextDeltaEvent.safeParse(event);
      if (delta.success) return onTextDelta(delta.data.event.delta.text);
      const init = InitEvent.safeParse(event);
      if (init.success) initModel = init.data.model;
      else if (isObject(event) && event.type === 'result') result = event;
    };

    child.stdout?.on('data', (chunk: Buffer) => {
      if (failure) return;
      const lines = (partialLine + stdoutDecoder.write(chunk)).split('\n');
      partialLine = lines.pop() ?? '';
      for (const line of lines) handleLine(line);
      if (partialLine.length > MAX_LINE_CHARS) stop(new CliOutputTooLarge(`a line of the CLI's output exceeded ${MAX_LINE_CHARS} characters`));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = keepTail(stderrTail + stderrDecoder.write(chunk));
    });
    // The CLI may exit before reading all of stdin (a bad flag); its exit status says why.
    child.stdin?.on('error', () => {});
    child.on('error', (error) => {
      spawnError = error;
    });
    child.on('close', (exitCode, exitSignal) => {
      signal.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (useGroup) signalChild('SIGKILL'); // sweep anything the CLI left in its group
      if (spawnError && child.pid === undefined) return reject(spawnError);
      if (failure) return reject(failure);
      handleLine(partialLine + stdoutDecoder.end());
      resolvePromise({
        exitCode,
        exitSignal,
        ...(result === undefined ? {} : { result }),
        ...(initModel === undefined ? {} : { initModel }),
        stderrTail: stderrTail + stderrDecoder.end(),
        unparsedTail,
      });
    });
    child.stdin?.end(stdinText);
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: an ANSI escape sequence starts with ESC
const ANSI_ESCAPE = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

function keepTail(text: string): string {
  return text.length > TAIL_CHARS ? text.slice(-TAIL_CHARS) : text;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The part of the CLI's result object this backend reads; other fields are ignored. */
const CliResult = z.object({
  type: z.literal('result'),
  subtype: z.string(),
  is_error: z.boolean(),
  result: z.string().optional(),
  errors: z.array(z.unknown()).optional(),
  api_error_status: z.number().int().nullable().optional(),
  stop_reason: z.string().nullable().optional(),
  total_cost_usd: z.number().nonnegative().optional(),
  usage: z
    .object({
      input_tokens: z.number().int().nonnegative(),
      output_tokens: z.number().int().nonnegative(),
      cache_creation_input_tokens: z.number().int().nonnegative().nullable().optional(),
      cache_read_input_tokens: z.number().int().nonnegative().nullable().optional(),
    })
    .optional(),
  modelUsage: z.record(z.string(), z.unknown()).optional(),
});

function interpretOutcome(outcome: CliOutcome, name: string, model: string): CompletionResponse {
  const prefix = `${name} ${model}`;
  if (outcome.result === undefined) {
    if (outcome.exitCode !== 0) {
      const how = outcome.exitSignal ? `was killed by ${outcome.exitSignal}` : `exited with code ${outcome.exitCode}`;
      const said = lastLines(outcome.stderrTail) || lastLines(outcome.unparsedTail);
      const message = said ? `${prefix}: the claude CLI ${how}: ${said}${hintFor(said)}` : `${prefix}: the claude CLI ${how} and printed nothing on stderr`;
      const kind = kindOfMessage(said, undefined);
      return fail(message, name, model, { isRetryable: !FATAL.has(kind) && isRetryableMessage(said), responseBody: outcome.stderrTail }, undefined, kind);
    }
    const said = lastLines(outcome.unparsedTail) || lastLines(outcome.stderrTail);
    return fail(
      `${prefix}: the claude CLI printed no result object (expected --output-format stream-json)${said ? `; its output ended with: ${said}` : ''}`,
      name,
      model,
      { isRetryable: false, responseBody: outcome.unparsedTail },
    );
  }

  const parsed = CliResult.safeParse(outcome.result);
  const rawBody = JSON.stringify(outcome.result).slice(0, 2_000);
  if (!parsed.success) {
    return fail(
      `${prefix}: the claude CLI printed a malformed result object: ${summarizeZodError(parsed.error)}`,
      name,
      model,
      { isRetryable: false, responseBody: rawBody },
      parsed.error,
    );
  }
  const body = parsed.data;
  if (body.is_error || body.subtype !== 'success') {
    const said =
      oneLine(body.result ?? '') ||
      oneLine((body.errors ?? []).map((error) => (typeof error === 'string' ? error : JSON.stringify(error))).join('; ')) ||
      lastLines(outcome.stderrTail) ||
      body.subtype;
    const status = body.api_error_status ?? undefined;
    const usageLimit = USAGE_LIMIT.test(said);
    const kind = kindOfMessage(said, status);
    const retryable = !usageLimit && !FATAL.has(kind) && (status !== undefined ? isRetryableStatus(status) : isRetryableMessage(said));
    return fail(
      `${prefix}: ${said}${usageLimit ? " (the subscription's usage limit; not retried)" : hintFor(said)}`,
      name,
      model,
      { ...(status === undefined ? {} : { statusCode: status }), isRetryable: retryable, responseBody: rawBody },
      undefined,
      kind,
    );
  }
  if (body.result === undefined) {
    return fail(`${prefix}: the claude CLI's result object has no "result" text`, name, model, { isRetryable: false, responseBody: rawBody });
  }

  const usage = body.usage;
  const cacheRead = usage?.cache_read_input_tokens ?? 0;
  const cacheWrite = usage?.cache_creation_input_tokens ?? 0;
  const usedModels = Object.keys(body.modelUsage ?? {});
  return {
    text: body.result,
    model: (usedModels.length === 1 ? usedModels[0] : undefined) ?? outcome.initModel ?? model,
    usage: {
      inputTokens: (usage?.input_tokens ?? 0) + cacheRead + cacheWrite,
      outputTokens: usage?.output_tokens ?? 0,
      ...(cacheRead ? { cacheReadTokens: cacheRead } : {}),
      ...(cacheWrite ? { cacheWriteTokens: cacheWrite } : {}),
      ...(body.total_cost_usd === undefined ? {} : { reportedCostUsd: body.total_cost_usd }),
    },
    ...(body.stop_reason ? { stopReason: body.stop_reason } : {}),
  };
}

function fail(message: string, name: string, model: string, details: ModelCallError['details'], cause?: unknown, kind?: ModelCallErrorKind): never {
  throw new ModelCallError(message, name, model, details, { ...(cause === undefined ? {} : { cause }), ...(kind === undefined ? {} : { kind }) });
}

const FATAL: ReadonlySet<ModelCallErrorKind> = new Set(['auth', 'permission', 'model_not_found', 'unreachable']);

/** Claude Code's words for a login it lacks or a key refused. */
const AUTH_MESSAGE = /not logged in|\/login|log ?in again|invalid api key|authentication|oauth token/i;
/** Claude Code's words for a model it does not know ("There's an issue with the selected model (x). It may not exist…"). */
const UNKNOWN_MODEL_MESSAGE = /issue with the selected model|\bmodel\b[^.]*\b(?:may not exist|does not exist|not found)|not_found_error/i;

/** The kind of a failure the CLI reported: by the API status it names, else by its words. */
function kindOfMessage(said: string, status: number | undefined): ModelCallErrorKind {
  if (USAGE_LIMIT.test(said)) return 'rate_limited';
  if (status !== undefined) return kindOfHttpError(status, { reason: said });
  if (AUTH_MESSAGE.test(said)) return 'auth';
  if (UNKNOWN_MODEL_MESSAGE.test(said)) return 'model_not_found';
  if (/rate[ _-]?limit|too many requests|\b429\b/i.test(said)) return 'rate_limited';
  return 'provider_error';
}

/** A subscription's usage cap ("You've hit your limit · resets 4pm", "Claude AI usage limit reached|…"): hours away, not worth retrying. */
const USAGE_LIMIT = /usage limit|hit your (?:\w+ )?limit|limit (?:will )?resets?\b/i;
/** Rate limits, overload, server errors and dropped connections, as the CLI words them. */
const RETRYABLE_MESSAGE =
  /rate[ _-]?limit|overloaded|too many requests|\b(?:408|409|429|5\d\d)\b|temporarily unavailable|ECONNRESET|ETIMEDOUT|socket hang up|connection error|request timed out/i;

function isRetryableMessage(message: string): boolean {
  return !USAGE_LIMIT.test(message) && RETRYABLE_MESSAGE.test(message);
}

function hintFor(message: string): string {
  if (/unknown option|unrecognized option|error: option/i.test(message)) {
    return ' (this backend needs a recent Claude Code; update it with `claude update`)';
  }
  if (AUTH_MESSAGE.test(message)) {
    return ' (run `claude` once to log in)';
  }
  if (UNKNOWN_MODEL_MESSAGE.test(message)) {
    return ' (check the model name: --model or --sub-model, or model: in the config file)';
  }
  return '';
}

/** The last few non-empty lines of `text`, joined into one line of at most 500 characters. */
function lastLines(text: string, count = 3): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  return oneLine(lines.slice(-count).join(' | '));
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 500 ? `${flat.slice(0, 500)}…` : flat;
}

function classifyFailure(error: unknown, name: string, command: string, model: string): AttemptFailure {
  if (error instanceof ModelCallError) return { error, retryable: error.details.isRetryable ?? false };
  const code = (error as { code?: unknown }).code;
  if (code === 'ENOENT') {
    return {
      error: new ModelCallError(notInstalledMessage(name, command), name, model, { isRetryable: false }, { cause: error, kind: 'unreachable' }),
      retryable: false,
    };
  }
  const message = errorMessage(error);
  return { error: new ModelCallError(`${name} ${model}: ${message}`, name, model, { isRetryable: false }, { cause: error }), retryable: false };
}

function notInstalledMessage(name: string, command: string): string {
  return `${name}: the \`${command}\` command was not found${isAbsolute(command) || command.includes('/') ? '' : ' on PATH'}; ${INSTALL_HINT}`;
}

// ---------------------------------------------------------------------------------------------
// Finding the executable and the working directory.

/** The executable `command` names: itself if it contains a path separator, else the first match on `env.PATH`. */
function findExecutable(command: string, env: NodeJS.ProcessEnv): string | undefined {
  const windows = process.platform === 'win32';
  const extensions = windows ? ['', ...(env.PATHEXT ?? '.COM;.EXE;.BAT;.CMD').split(';').filter(Boolean)] : [''];
  const hasSeparator = command.includes('/') || (windows && command.includes('\\'));
  const bases = hasSeparator
    ? [resolve(command)]
    : (env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, command));
  for (const base of bases) {
    for (const extension of extensions) {
      const candidate = base + extension;
      try {
        if (statSync(candidate).isFile()) {
          accessSync(candidate, fsConstants.X_OK);
          return candidate;
        }
      } catch {
        // not here, or not executable
      }
    }
  }
  return undefined;
}

function defaultWorkDir(env: NodeJS.ProcessEnv): string {
  const cacheHome = env.XDG_CACHE_HOME || join(env.HOME || env.USERPROFILE || homedir(), '.cache');
  return join(cacheHome, 'rlm', 'claude-cli');
}
