/**
 * A fake `claude` executable for tests of the `claude-cli` backend: the script `./claude` in this
 * folder answers like `claude -p --output-format json|stream-json`, from a reply list a test writes,
 * and records every invocation so the test can assert on what the backend sent.
 */
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding the fake `claude`; put it first on `PATH`. */
export const FAKE_CLAUDE_BIN_DIR = dirname(fileURLToPath(import.meta.url));
/** The fake executable itself. */
export const FAKE_CLAUDE_PATH = join(FAKE_CLAUDE_BIN_DIR, 'claude');

/** How the fake answers one invocation. Every field is optional. */
export interface FakeClaudeReply {
  /** The answer (`result`); on an `isError` reply, the error message. */
  text?: string;
  /** Streamed as these text deltas (stream-json with --include-partial-messages); default one delta of `text`. */
  chunks?: string[];
  /** Overrides of the result's `usage` (defaults: 10 input, 5 output, no cache tokens). */
  usage?: { input_tokens?: number; output_tokens?: number; cache_creation_input_tokens?: number; cache_read_input_tokens?: number };
  /** `total_cost_usd`; default 0.001. */
  costUsd?: number;
  /** The model the CLI reports; default `claude-fake-1-20250101`. */
  model?: string;
  /** Print a result with `is_error: true` (and exit 1 unless `exitCode` says otherwise). */
  isError?: boolean;
  /** The result's `subtype`; default `success`. */
  subtype?: string;
  /** The result's `api_error_status`. */
  apiErrorStatus?: number;
  /** The result's `errors`. */
  errors?: string[];
  /** Exit code; a non-zero one without `isError` prints no result. */
  exitCode?: number;
  /** Written to stderr. */
  stderr?: string;
  /** Printed to stdout instead of any result object. */
  rawStdout?: string;
  /** Wait this long (ms) after reading stdin, before answering. */
  delayMs?: number;
  /** Survive SIGTERM (only SIGKILL stops it). */
  ignoreSigterm?: boolean;
  /** Start a long-running child process (its pid is recorded), to check the process group is killed. */
  spawnGrandchild?: boolean;
}

/** What the fake received in one invocation. */
export interface FakeClaudeInvocation {
  argv: string[];
  stdin: string;
  cwd: string;
  pid: number;
  grandchildPid?: number;
  /** Names of the environment variables it saw, sorted. */
  envNames: string[];
  maxOutputTokensEnv?: string;
  /** Contents of the `--system-prompt-file`, read while the call ran. */
  systemPrompt?: string;
}

/** One test's fake: a private folder with the script and the invocation log. */
export interface FakeClaude {
  /** Holds `script.json` and `invocations.jsonl`; the fake finds it through `FAKE_CLAUDE_DIR`. */
  readonly dir: string;
  /** Replaces the replies: call N gets `replies[N]`, or the last one when N is past the end. */
  script(...replies: FakeClaudeReply[]): void;
  /** Every invocation so far, in order. */
  invocations(): FakeClaudeInvocation[];
  /** The environment to give the backend: the fake first on `PATH`, `HOME` in the private folder. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
}

export function createFakeClaude(): FakeClaude {
  const dir = mkdtempSync(join(tmpdir(), 'rlm-fake-claude-'));
  const logPath = join(dir, 'invocations.jsonl');
  const fake: FakeClaude = {
    dir,
    script: (...replies) => writeFileSync(join(dir, 'script.json'), JSON.stringify({ replies })),
    invocations: () =>
      existsSync(logPath)
        ? readFileSync(logPath, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as FakeClaudeInvocation)
        : [],
    env: (extra = {}) => ({
      PATH: `${FAKE_CLAUDE_BIN_DIR}:${process.env.PATH ?? ''}`,
      HOME: join(dir, 'home'),
      FAKE_CLAUDE_DIR: dir,
      ...extra,
    }),
  };
  fake.script({ text: 'ok' });
  return fake;
}
