/**
 * Every command of `rlm` and every flag, defined once. The flag parser (parse-flags.ts), each
 * command's `--help` and the README's option table (help-text.ts) are made from these tables, and
 * so are the settings a flag gives (config/settings.ts reads `setting` and `env`).
 *
 * Light on purpose (Node built-ins and the run budget's defaults only): `rlm --help` and every
 * `rlm <command> --help` print from here without loading the commands' dependencies.
 *
 * Text is written unwrapped; the help pages wrap it. A `code span` in backticks is code in the
 * README and plain text in a terminal.
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_LIMITS } from '../../engine/run-budget.js';

/** Where `rlm view` looks for trajectories when neither an argument, RLM_LOG_DIR nor the config file says. */
export const DEFAULT_VIEW_DIR = 'rlm-logs';

/** Where `rlm demo` writes its trajectory unless --log-dir or RLM_LOG_DIR say. */
export const DEMO_LOG_DIR = path.join(os.tmpdir(), 'rlm-demo');

/** A command: `run` is the main one (`rlm [query]`), `sandbox build` is `rlm sandbox build`. */
export type CommandName =
  | 'run'
  | 'demo'
  | 'doctor'
  | 'view'
  | 'eval'
  | 'eval generate'
  | 'eval rescore'
  | 'eval compare'
  | 'sandbox'
  | 'sandbox build'
  | 'sandbox ls'
  | 'sandbox prune'
  | 'sandbox check'
  | 'sandbox exec'
  | 'serve'
  | 'serve teams'
  | 'serve teams create'
  | 'serve teams list'
  | 'serve teams update'
  | 'serve runs'
  | 'serve runs prune'
  | 'serve tokens'
  | 'serve tokens create'
  | 'serve tokens list'
  | 'serve tokens revoke';

/** A positional argument, for the help page. */
export interface ArgumentSpec {
  /** As the help shows it: `[query]`, `-`, `DIR`. */
  label: string;
  help: string;
  /** The help page's section; default `Options`. */
  group?: string;
}

export interface CommandSpec {
  /** The positional part of the synopsis: `[query]`, `[DIR | FILE]`, `<command>`. */
  args?: string;
  /** One line, in the list of commands of the parent's help. */
  summary: string;
  /** The help page's text under the synopsis (paragraphs separated by a blank line). */
  description?: string;
  arguments?: readonly ArgumentSpec[];
  /** The order of the help page's sections of flags; a flag's `group` must be one of them. Default `['Options']`. */
  groups?: readonly string[];
  /** The help page's last paragraphs. */
  footer?: string;
  /** Other names the command answers to. */
  aliases?: readonly string[];
}

/** How a setting's value is read from a flag or variable (config/settings.ts). */
export type SettingKind = 'string' | 'integer' | 'number' | 'model-alias';

/** What one flag gives to one command, where it differs from the flag's own. */
export interface FlagVariant {
  help?: string;
  default?: string;
}

export interface FlagSpec {
  /** The long name, without dashes. */
  name: string;
  /** A one-letter alias, without the dash. */
  short?: string;
  /** A boolean flag is a switch; a string flag takes a value (`--x V` or `--x=V`), negative numbers included. */
  type: 'string' | 'boolean';
  /** May be given more than once: the values come as a list. */
  multiple?: boolean;
  /** What the value is, in the help: `N`, `FILE`. String flags only. */
  value?: string;
  help: string;
  /** More, for the README's table only (markdown). */
  details?: string;
  /** Shown as `(default …)` after the help. */
  default?: string;
  /** The help page's section; default `Options`. */
  group?: string;
  /** The commands that take it. No command takes two flags of one name. */
  commands: readonly CommandName[];
  /** Another help or default for some of the commands. */
  variants?: Partial<Record<CommandName, FlagVariant>>;
  /** The environment variable giving the same setting (for settings.ts and the help). */
  env?: string;
  /** Where its value lands in the config file's shape, and how it is read (config/settings.ts). */
  setting?: { path: readonly [string, ...string[]]; kind: SettingKind };
  /** `--help`/`--version`: on the help pages, not in the README's table. */
  meta?: boolean;
}

