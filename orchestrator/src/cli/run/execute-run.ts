/**
 * Runs one RLM for the CLI (`rlm [query]` and `rlm demo`): connects to Docker, makes sure the
 * sandbox image exists, drives the run with a live status line, prints the answer (or one JSON
 * object) on stdout, and turns Ctrl-C into exit code 130 once the run's sandboxes are gone.
 */
import type Dockerode from 'dockerode';
import { RLM, type RlmResult } from '../../engine/rlm.js';
import type { RlmOptions } from '../../engine/rlm-options.js';
import { setLogSink } from '../../logging.js';
import type { ContextValue } from '../../sandbox/context-files.js';
import { createDockerClient, pingDocker } from '../../sandbox/docker-client.js';
import { ensureSandboxImage } from '../../sandbox/image/ensure-sandbox-image.js';
import { currentOwner, listSandboxes } from '../../sandbox/reaper.js';
import { ExitCode, exitCodeFor, type CliIo } from '../cli-io.js';
import { colorEnabled, paletteFor, type Palette } from '../output/colors.js';
import { formatCost, formatDuration, formatTokens, plural } from '../output/format.js';
import { RunReporter } from '../output/run-reporter.js';
import { StatusLine } from '../output/status-line.js';

export interface OutputMode {
  /** One JSON object on stdout and nothing else there. */
  json: boolean;
  /** Each turn's code and output on stderr. */
  verbose: boolean;
  /** Nothing on stderr but errors. */
  quiet: boolean;
}

export interface ExecuteRunOptions {
  io: CliIo;
  /** Everything but `onEvent` (the CLI's) and the sandbox's engine and image (found here). */
  rlm: Omit<RlmOptions, 'onEvent'>;
  context: ContextValue;
  query: string;
  output: OutputMode;
  /** Lines written to stderr before the run (unless `quiet`), e.g. the demo's "scripted model" banner. */
  banner?: string | undefined;
  /** Extra fields of the `--json` object (the demo's `scripted: true`). */
  extraJson?: Readonly<Record<string, unknown>>;
}

/** The `--json` object. */
export interface JsonRunResult {
  answer: string | null;
  success: boolean;
  error: string | null;
  limitReached: string | null;
  iterations: number;
  usage: RlmResult['usage'];
  costUsd: number | null;
  durationMs: number;
  trajectoryFile: string | null;
  [extra: string]: unknown;
}

/** The `--json` object for a run that failed before it started (missing key, Docker down…). */
export function failedJson(error: string, extra: Readonly<Record<string, unknown>> = {}): JsonRunResult {
  return { answer: null, success: false, error, limitReached: null, iterations: 0, usage: {}, costUsd: null, durationMs: 0, trajectoryFile: null, ...extra };
}

export function stderrPalette(io: CliIo): Palette {
  return paletteFor(colorEnabled(io.env, io.stderrIsTTY ?? false));
}

/**
 * Runs it and returns the exit code: 0 answered; for a run that failed, the code of its error
 * ({@link exitCodeFor}: 1 a limit or a failed call, 3 the provider refused, 4 the sandbox failed);
 * 130 interrupted.
 *
 * @throws {RlmError} Docker is unreachable or the image cannot be built (one line with the fix).
 */
