/**
 * `rlm view [dir|file] [--port N] [--no-open]`: a local web page for browsing trajectories; on an
 * evaluation's directory (`rlm eval`), its report.html, each task linking to its trajectory. The
 * viewer and the config file's reader (zod, yaml) are imported where they are used, so that
 * `rlm view --help` and a usage error start at once.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import type { RunDirectory } from '../../viewer/run-directory.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { DEFAULT_VIEW_DIR } from '../flags/cli-flags.js';
import { helpText } from '../flags/help-text.js';
import { gotValue, helpHint, parseCommandFlags } from '../flags/parse-flags.js';

const HINT = helpHint('view');

export async function viewCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'view');
  if (values.help) {
    io.stdout(helpText('view'));
    return ExitCode.ok;
  }
  if (positionals.length > 1) throw new UsageError(`give one directory or file to view, got ${positionals.length}`, { hint: HINT });
  const port = parsePort(values.port);
  const cwd = io.cwd ?? process.cwd();

  const given = positionals[0];
  const target: Target = given === undefined ? await defaultDirectory(io, cwd) : { given };
  const { directory, initialFile, evaluation } = await locate(target.given, target.explained, cwd);

  const [{ startViewerServer }, { openInBrowser }] = await Promise.all([import('../../viewer/viewer-server.js'), import('../../viewer/open-browser.js')]);
  const server = await startViewerServer({ directory, initialFile, port, report: evaluation });
  try {
    const url = initialFile ? `${server.url}#run=${encodeURIComponent(initialFile)}` : evaluation ? `${server.url}report.html` : server.url;
    io.stdout(`rlm view: ${directory.displayPath} at ${url}\n`);
    io.stderr('Press Ctrl-C to stop.\n');
    if (!values['no-open']) await openInBrowser(url, { env: io.env });
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) resolve();
      else io.signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    await server.close();
  }
  // Ctrl-C is how a viewer is meant to end: a normal exit.
  return ExitCode.ok;
}

interface Target {
  given: string;
  /** How the directory was chosen, when it was not given (for the error when it is missing). */
  explained?: string;
}

async function defaultDirectory(io: CliIo, cwd: string): Promise<Target> {
  const fromEnv = io.env.RLM_LOG_DIR;
  if (fromEnv) return { given: fromEnv, explained: 'RLM_LOG_DIR' };
  const [{ loadConfig }, { CONFIG_ENV }] = await Promise.all([import('../config/load-config.js'), import('../config/settings.js')]);
  const config = await loadConfig({ cwd, explicit: io.env[CONFIG_ENV] || undefined });
  if (config?.config.logDir) return { given: path.resolve(path.dirname(config.path), config.config.logDir), explained: `logDir in ${config.file}` };
  return { given: `./${DEFAULT_VIEW_DIR}`, explained: 'the default' };
}

/** The directory to serve and the run to open, from a directory or `.jsonl` file argument. */
async function locate(
  given: string,
  explained: string | undefined,
  cwd: string,
): Promise<{ directory: RunDirectory; initialFile: string | null; evaluation: boolean }> {
  const absolute = path.resolve(cwd, given);
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absolute);
  } catch (error) {
    const code = errorCode(error);
    if (explained !== undefined && code === 'ENOENT') {
      throw new RlmError(
        `no trajectories: ${given} (${explained}) does not exist; write some with \`rlm --log-dir ${given} …\`, or name a directory: rlm view DIR`,
        { cause: error },
      );
    }
    const why = code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (code ?? errorMessage(error));
    throw new RlmError(`cannot open ${given}: ${why}; give a directory of .jsonl trajectories or one .jsonl file`, { cause: error });
  }
  const { RunDirectory } = await import('../../viewer/run-directory.js');
  if (info.isDirectory()) {
    // An evaluation's directory (`rlm eval --out DIR`) opens on its report, whose links open each
    // trajectory in the viewer; the list shows its trajectories, not results.jsonl.
    if (await isEvaluation(absolute))
      return { directory: await RunDirectory.open(absolute, given, { listed: 'trajectories' }), initialFile: null, evaluation: true };
    return { directory: await RunDirectory.open(absolute, given), initialFile: null, evaluation: false };
  }
  if (!info.isFile() || !absolute.endsWith('.jsonl')) throw new RlmError(`${given} is not a .jsonl trajectory; give a directory of them or one .jsonl file`);
  const dir = path.dirname(absolute);
  return { directory: await RunDirectory.open(dir, path.dirname(given)), initialFile: path.basename(absolute), evaluation: false };
}

/** Whether `dir` is an evaluation's directory: it has the `eval.json` that `rlm eval` writes. */
async function isEvaluation(dir: string): Promise<boolean> {
  try {
    return (await stat(path.join(dir, 'eval.json'))).isFile();
  } catch {
    return false;
  }
}

function parsePort(value: string | undefined): number {
  if (value === undefined) return 0;
  const port = Number(value);
  if (!/^\d+$/.test(value) || !Number.isInteger(port) || port < 1 || port > 65_535)
    throw new UsageError(`--port must be a port number from 1 to 65535 (got ${gotValue(value)})`, { hint: HINT });
  return port;
}