/** Every command; a key's words are what follows `rlm`. */
export const COMMANDS = {
  run: {
    args: '[query]',
    summary: 'answer a query over a context (the main command)',
    description:
      'Answer a query over a context with a Recursive Language Model: the context is a variable in a sandboxed REPL, the model writes code to read it and calls sub-models on the pieces.',
    arguments: [
      { label: '[query]', help: 'the question, as one argument (quote it)', group: 'Query and context' },
      { label: '-', help: 'read the context from standard input', group: 'Query and context' },
    ],
    groups: ['Query and context', 'Models', 'Limits (for the whole recursion tree)', 'Run', 'Output'],
    footer:
      'Run `rlm <command> --help` (or `rlm help <command>`) for the options of a command.\n\n' +
      'Precedence: flags, then environment (RLM_BACKEND, RLM_MODEL, RLM_SUB_MODEL, RLM_LOG_DIR…; see the README), then the config file, then defaults. API keys come from the environment only (ANTHROPIC_API_KEY, OPENAI_API_KEY…); the config file names the variable, never the key.\n\n' +
      'Exit codes: 0 answered, 1 the run failed (a failed call), 2 bad usage or config, 3 the provider refused (bad key, no permission, unknown model, unreachable base URL), 4 Docker or the sandbox failed (no engine, no image, a sandbox that died or ran out of memory), 5 a limit stopped the run before it answered, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).',
  },
  demo: {
    summary: 'a complete run on a bundled document with a scripted model (no API key)',
    description:
      'A complete RLM run on a bundled sample document (a synthetic ~270 KB operations log with one planted fact), with a SCRIPTED model: a built-in stand-in that follows a fixed, plausible plan. No API key and no network are needed; the sandbox, the sub-calls (llm_query_batched, rlm_query) and the trajectory are real.',
  },
  doctor: {
    summary: 'check Node, Docker, the sandbox image, provider keys and the config file',
    description:
      "Checks Node, the Docker engine (reachable, version, rootless, cgroups, enforced limits, its OCI runtimes), the sandbox image, whether gVisor's runsc starts a sandbox (when the engine has it: one sandbox, one cell, up to 60 s), which provider API keys are set (names only), the config file, and each configured model (root, sub, every models: entry: backend, model id, base URL, whether its key's variable is set); prints one line per check (ok, warn, FAIL) with the fix for each problem.\n\n" +
      'Exit code 1 if any check fails; runsc failing is a failure only when the settings select it (sandbox.runtime in the config file, or RLM_SANDBOX_RUNTIME), a warning otherwise.',
  },
  view: {
    args: '[DIR | FILE]',
    summary: 'browse trajectories in the browser',
    description:
      "Browse trajectories in a local web page: the runs of a directory, each run's turns with the model's responses, code and output, sub-calls and child runs as a tree, usage and cost per model. Reads the JSONL files rlm writes (--log-dir) and those of the reference implementation (rlms).",
    arguments: [
      {
        label: 'DIR',
        help: `a directory of .jsonl trajectories; default: RLM_LOG_DIR, else the config file's logDir, else ./${DEFAULT_VIEW_DIR}. An evaluation's directory (\`rlm eval --out DIR\`) opens on its report.html, each task linking to its trajectory`,
      },
      { label: 'FILE', help: 'one .jsonl trajectory: the page opens it (and lists its directory)' },
    ],
    footer: "The page is served on 127.0.0.1 only and reads only .jsonl files inside DIR (and an evaluation's report.html). Stop with Ctrl-C.",
  },
  eval: {
    args: 'DATASET',
    summary: 'run every task of a dataset with one or more methods and score the answers',
    description:
      'Runs every task of a dataset with one or more methods (`rlm`, the `direct` baseline, `rlm-no-subcalls`) and scores the answers; each (task, method, epoch) runs in fresh sandboxes. Results are appended to `DIR/results.jsonl` as they finish, so running the same command with the same --out again runs only what is missing (after a crash, Ctrl-C or kill -9). Writes `DIR/summary.json` (accuracy with a 95% interval, cost, tokens, latency per method; paired differences) and `DIR/report.html` (`rlm view DIR` opens it).',
    arguments: [
      {
        label: 'DATASET',
        help: 'a `.jsonl`, `.json` (array), `.csv` or `.parquet` file of tasks: `query`, `context` or `context_file`/`context_files`, `answer` or `answers`, optional `id`, `choices`, `scorer`, `metadata`',
        group: 'Dataset and methods',
      },
    ],
    groups: ['Dataset and methods', 'Scoring', 'Scale, budget and resume', 'Models', 'Limits (for the whole recursion tree)', 'Run', 'Output'],
    footer:
      'Every run option of `rlm` applies to each run (flags, RLM_* variables, the config file with its `models:`). Options that change results are recorded in `DIR/eval.json`; resuming with other values is refused and names them.\n\n' +
      'Run `rlm eval generate --help` for the bundled datasets, `rlm eval rescore --help` and `rlm eval compare --help` for working with finished evaluations.\n\n' +
      'Exit codes: 0 every (task, method, epoch) has a result, whatever the scores; 1 some have none (the budget ran out, infrastructure errors persisted); 2 bad usage, config or dataset (a bad row is named) or a resume with other options; 130 interrupted (Ctrl-C; the results so far are kept).',
  },
  'eval generate': {
    args: 'niah | counting',
    summary: 'write a synthetic dataset: a needle in a haystack, or counting over labelled records',
    description:
      '`niah`: single needle in a haystack (RULER-style), a magic number hidden at a controlled depth (`metadata.depth`) of filler text (`metadata.context_chars`), scored with `em`. `counting`: OOLONG-style aggregation over many labelled records, the answer a count or a comparison, scored with `oolong`. Deterministic per seed.',
    arguments: [{ label: 'niah | counting', help: 'which dataset' }],
  },
  'eval rescore': {
    args: 'DIR',
    summary: 'score the stored answers of an evaluation again with another scorer (no runs)',
    description:
      "Scores every stored answer of the evaluation in DIR again (no model run, no sandbox), rewrites `results.jsonl`'s scores, `summary.json` and `report.html`, and records the scorer in `eval.json`. Results without an answer because of an infrastructure error stay errors.",
    arguments: [{ label: 'DIR', help: 'an evaluation directory (`rlm eval --out DIR`)' }],
  },
  'eval compare': {
    args: 'DIR_A DIR_B',
    summary: 'the paired comparison of two evaluations over their common tasks',
    description:
      'Compares two evaluations method by method over the tasks both scored: the accuracy of each, the difference (A − B) and its paired bootstrap 95% interval.',
    arguments: [
      { label: 'DIR_A', help: 'an evaluation directory' },
      { label: 'DIR_B', help: 'another one' },
    ],
  },
  sandbox: {
    args: '<command>',
    summary: 'build, list, prune and check sandboxes; run a cell in one',
    description: 'Manage the sandboxes (hardened Docker containers) rlm runs code in, and try one by hand.',
    footer:
      'Run `rlm sandbox <command> --help` for its options. Docker is found through DOCKER_HOST (e.g. unix:///run/user/1000/docker.sock for rootless Docker).',
  },
  'sandbox build': {
    summary: 'build the sandbox image now (it is otherwise built on first use)',
    description:
      "Builds the sandbox image now; a run otherwise builds it on first use. By default the image is FROM scratch with this machine's Node binary and its libraries; --base-image builds on an image you can pull instead.",
    footer: 'Docker is found through DOCKER_HOST.',
  },
  'sandbox ls': {
    summary: 'list the rlm sandbox containers on this Docker engine',
    description: 'Lists the rlm sandbox containers on this Docker engine: id, state, whether the process that started it is alive, owner and name.',
    aliases: ['list'],
    footer: 'Docker is found through DOCKER_HOST.',
  },
  'sandbox prune': {
    summary: 'remove sandboxes left by crashed rlm processes',
    description: 'Removes the sandbox containers whose rlm process is gone (a crash, a kill -9). Exit code 1 if one could not be removed.',
    footer: 'Docker is found through DOCKER_HOST.',
  },
  'sandbox check': {
    summary: 'start a sandbox and verify its isolation from the inside',
    description:
      "Starts a sandbox and verifies its isolation from the inside: loopback-only network, the host's loopback unreachable, a read-only root filesystem, a size-limited scratch /tmp, a non-root user, all capabilities dropped, no-new-privileges, seccomp, no host environment, no Docker socket, no shell, only the context and control mounts, memory, CPU and pids limits. Exit code 1 if a check fails.",
    footer: 'Docker is found through DOCKER_HOST.',
  },
  'sandbox exec': {
    args: '[CODE]',
    summary: 'run one JavaScript cell in a fresh sandbox and print its output',
    description:
      "Runs one JavaScript cell in a fresh sandbox, as a model's code runs, and prints its output: stdout and the cell's value on stdout, stderr and any error on stderr, and FINAL's answer. Exit code 1 if the cell failed or timed out.",
    arguments: [{ label: 'CODE', help: 'the cell, as one argument (quote it); or --file' }],
    footer: 'Docker is found through DOCKER_HOST.',
  },
  serve: {
    summary: 'run rlm as a service for a team: REST and OpenAI-compatible APIs, teams and tokens, a durable queue',
    description:
      "Serves an HTTP API that runs everybody's RLM requests in sandboxes from one warm pool: `/v1/runs` (submit, status, live events, cancel, trajectory), `/v1/chat/completions` and `/v1/models` (OpenAI-compatible), a web page at `/`, `/healthz`, `/readyz` and `/metrics`. Every request to `/v1` needs a team's token (`rlm serve tokens create`). Runs, events, trajectories, teams and tokens live in the database: embedded (node:sqlite in `--data-dir`) unless --database or DATABASE_URL names PostgreSQL. Models, limits and sandbox settings come from the config file and environment, as for `rlm`; provider keys only from the environment.",
    groups: ['Server', 'Database', 'Sandboxes and runs', 'Run', 'Output'],
    footer:
      'Run `rlm serve teams --help` and `rlm serve tokens --help` to manage teams and tokens, `rlm serve runs prune --help` to delete old runs. SIGTERM (or Ctrl-C) drains: new requests get 503, running runs get --grace-seconds to finish, then are cancelled; the process exits with every sandbox removed. Exit codes: 0 stopped cleanly, 2 bad usage or config, 4 Docker unreachable.',
  },
  'serve teams': {
    args: '<command>',
    summary: 'create, list and update teams',
    description: 'Teams own runs, tokens, limits and a budget. A team sees only its own runs.',
  },
  'serve teams create': {
    args: 'NAME',
    summary: 'create a team',
    description: 'Creates a team. NAME: letters, digits, `-`, `_` and `.`, at most 64 characters.',
    arguments: [{ label: 'NAME', help: 'the team' }],
  },
  'serve teams list': { summary: 'list the teams with their limits and spend', aliases: ['ls'] },
  'serve teams update': {
    args: 'NAME',
    summary: "change a team's budget, limits or models",
    description:
      'Changes what the options give and leaves the rest; prints each change. Works beside a running server. The new values apply to the next run submitted and the next run started: runs already running keep running, queued runs stay queued (a --max-queued below the current queue only refuses new runs), and a run keeps the cost limit its budget gave it when it was accepted. A raised budget lets a team that spent the old one submit again.',
    arguments: [{ label: 'NAME', help: 'the team' }],
  },
  'serve runs': {
    args: '<command>',
    summary: 'prune finished runs',
    description: 'The database keeps every run, its events, input and trajectory until they are pruned (or `rlm serve --retain-days N` prunes them).',
  },
  'serve runs prune': {
    summary: 'delete finished runs older than --older-than DAYS',
    description:
      "Deletes the runs that finished (succeeded, failed or cancelled) more than DAYS ago, with their events, input and trajectory; queued and running runs are never touched. Teams' spend and budgets do not change. Works beside a running server, in batches, so the server keeps serving meanwhile. Prints how many runs and events went.",
  },
  'serve tokens': {
    args: '<command>',
    summary: 'create, list and revoke API tokens',
    description: 'A token authenticates requests to `/v1` as its team (`Authorization: Bearer <token>`). Only its hash is stored.',
  },
  'serve tokens create': {
    summary: 'create a token for a team and print it (once: it cannot be shown again)',
    description: 'Prints a new token for the team on stdout. Only its SHA-256 is stored; keep the token, it cannot be shown again.',
  },
  'serve tokens list': { summary: 'list the tokens: id, team, prefix, created, last used, revoked', aliases: ['ls'] },
  'serve tokens revoke': {
    args: 'ID',
    summary: 'revoke a token by its id or prefix',
    arguments: [{ label: 'ID', help: 'the token id (`tok_…`) or its prefix as `tokens list` shows it' }],
  },
} as const satisfies Record<CommandName, CommandSpec>;