export async function executeRun(options: ExecuteRunOptions): Promise<number> {
  const { io, output } = options;
  const palette = stderrPalette(io);
  const status = new StatusLine({ write: io.stderr, enabled: (io.stderrIsTTY ?? false) && !output.quiet, columns: io.stderrColumns ?? (() => 80) });
  const reporter = new RunReporter({ status, palette, verbose: output.verbose && !output.quiet });
  // Warnings (e.g. unenforced limits) scroll above the status line instead of breaking it.
  const previousSink = setLogSink((line) => status.log(`${line}\n`));
  let docker: Dockerode | undefined;
  try {
    if (options.banner && !output.quiet) status.log(options.banner);
    reporter.setPhase('connecting to Docker');
    docker = createDockerClient({ env: io.env });
    await pingDocker(docker, { signal: io.signal });
    let image = options.rlm.sandbox?.image;
    if (image === undefined) {
      reporter.setPhase('preparing the sandbox image');
      const ensured = await ensureSandboxImage({ docker, signal: io.signal, onProgress: () => reporter.setPhase('building the sandbox image (first use)') });
      image = ensured.tag;
      if (ensured.built && !output.quiet) reporter.note(palette.dim(`built the sandbox image ${ensured.tag} in ${formatDuration(ensured.durationMs)}`));
    }
    reporter.setPhase('starting the sandbox');
    const rlm = new RLM({
      ...options.rlm,
      sandbox: { ...options.rlm.sandbox, docker, image },
      onEvent: (event) => reporter.onEvent(event),
    });
    const result = await rlm.completion({ context: options.context, query: options.query, signal: io.signal });
    reporter.stop();
    return report(result, options, palette, reporter);
  } catch (error) {
    reporter.stop();
    if (io.signal.aborted) {
      const left = docker ? await removeOwnSandboxes(docker) : 0;
      io.stderr(`rlm: interrupted; ${left > 0 ? `removed ${plural(left, 'sandbox', 'sandboxes')} left running` : "the run's sandboxes are removed"}\n`);
      if (output.json) io.stdout(`${JSON.stringify(failedJson('interrupted', options.extraJson))}\n`);
      return ExitCode.interrupted;
    }
    throw error;
  } finally {
    reporter.stop();
    setLogSink(previousSink);
  }
}

function report(result: RlmResult, options: ExecuteRunOptions, c: Palette, reporter: RunReporter): number {
  const { io, output } = options;
  if (output.json) {
    const json: JsonRunResult = {
      answer: result.answer,
      success: result.success,
      error: result.error?.message ?? null,
      limitReached: result.limitReached,
      iterations: result.iterations,
      usage: result.usage,
      costUsd: result.costUsd,
      durationMs: Math.round(result.durationMs),
      trajectoryFile: result.trajectoryFile,
      ...options.extraJson,
    };
    io.stdout(`${JSON.stringify(json, null, 2)}\n`);
  } else if (result.answer !== null) {
    io.stdout(result.answer.endsWith('\n') ? result.answer : `${result.answer}\n`);
  }
  if (!output.quiet) {
    let tokens = 0;
    for (const model of Object.values(result.usage)) tokens += model.inputTokens + model.outputTokens;
    const summary = [
      plural(result.iterations, 'turn'),
      plural(reporter.subcalls, 'sub-call'),
      `${formatTokens(tokens)} tokens`,
      formatCost(result.costUsd),
      formatDuration(result.durationMs),
    ].join(' · ');
    // An answer the iteration limit forced (one last call asked for it) is an answer, but a weaker one.
    const forced = result.success && result.limitReached === 'iterations';
    const mark = forced ? c.yellow('!') : result.success ? c.green('✓') : c.red('✗');
    io.stderr(`${mark} ${c.dim(summary)}\n`);
    if (forced) {
      io.stderr(
        `rlm: the run used all its iterations (--max-iterations); the answer was asked for in one last call without running more code — raise --max-iterations to give it more turns\n`,
      );
    }
    if (result.trajectoryFile) io.stderr(c.dim(`trajectory: ${result.trajectoryFile}  (browse it with: rlm view ${result.trajectoryFile})\n`));
  }
  if (!result.success) {
    const why = result.error?.message ?? 'the run ended without an answer';
    io.stderr(`rlm: the run failed: ${why}${result.answer !== null && !output.json ? ' (the partial answer is on stdout)' : ''}\n`);
    return exitCodeFor(result.error);
  }
  return ExitCode.ok;
}

/**
 * Removes whatever sandbox this process still has on the engine. The engine removes a run's
 * sandboxes as its signal fires; this catches any that a cancelled start left behind.
 */
async function removeOwnSandboxes(docker: Dockerode): Promise<number> {
  try {
    const owner = currentOwner();
    const mine = (await listSandboxes({ docker, signal: AbortSignal.timeout(10_000) })).filter((s) => s.owner === owner);
    await Promise.all(
      mine.map((s) =>
        docker
          .getContainer(s.id)
          .remove({ force: true, v: true })
          .catch(() => undefined),
      ),
    );
    return mine.length;
  } catch {
    return 0;
  }
}
