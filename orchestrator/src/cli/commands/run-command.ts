/**
 * `rlm [query] [options]`: answer a query over a context with a Recursive Language Model.
 */
import { RlmError } from '../../errors.js';
import type { RlmOptions } from '../../engine/rlm-options.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { createModelRoles } from '../config/model-roles.js';
import { limitsOf, resolveSettings, sandboxOptionsOf, type ResolvedSettings } from '../config/settings.js';
import { loadContext } from '../context/load-context.js';
import { executeRun, failedJson } from '../run/execute-run.js';
import { helpText } from '../flags/help-text.js';
import { outputModeOf, parseFlags, RUN_FLAGS } from './run-flags.js';

export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, RUN_FLAGS);
  if (values.help) {
    io.stdout(helpText('run'));
    return ExitCode.ok;
  }
  const output = outputModeOf(values);
  const stdinDash = positionals.includes('-');
  const words = positionals.filter((p) => p !== '-');
  if (words.length > 1)
    throw new UsageError(`give the query as one argument (quote it); got ${words.length} arguments: ${words.map((w) => JSON.stringify(w)).join(' ')}`);
  if (words.length === 1 && values.query !== undefined) throw new UsageError('give the query either as an argument or with --query, not both');
  const query = values.query ?? words[0];
  if (query === undefined || query.trim() === '') throw new UsageError('no query: rlm "your question" --context-file FILE');

  const cwd = io.cwd ?? process.cwd();
  const settings = await resolveSettings({ flags: values, env: io.env, cwd });
  try {
    const context = await loadContext(
      {
        files: values['context-file'] ?? [],
        dir: values['context-dir'],
        globs: values.glob ?? [],
        literal: values.context,
        stdin: stdinDash,
        noIgnore: values['no-ignore'],
      },
      { cwd, stdin: io.stdin ?? process.stdin },
    );
    try {
      const rlm = buildRlmOptions(settings);
      return await executeRun({ io, rlm, context: context.value, query, output });
    } finally {
      // Standard input's temporary file goes when the run ends, however it ends.
      await context.dispose();
    }
  } catch (error) {
    // With --json, stdout still carries one object saying what went wrong.
    if (output.json && RlmError.isInstance(error) && !io.signal.aborted) io.stdout(`${JSON.stringify(failedJson(error.message), null, 2)}\n`);
    throw error;
  }
}

/**
 * The engine's options from resolved settings: the root, sub and named models (one backend per
 * distinct connection), limits in milliseconds, sandbox limits in bytes, prices with the named
 * models' own.
 *
 * @throws {RlmError} a backend cannot be created (unknown name, missing key: one line naming it).
 */
export function buildRlmOptions(settings: ResolvedSettings): Omit<RlmOptions, 'onEvent'> {
  const { config } = settings;
  const sandbox = sandboxOptionsOf(config);
  return {
    ...createModelRoles(settings),
    language: config.language ?? 'javascript',
    limits: limitsOf(config),
    ...(Object.keys(sandbox).length > 0 ? { sandbox } : {}),
    ...(settings.prices ? { prices: settings.prices } : {}),
    ...(config.logDir ? { logDir: config.logDir } : {}),
  };
}