const RUN_AND_DEMO = ['run', 'demo'] as const;
/** The run options `rlm eval` applies to each run. */
const RUN_AND_EVAL = ['run', 'eval'] as const;
/** The model options: `rlm eval rescore` takes them for the judge. */
const RUN_AND_EVAL_MODELS = ['run', 'eval', 'eval rescore'] as const;
/** The server and the management commands that open its database. */
const SERVE_DATABASE_COMMANDS = [
  'serve',
  'serve teams create',
  'serve teams list',
  'serve teams update',
  'serve runs prune',
  'serve tokens create',
  'serve tokens list',
  'serve tokens revoke',
] as const;

/** Every flag of every command. */
export const FLAGS = [
  // Query and context
  {
    name: 'query',
    type: 'string',
    value: 'Q',
    help: 'the question, instead of `[query]` (not both); for a question that starts with `-` or is one word like a command',
    group: 'Query and context',
    commands: ['run'],
  },
  {
    name: 'context-file',
    type: 'string',
    multiple: true,
    value: 'F',
    help: 'a file as the context; repeat it for several, which become a map of path → content; `-` reads standard input',
    group: 'Query and context',
    commands: ['run'],
  },
  {
    name: 'context-dir',
    type: 'string',
    value: 'DIR',
    help: 'every file under `DIR` as a map of relative path → content; dotfiles, symbolic links, `.git`, `node_modules` and what its `.gitignore` files ignore are left out',
    group: 'Query and context',
    commands: ['run'],
  },
  {
    name: 'glob',
    type: 'string',
    multiple: true,
    value: 'PATTERN',
    help: 'which files of `--context-dir`, e.g. `**/*.md`; `!PATTERN` leaves files out; repeatable',
    default: '`**/*`',
    group: 'Query and context',
    commands: ['run'],
  },
  {
    name: 'no-ignore',
    type: 'boolean',
    help: 'with `--context-dir`: read the files its `.gitignore` files ignore and those in `.git` and `node_modules` too',
    group: 'Query and context',
    commands: ['run'],
  },
  {
    name: 'context',
    type: 'string',
    value: 'TEXT',
    help: 'a literal context',
    details: 'Several sources combine into one map (`<stdin>`, `<context>` keys)',
    group: 'Query and context',
    commands: ['run'],
  },
  // Models
  {
    name: 'backend',
    type: 'string',
    value: 'NAME',
    help: "the root model's backend: `anthropic`, `claude-cli`, or an OpenAI-compatible preset: `openai`, `openrouter`, `huggingface`, `ollama`, `vllm`, `gemini`, `azure-openai`, `vercel`, `portkey`, `groq`, `deepseek`, `together`, `fireworks`, `custom`",
    default: '`anthropic`',
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_BACKEND',
    setting: { path: ['root', 'backend'], kind: 'string' },
  },
  {
    name: 'model',
    type: 'string',
    value: 'ID',
    help: "the root model (default: the backend's, e.g. `claude-sonnet-5-5`)",
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_MODEL',
    setting: { path: ['root', 'model'], kind: 'string' },
  },
  {
    name: 'base-url',
    type: 'string',
    value: 'URL',
    help: "the root backend's base URL",
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_BASE_URL',
    setting: { path: ['root', 'baseURL'], kind: 'string' },
  },
  {
    name: 'sub-backend',
    type: 'string',
    value: 'NAME',
    help: "the backend behind `llm_query` (default: the root's); another backend than the root's takes its own key and defaults, never the root's",
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_SUB_BACKEND',
    setting: { path: ['sub', 'backend'], kind: 'string' },
  },
  {
    name: 'sub-model',
    type: 'string',
    value: 'ID',
    help: 'the model behind `llm_query` (default: the root model)',
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_SUB_MODEL',
    setting: { path: ['sub', 'model'], kind: 'string' },
  },
  {
    name: 'sub-base-url',
    type: 'string',
    value: 'URL',
    help: "the sub backend's base URL",
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_SUB_BASE_URL',
    setting: { path: ['sub', 'baseURL'], kind: 'string' },
  },
  {
    name: 'max-output-tokens',
    type: 'string',
    value: 'N',
    help: 'cap on tokens per root model call',
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    env: 'RLM_MAX_OUTPUT_TOKENS',
    setting: { path: ['root', 'maxOutputTokens'], kind: 'integer' },
  },
  {
    name: 'model-alias',
    type: 'string',
    multiple: true,
    value: 'NAME[=BACKEND:MODEL]',
    help: "a model cells may name: `llm_query(p, { model: NAME })`, `rlm_query` too. `NAME` alone is that model id on the root's backend and base URL (`--model-alias gpt-5-nano`); `NAME=BACKEND:MODEL` a model on that backend (`cheap=openai:gpt-5-nano`, `local=ollama:qwen3:8b`), on the root's connection when it is the root's backend. Repeatable; replaces the config file's `models:` entry of that name",
    group: 'Models',
    commands: RUN_AND_EVAL_MODELS,
    setting: { path: ['models'], kind: 'model-alias' },
  },
  // Limits
  {
    name: 'max-iterations',
    type: 'string',
    value: 'N',
    help: 'model turns',
    default: String(DEFAULT_LIMITS.maxIterations),
    group: 'Limits (for the whole recursion tree)',
    commands: RUN_AND_EVAL,
    env: 'RLM_MAX_ITERATIONS',
    setting: { path: ['limits', 'maxIterations'], kind: 'integer' },
  },
  {
    name: 'max-depth',
    type: 'string',
    value: 'N',
    help: 'the deepest child RLM; 0 makes `rlm_query` a plain `llm_query`',
    default: String(DEFAULT_LIMITS.maxDepth),
    group: 'Limits (for the whole recursion tree)',
    commands: RUN_AND_EVAL,
    env: 'RLM_MAX_DEPTH',
    setting: { path: ['limits', 'maxDepth'], kind: 'integer' },
  },
  {
    name: 'timeout',
    type: 'string',
    value: 'S',
    help: 'wall-clock limit of the run, in seconds',
    group: 'Limits (for the whole recursion tree)',
    commands: RUN_AND_EVAL,
    env: 'RLM_TIMEOUT',
    setting: { path: ['limits', 'timeoutSeconds'], kind: 'number' },
  },
  {
    name: 'cell-timeout',
    type: 'string',
    value: 'S',
    help: 'limit of one code cell, in seconds',
    default: String(DEFAULT_LIMITS.cellTimeoutMs / 1000),
    group: 'Limits (for the whole recursion tree)',
    commands: RUN_AND_EVAL,
    env: 'RLM_CELL_TIMEOUT',
    setting: { path: ['limits', 'cellTimeoutSeconds'], kind: 'number' },
  },
  {
    name: 'budget',
    type: 'string',
    value: 'USD',
    help: 'spending limit in US dollars',
    group: 'Limits (for the whole recursion tree)',
    commands: ['run'],
    env: 'RLM_BUDGET',
    setting: { path: ['limits', 'maxCostUsd'], kind: 'number' },
  },
  {
    name: 'max-tokens',
    type: 'string',
    value: 'N',
    help: 'input + output tokens',
    group: 'Limits (for the whole recursion tree)',
    commands: RUN_AND_EVAL,
    env: 'RLM_MAX_TOKENS',
    setting: { path: ['limits', 'maxTokens'], kind: 'integer' },
  },
  {
    name: 'max-sandboxes',
    type: 'string',
    value: 'N',
    help: "sandboxes alive at once, the root's included; child RLMs beyond it wait, or are answered as plain `llm_query` calls when waiting could never end or would pass half the time left",
    details: 'Freed slots go to the deepest waiter; a child answered as `llm_query` gets a note in the trajectory and a `warning` event',
    default: String(DEFAULT_LIMITS.maxSandboxes),
    group: 'Limits (for the whole recursion tree)',
    commands: ['run'],
    env: 'RLM_MAX_SANDBOXES',
    setting: { path: ['limits', 'maxSandboxes'], kind: 'integer' },
  },
  // Run
  {
    name: 'language',
    type: 'string',
    value: 'L',
    help: 'the REPL language: `javascript` or `python`',
    default: '`javascript`',
    group: 'Run',
    commands: RUN_AND_EVAL,
    env: 'RLM_LANGUAGE',
    setting: { path: ['language'], kind: 'string' },
  },
  {
    name: 'runtime',
    type: 'string',
    value: 'NAME',
    help: 'OCI runtime of the sandboxes, e.g. `runsc` (gVisor)',
    group: 'Run',
    commands: ['run', 'demo', 'eval', 'sandbox check'],
    variants: { 'sandbox check': { help: 'OCI runtime of the sandbox, e.g. `runsc` (gVisor)' } },
    env: 'RLM_SANDBOX_RUNTIME',
    setting: { path: ['sandbox', 'runtime'], kind: 'string' },
  },
  {
    name: 'memory-mb',
    type: 'string',
    value: 'N',
    help: 'memory of each sandbox in MiB; a large context needs about three times its size',
    details: 'A context that cannot fit is refused with the figure to ask for; a cell or load killed at the limit says so',
    // DEFAULT_SANDBOX_LIMITS.memoryBytes in MiB (cli-flags.test.ts checks it; that module loads zod).
    default: '1024',
    group: 'Run',
    commands: RUN_AND_EVAL,
    env: 'RLM_SANDBOX_MEMORY_MB',
    setting: { path: ['sandbox', 'memoryMb'], kind: 'number' },
  },
  {
    name: 'log-dir',
    type: 'string',
    value: 'DIR',
    help: "write the run's trajectory (JSONL) there",
    group: 'Run',
    commands: RUN_AND_DEMO,
    variants: { demo: { help: 'where the trajectory goes', default: DEMO_LOG_DIR } },
    env: 'RLM_LOG_DIR',
    setting: { path: ['logDir'], kind: 'string' },
  },
  {
    name: 'config',
    type: 'string',
    value: 'FILE',
    help: 'the config file (default: `rlm.config.yaml`, `.yml` or `.json` in the working directory)',
    group: 'Run',
    commands: ['run', 'doctor', 'eval', 'eval rescore', 'serve'],
    variants: { doctor: { help: 'the config file to check (default: `rlm.config.yaml`, `.yml` or `.json` in the working directory)' } },
    env: 'RLM_CONFIG',
  },
  // rlm demo
  { name: 'print-document', type: 'boolean', help: 'print the sample document on stdout and exit', commands: ['demo'] },
  // rlm view
  { name: 'port', type: 'string', value: 'N', help: 'port on 127.0.0.1 to serve on (default: a free one)', commands: ['view'] },
  { name: 'no-open', type: 'boolean', help: 'print the URL without opening a browser', commands: ['view'] },
  // rlm eval
  {
    name: 'methods',
    type: 'string',
    value: 'LIST',
    help: 'comma-separated: `rlm`; `direct` (context and query in one prompt to the root model, cut to its window); `rlm-no-subcalls` (the REPL without `llm_query`/`rlm_query`)',
    default: '`rlm`',
    group: 'Dataset and methods',
    commands: ['eval'],
  },
  {
    name: 'field',
    type: 'string',
    multiple: true,
    value: 'NAME=COLUMN',
    help: 'read a task field from another column, e.g. `query=question`; repeatable',
    group: 'Dataset and methods',
    commands: ['eval'],
  },
  {
    name: 'limit',
    type: 'string',
    value: 'N',
    help: 'only the first N tasks',
    group: 'Dataset and methods',
    commands: ['eval'],
  },
  {
    name: 'sample',
    type: 'string',
    value: 'N',
    help: 'N tasks drawn at random (with --seed)',
    group: 'Dataset and methods',
    commands: ['eval'],
  },
  {
    name: 'seed',
    type: 'string',
    value: 'S',
    help: 'seed of --sample and of the bootstrap intervals',
    default: '0',
    group: 'Dataset and methods',
    commands: ['eval', 'eval generate', 'eval compare'],
    variants: { 'eval generate': { help: 'the same seed writes the same dataset' }, 'eval compare': { help: 'seed of the bootstrap interval' } },
  },
  {
    name: 'epochs',
    type: 'string',
    value: 'K',
    help: 'run each task K times (intervals are clustered by task)',
    default: '1',
    group: 'Dataset and methods',
    commands: ['eval'],
  },
  {
    name: 'scorer',
    type: 'string',
    value: 'NAME',
    help: 'how answers are scored, unless a task names its own: `exact`, `em`, `f1`, `contains`, `numeric`, `regex`, `choice`, `oolong`, `list-f1`, `judge`, or a path to a module exporting `score({ answer, expected, task })`',
    default: '`em`',
    group: 'Scoring',
    commands: ['eval', 'eval rescore'],
  },
  {
    name: 'tolerance',
    type: 'string',
    value: 'X',
    help: '`numeric`: the largest difference from the expected number still scored right',
    default: '0',
    group: 'Scoring',
    commands: ['eval', 'eval rescore'],
  },
  {
    name: 'judge-model',
    type: 'string',
    value: 'NAME',
    help: "`judge`: a model of `models:`/`--model-alias`, or a model id on the root's backend (default: the root model)",
    group: 'Scoring',
    commands: ['eval', 'eval rescore'],
  },
  {
    name: 'judge-prompt',
    type: 'string',
    value: 'FILE',
    help: "`judge`: the judge's prompt, replacing the built-in one",
    group: 'Scoring',
    commands: ['eval', 'eval rescore'],
  },
  {
    name: 'out',
    type: 'string',
    value: 'DIR',
    help: 'the evaluation directory; the same DIR again resumes (default: `rlm-evals/<dataset>-<timestamp>`)',
    group: 'Scale, budget and resume',
    commands: ['eval'],
  },
  {
    name: 'concurrency',
    type: 'string',
    value: 'N',
    help: '(task, method, epoch) runs at once',
    default: '4',
    group: 'Scale, budget and resume',
    commands: ['eval'],
  },
  {
    name: 'max-sandboxes',
    type: 'string',
    value: 'N',
    help: 'sandbox containers alive at once across the whole evaluation (default: 2 × --concurrency)',
    group: 'Scale, budget and resume',
    commands: ['eval'],
  },
  {
    name: 'retries',
    type: 'string',
    value: 'N',
    help: 'retries of a run that failed for an infrastructure reason (sandbox, Docker, provider 5xx/429, network)',
    default: '2',
    group: 'Scale, budget and resume',
    commands: ['eval'],
  },
  {
    name: 'budget',
    type: 'string',
    value: 'USD',
    help: 'spending limit of the whole evaluation in US dollars: once spent, nothing new starts and running tasks are stopped',
    group: 'Scale, budget and resume',
    commands: ['eval'],
  },
  // rlm eval generate
  { name: 'n', type: 'string', value: 'N', help: 'tasks to write', default: '50', commands: ['eval generate'] },
  { name: 'context-chars', type: 'string', value: 'N', help: 'characters of context per task', default: '100000', commands: ['eval generate'] },
  { name: 'out', type: 'string', value: 'FILE', help: 'the `.jsonl` file to write (default: standard output)', commands: ['eval generate'] },
  // rlm sandbox build
  {
    name: 'base-image',
    type: 'string',
    value: 'IMAGE',
    help: 'base the image on one you can pull, e.g. `node:24-bookworm-slim`',
    commands: ['sandbox build'],
    env: 'RLM_SANDBOX_BASE_IMAGE',
  },
  {
    name: 'node',
    type: 'string',
    value: 'PATH',
    help: 'the Node binary to copy into the image, a Linux executable (default: the one running rlm)',
    commands: ['sandbox build'],
    env: 'RLM_SANDBOX_NODE',
  },
  // rlm sandbox prune
  { name: 'all', type: 'boolean', help: 'remove every rlm sandbox, those of running processes too', commands: ['sandbox prune'] },
  { name: 'images', type: 'boolean', help: 'also remove sandbox images older than the current one', commands: ['sandbox prune'] },
  // rlm sandbox exec
  { name: 'file', type: 'string', value: 'F', help: 'read the cell from F instead of CODE', commands: ['sandbox exec'] },
  { name: 'context-file', type: 'string', value: 'F', help: "a file as the sandbox's `context`", commands: ['sandbox exec'] },
  { name: 'timeout', type: 'string', value: 'S', help: 'limit of the cell, in seconds', default: '60', commands: ['sandbox exec'] },
  // rlm serve
  {
    name: 'host',
    type: 'string',
    value: 'ADDRESS',
    help: 'the address to listen on (`0.0.0.0` for every interface)',
    default: '`127.0.0.1`',
    group: 'Server',
    commands: ['serve'],
    env: 'RLM_SERVE_HOST',
  },
  {
    name: 'port',
    type: 'string',
    value: 'N',
    help: 'the port to listen on (0: a free one)',
    default: '8080',
    group: 'Server',
    commands: ['serve'],
    env: 'RLM_SERVE_PORT',
  },
  {
    name: 'role',
    type: 'string',
    value: 'ROLE',
    help: "`all`: the API and a worker in one process; `api`: the HTTP API only (no Docker); `worker`: claims runs and runs them on this machine's Docker engine (serves only /healthz, /readyz, /metrics). `api` and `worker` need PostgreSQL",
    default: '`all`',
    group: 'Server',
    commands: ['serve'],
    env: 'RLM_SERVE_ROLE',
  },
  {
    name: 'max-body-mb',
    type: 'string',
    value: 'MB',
    help: 'largest request body in MiB; a larger one gets 413',
    default: '64',
    group: 'Server',
    commands: ['serve'],
  },
  {
    name: 'grace-seconds',
    type: 'string',
    value: 'S',
    help: 'on SIGTERM, how long running runs may take to finish before they are cancelled',
    default: '30',
    group: 'Server',
    commands: ['serve'],
  },
  {
    name: 'database',
    type: 'string',
    value: 'URL',
    help: 'a PostgreSQL URL (`postgres://user:pass@host/db`); without it, the embedded database in --data-dir',
    group: 'Database',
    commands: SERVE_DATABASE_COMMANDS,
    env: 'DATABASE_URL',
  },
  {
    name: 'data-dir',
    type: 'string',
    value: 'DIR',
    help: "the embedded database's directory (one `rlm serve` at a time)",
    default: '`./rlm-data`',
    group: 'Database',
    commands: SERVE_DATABASE_COMMANDS,
    env: 'RLM_DATA_DIR',
  },
  {
    name: 'max-running',
    type: 'string',
    value: 'N',
    help: 'runs this server runs at once (each needs at least one sandbox)',
    default: 'the pool size',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'max-sandboxes',
    type: 'string',
    value: 'N',
    help: "the sandbox pool's bound: sandboxes alive at once across all runs",
    default: '8',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'warm',
    type: 'string',
    value: 'N',
    help: 'JavaScript sandboxes kept started and ready',
    default: '2',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'worker-id',
    type: 'string',
    value: 'ID',
    help: "this worker's name in leases, GET /v1/admin/workers and the metrics' `worker` label",
    default: '`<host>-<pid>`',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'lease-seconds',
    type: 'string',
    value: 'S',
    help: "a claimed run's lease, renewed every third of it; a run whose worker stopped renewing is recovered once it expires",
    default: '30',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'max-attempts',
    type: 'string',
    value: 'N',
    help: 'claims of one run: a run whose worker died is run again by another until it was claimed N times, then fails with `worker_lost` (`--role worker`; `all` fails it with `interrupted` unless `serve.retryInterrupted`)',
    default: '2',
    group: 'Sandboxes and runs',
    commands: ['serve'],
  },
  {
    name: 'retain-days',
    type: 'string',
    value: 'DAYS',
    help: 'prune runs that finished more than DAYS ago (fractions allowed), with their events, input and trajectory: at start, then every hour (roles `all` and `api`)',
    default: 'keep every run',
    group: 'Database',
    commands: ['serve'],
    env: 'RLM_SERVE_RETAIN_DAYS',
  },
  // rlm serve teams create / update / tokens
  {
    name: 'budget-usd',
    type: 'string',
    value: 'USD',
    help: "the team's total spend; runs are refused (429) once it is spent",
    default: 'no limit',
    commands: ['serve teams create', 'serve teams update'],
    variants: { 'serve teams update': { help: "the team's new total spend; runs are refused (429) once it is spent", default: 'unchanged' } },
  },
  { name: 'no-budget', type: 'boolean', help: 'remove the budget: no spending limit', commands: ['serve teams update'] },
  {
    name: 'max-concurrent-runs',
    type: 'string',
    value: 'N',
    help: "the team's runs running at once",
    default: '4',
    commands: ['serve teams create', 'serve teams update'],
    variants: { 'serve teams update': { default: 'unchanged' } },
  },
  {
    name: 'max-queued',
    type: 'string',
    value: 'N',
    help: "the team's runs waiting at once; beyond, 429 with Retry-After",
    default: '100',
    commands: ['serve teams create', 'serve teams update'],
    variants: { 'serve teams update': { default: 'unchanged' } },
  },
  {
    name: 'models',
    type: 'string',
    value: 'LIST',
    help: 'comma-separated configured model names the team may use (`rlm:NAME`); the default model always',
    default: 'all',
    commands: ['serve teams create', 'serve teams update'],
    variants: { 'serve teams update': { default: 'unchanged' } },
  },
  { name: 'all-models', type: 'boolean', help: 'let the team use every configured model', commands: ['serve teams update'] },
  {
    name: 'team',
    type: 'string',
    value: 'NAME',
    help: 'the team',
    commands: ['serve tokens create', 'serve tokens list', 'serve runs prune'],
    variants: { 'serve runs prune': { help: "only this team's runs", default: 'every team' } },
  },
  { name: 'admin', type: 'boolean', help: 'an admin token: it also reads `/v1/admin/*` (the workers)', commands: ['serve tokens create'] },
  // rlm serve runs prune
  {
    name: 'older-than',
    type: 'string',
    value: 'DAYS',
    help: 'prune the runs that finished more than DAYS ago (a positive number; fractions allowed: 0.5 is 12 hours)',
    commands: ['serve runs prune'],
  },
  { name: 'dry-run', type: 'boolean', help: 'count what would be pruned, delete nothing', commands: ['serve runs prune'] },
  // Output
  {
    name: 'json',
    type: 'boolean',
    help: 'print exactly one JSON object on stdout and nothing else there: `answer`, `success`, `error`, `limitReached`, `iterations`, `usage`, `costUsd`, `durationMs`, `trajectoryFile`',
    details:
      '`usage` is per model: `calls`, `inputTokens`, `outputTokens`, `cacheReadTokens`, `cacheWriteTokens`, `costUsd`. A run that fails before it starts (missing key or file, Docker down) still prints one object, with `error`; bad usage (exit 2) prints none',
    group: 'Output',
    commands: [
      'run',
      'demo',
      'doctor',
      'eval',
      'eval rescore',
      'eval compare',
      'sandbox ls',
      'sandbox check',
      'sandbox exec',
      'serve teams create',
      'serve teams list',
      'serve teams update',
      'serve runs prune',
      'serve tokens create',
      'serve tokens list',
    ],
    variants: {
      eval: { help: 'print `summary.json` on stdout and nothing else there' },
      'eval rescore': { help: 'print the new `summary.json` on stdout and nothing else there' },
      'eval compare': { help: 'print the comparison as one JSON array' },
      demo: { help: 'print exactly one JSON object on stdout, as `rlm` does, with `"scripted": true`' },
      doctor: { help: "print the checks as one JSON object: `ok`, and each check's `name`, `status`, `detail` and `fix`" },
      'sandbox ls': { help: 'print the sandboxes as one JSON array' },
      'serve teams create': { help: 'print the team as one JSON object' },
      'serve teams list': { help: 'print the teams as one JSON array' },
      'serve teams update': { help: 'print the team as it now is, as one JSON object of `teams list`' },
      'serve runs prune': { help: 'print one JSON object: `runs`, `events` and `finishedBefore` (an ISO time)' },
      'serve tokens create': { help: 'print one JSON object: `token` (shown once) and its record' },
      'serve tokens list': { help: 'print the tokens as one JSON array' },
      'sandbox check': { help: 'print one JSON object: `ok`, `startMs` and the findings' },
      'sandbox exec': { help: "print the cell's result as one JSON object" },
    },
  },
  {
    name: 'verbose',
    type: 'boolean',
    help: "print each turn's model response, code, output and sub-calls on stderr, child RLMs indented",
    group: 'Output',
    commands: RUN_AND_DEMO,
  },
  { name: 'quiet', type: 'boolean', help: 'print nothing on stderr but errors', group: 'Output', commands: ['run', 'demo', 'eval'] },
  // Every command
  {
    name: 'help',
    short: 'h',
    type: 'boolean',
    help: 'this help',
    group: 'Output',
    commands: [
      'run',
      'demo',
      'doctor',
      'view',
      'eval',
      'eval generate',
      'eval rescore',
      'eval compare',
      'sandbox',
      'sandbox build',
      'sandbox ls',
      'sandbox prune',
      'sandbox check',
      'sandbox exec',
      'serve',
      'serve teams',
      'serve teams create',
      'serve teams list',
      'serve teams update',
      'serve runs',
      'serve runs prune',
      'serve tokens',
      'serve tokens create',
      'serve tokens list',
      'serve tokens revoke',
    ],
    meta: true,
  },
  { name: 'version', short: 'v', type: 'boolean', help: 'the version', group: 'Output', commands: ['run'], meta: true },
] as const satisfies readonly FlagSpec[];

