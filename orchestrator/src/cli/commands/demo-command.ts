/**
 * `rlm demo`: a complete run with no API key — a real sandbox, real sub-calls and child RLM, a
 * real trajectory — on a bundled document, driven by a scripted model that says it is scripted.
 */
import path from 'node:path';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { DEMO_LOG_DIR } from '../flags/cli-flags.js';
import { helpText } from '../flags/help-text.js';
import { parseCommandFlags } from '../flags/parse-flags.js';
import { outputModeOf } from './run-flags.js';

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'demo');
  if (values.help) {
    io.stdout(helpText('demo'));
    return ExitCode.ok;
  }
  if (positionals.length > 0) throw new UsageError(`rlm demo takes no arguments; got ${JSON.stringify(positionals[0])}`);
  // Loaded once the flags are read, so `rlm demo --help` starts without the engine's dependencies.
  const { DEMO_QUERY, sampleDocument } = await import('../demo/sample-document.js');
  const document = sampleDocument();
  if (values['print-document']) {
    io.stdout(document);
    return ExitCode.ok;
  }
  const output = outputModeOf(values);
  const [{ DEMO_ROOT_MODEL, DEMO_SUB_MODEL, demoRootModel, demoSubModel }, { executeRun, stderrPalette }] = await Promise.all([
    import('../demo/demo-model.js'),
    import('../run/execute-run.js'),
  ]);
  const cwd = io.cwd ?? process.cwd();
  const logDir = path.resolve(cwd, values['log-dir'] ?? io.env.RLM_LOG_DIR ?? DEMO_LOG_DIR);
  const c = stderrPalette(io);
  const lines = document.split('\n').length - 1;
  const banner =
    `${c.bold(c.yellow('rlm demo — the model is SCRIPTED'))}${c.yellow(': a built-in stand-in following a fixed plan (no API key, no network).')}\n` +
    c.dim(
      `The sandbox, the sub-calls and the trajectory are real. Document: a synthetic operations log, ${Math.round(document.length / 1024)} KB, ${lines.toLocaleString('en-US')} lines.\n`,
    ) +
    `${c.bold('Query:')} ${DEMO_QUERY}\n`;
  return executeRun({
    io,
    output,
    banner,
    context: document,
    query: DEMO_QUERY,
    extraJson: { scripted: true, model: 'scripted (rlm demo): not a real language model' },
    rlm: {
      root: { backend: demoRootModel(), model: DEMO_ROOT_MODEL },
      sub: { backend: demoSubModel(), model: DEMO_SUB_MODEL },
      limits: { maxIterations: 12, maxDepth: 1 },
      // A scripted model costs nothing: priced at zero, so the cost shows as $0 rather than unknown.
      prices: { [DEMO_ROOT_MODEL]: { input: 0, output: 0 }, [DEMO_SUB_MODEL]: { input: 0, output: 0 } },
      logDir,
      ...(values.runtime ? { sandbox: { runtime: values.runtime } } : {}),
    },
  });
}
