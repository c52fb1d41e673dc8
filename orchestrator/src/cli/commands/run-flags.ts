/**
 * The main command's help and flags, and the flag parsing `rlm demo` and `rlm doctor` share. Light
 * on purpose (Node built-ins only): `rlm --help` prints from here without loading the run's
 * dependencies (the provider SDKs, zod, dockerode).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { errorMessage } from '../../errors.js';
import { UsageError } from '../cli-io.js';
import type { OutputMode } from '../run/execute-run.js';

export const RUN_HELP = `Usage: rlm [query] [options]
       rlm <command> [options]

Answer a query over a context with a Recursive Language Model: the context is a variable in a
sandboxed REPL, the model writes code to read it and calls sub-models on the pieces.

Commands:
  demo                 a complete run on a bundled document with a scripted model (no API key)
  doctor               check Node, Docker, the sandbox image and provider keys
  view [dir|file]      browse trajectories in the browser
  sandbox <command>    build, list, prune and check sandboxes (rlm sandbox --help)

Query and context:
  [query], --query Q   the question (positional or --query, not both)
  --context-file F     a file as the context; repeat for several (a map of path → content);
                       - reads standard input
  --context-dir DIR    every file of DIR as a map of relative path → content
  --glob PATTERN       which files of --context-dir (repeatable; default '**/*', e.g. '**/*.md')
  --context TEXT       a literal context
  -                    read the context from standard input

Models:
  --backend NAME       root model's backend: anthropic (default), claude-cli, openai, openrouter,
                       huggingface, ollama, vllm, gemini, azure-openai, vercel, portkey, groq,
                       deepseek, together, fireworks, custom
  --model ID           root model (default: the backend's default, e.g. claude-sonnet-5-5)
  --base-url URL       root backend's base URL
  --sub-backend NAME   backend for llm_query (default: the root's)
  --sub-model ID       model for llm_query (default: the root model)
  --sub-base-url URL   sub backend's base URL
  --max-output-tokens N  cap on tokens per root model call
  --model-alias NAME[=BACKEND:MODEL]
                       a model cells may name: llm_query(p, { model: NAME }), rlm_query too;
                       NAME alone is that model id on the root's backend and base URL
                       (--model-alias gpt-5-nano), else cheap=openai:gpt-5-nano; repeatable,
                       and beats the config file's models: entry of the same name

Limits (for the whole recursion tree):
  --max-iterations N   model turns (default 30)
  --max-depth N        deepest child RLM; 0 makes rlm_query a plain llm_query (default 1)
  --timeout S          wall-clock limit of the run, seconds
  --cell-timeout S     limit of one code cell, seconds (default 120)
  --budget USD         spending limit in US dollars
  --max-tokens N       input + output tokens
  --max-sandboxes N    sandboxes alive at once, the root's included (default 4); child RLMs
                       beyond it wait, or are answered as plain llm_query calls when waiting
                       could never end or would pass half the time left

Run:
  --language L         REPL language: javascript (default) or python
  --runtime NAME       OCI runtime of the sandboxes, e.g. runsc (gVisor)
  --memory-mb N        memory of each sandbox in MiB (default 1024); a large context needs
                       about three times its size
  --log-dir DIR        write the run's trajectory (JSONL) there
  --config FILE        config file (default: rlm.config.yaml, .yml or .json here)

Output:
  --json               print one JSON object on stdout (answer, success, error, iterations,
                       usage, costUsd, durationMs, trajectoryFile)
  --verbose            print each turn's code and output on stderr
  --quiet              print nothing on stderr but errors
  --help, -h           this help
  --version, -v        the version

Precedence: flags, then environment (RLM_BACKEND, RLM_MODEL, RLM_SUB_MODEL, RLM_LOG_DIR…; see
the README), then the config file, then defaults. API keys come from the environment only
(ANTHROPIC_API_KEY, OPENAI_API_KEY…); the config file names the variable, never the key.

Exit codes: 0 answered, 1 the run failed (a failed call), 2 bad usage or config,
3 the provider refused (bad key, no permission, unknown model, unreachable base URL),
4 Docker or the sandbox failed (no engine, no image, a sandbox that died or ran out of
memory), 5 a limit stopped the run before it answered, 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
`;

/** Flags that take a value, shared with `rlm demo` where they apply. */
export const RUN_FLAGS = {
  query: { type: 'string' },
  'context-file': { type: 'string', multiple: true },
  'context-dir': { type: 'string' },
  glob: { type: 'string', multiple: true },
  context: { type: 'string' },
  backend: { type: 'string' },
  model: { type: 'string' },
  'base-url': { type: 'string' },
  'sub-backend': { type: 'string' },
  'sub-model': { type: 'string' },
  'sub-base-url': { type: 'string' },
  'max-output-tokens': { type: 'string' },
  'model-alias': { type: 'string', multiple: true },
  language: { type: 'string' },
  runtime: { type: 'string' },
  'memory-mb': { type: 'string' },
  'max-iterations': { type: 'string' },
  'max-depth': { type: 'string' },
  timeout: { type: 'string' },
  'cell-timeout': { type: 'string' },
  budget: { type: 'string' },
  'max-tokens': { type: 'string' },
  'max-sandboxes': { type: 'string' },
  'log-dir': { type: 'string' },
  config: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

/** Runs `parseArgs`, turning its errors (unknown flag, missing value) into usage errors. */
export function parseFlags<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true, allowNegative: false });
  } catch (error) {
    throw new UsageError(errorMessage(error).replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export function outputModeOf(values: { json?: boolean | undefined; verbose?: boolean | undefined; quiet?: boolean | undefined }): OutputMode {
  if (values.verbose && values.quiet) throw new UsageError('--verbose and --quiet contradict each other; choose one');
  return { json: values.json ?? false, verbose: values.verbose ?? false, quiet: values.quiet ?? false };
}