type Flag = (typeof FLAGS)[number];

/** The flags `command` takes. */
export type FlagOf<C extends CommandName> = Flag extends infer F
  ? F extends { readonly commands: readonly (infer T)[] }
    ? C extends T
      ? F
      : never
    : never
  : never;

/** What parsing `command`'s flags gives: a string (a list, if repeatable) or a boolean by name; absent when not given. */
export type FlagValues<C extends CommandName> = {
  [F in FlagOf<C> as F['name']]?: F['type'] extends 'boolean' ? boolean : F extends { readonly multiple: true } ? string[] : string;
};

/** The flags of `command`, in the tables' order. */
export function flagsOf(command: CommandName): FlagSpec[] {
  return (FLAGS as readonly FlagSpec[]).filter((flag) => flag.commands.includes(command));
}

/** `flag` as `command` shows it: its help and default, with the command's variant applied. */
export function flagFor(flag: FlagSpec, command: CommandName): FlagSpec {
  const variant = flag.variants?.[command];
  return variant ? { ...flag, ...variant } : flag;
}

/** The commands right under `command`: the top-level commands under `run`, `sandbox build`… under `sandbox`. */
export function subcommandsOf(command: CommandName): CommandName[] {
  const names = Object.keys(COMMANDS) as CommandName[];
  if (command === 'run') return names.filter((name) => name !== 'run' && !name.includes(' '));
  // Only the children: `serve teams`, not `serve teams create`.
  return names.filter((name) => name.startsWith(`${command} `) && !name.slice(command.length + 1).includes(' '));
}

/** The command called `words` (what follows `rlm`), an alias's included: `sandbox list` is `sandbox ls`. */
export function findCommand(words: string): CommandName | undefined {
  for (const [name, spec] of Object.entries(COMMANDS) as Array<[CommandName, CommandSpec]>) {
    if (name === words) return name;
    const parent = name.includes(' ') ? `${name.slice(0, name.lastIndexOf(' '))} ` : '';
    if (spec.aliases?.some((alias) => `${parent}${alias}` === words)) return name;
  }
  return undefined;
}
