/**
 * `rlm demo`: a complete run with no API key — a real sandbox, real sub-calls and child RLM, a
 * real trajectory — on a bundled document, driven by a scripted model that says it is scripted.
 */
import os from 'node:os';
import path from 'node:path';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { outputModeOf, parseFlags } from './run-flags.js';

export const DEMO_HELP = `Usage: rlm demo [options]

A complete RLM run on a bundled sample document (a synthetic ~270 KB operations log with one
planted fact), with a SCRIPTED model: a built-in stand-in that follows a fixed, plausible plan.
No API key and no network are needed; the sandbox, the sub-calls (llm_query_batched, rlm_query)
and the trajectory are real.

Options:
  --log-dir DIR       where the trajectory goes (default: ${path.join(os.tmpdir(), 'rlm-demo')})
  --runtime NAME      OCI runtime of the sandboxes, e.g. runsc (gVisor)
  --json              print one JSON object on stdout (with "scripted": true)
  --verbose           print each turn's code and output on stderr
  --quiet             print nothing on stderr but errors
  --print-document    print the sample document on stdout and exit
  --help, -h          this help
`;

const DEMO_FLAGS = {
  'log-dir': { type: 'string' },
  runtime: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean' },
  'print-document': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function demoCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, DEMO_FLAGS);
  if (values.help) {
    io.stdout(DEMO_HELP);
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
  const logDir = path.resolve(cwd, values['log-dir'] ?? io.env.RLM_LOG_DIR ?? path.join(os.tmpdir(), 'rlm-demo'));
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
