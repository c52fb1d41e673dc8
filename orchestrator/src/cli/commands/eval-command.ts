/**
 * `rlm eval DATASET`, `rlm eval generate`, `rlm eval rescore DIR`, `rlm eval compare DIR_A DIR_B`:
 * the CLI of the evaluation library (../../eval/). This module parses and checks the flags, builds
 * each run's engine options exactly as `rlm` does (settings → {@link buildRlmOptions}), records
 * and checks `eval.json`, shows progress, and writes `summary.json` and `report.html`; the
 * library does the running, scoring and statistics.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { closest } from '../../did-you-mean.js';
import type { ModelRole, RlmOptions } from '../../engine/rlm-options.js';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import type { Dataset } from '../../eval/dataset/read-dataset.js';
import { type EvalManifest, type EvalSummary, type EvalTask, METHODS, type Method, type ResultLine, resultKey, type Scorer } from '../../eval/eval-types.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import type { ResolvedSettings } from '../config/settings.js';
import type { CommandName } from '../flags/cli-flags.js';
import { helpHint, parseCommandFlags } from '../flags/parse-flags.js';
import { integer, number } from '../flags/number-flags.js';
import { colorEnabled, paletteFor } from '../output/colors.js';
import { EvalProgress, type EvalProgressMode } from '../output/eval-progress.js';
import { formatCost, formatDuration } from '../output/format.js';
import { helpText } from '../flags/help-text.js';
import { version } from '../run-cli.js';

type EvalCommandName = Extract<CommandName, 'eval' | 'eval generate' | 'eval rescore' | 'eval compare'>;

/** Files of an evaluation directory. */
export const EVAL_FILES = { manifest: 'eval.json', results: 'results.jsonl', summary: 'summary.json', report: 'report.html' } as const;

export async function evalCommand(command: EvalCommandName, argv: string[], io: CliIo): Promise<number> {
  switch (command) {
    case 'eval':
      return await evaluate(argv, io);
    case 'eval generate':
      return await generate(argv, io);
    case 'eval rescore':
      return await rescore(argv, io);
    case 'eval compare':
      return await compare(argv, io);
  }
}

// ---------------------------------------------------------------------------------------------
// rlm eval DATASET

async function evaluate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'eval');
  const hint = helpHint('eval');
  if (values.help) {
    io.stdout(helpText('eval'));
    return ExitCode.ok;
  }
  if (positionals.length !== 1)
    throw new UsageError(
      positionals.length === 0
        ? 'no dataset: rlm eval DATASET (a .jsonl, .json, .csv or .parquet file of tasks)'
        : `give one dataset, got ${positionals.length}: ${positionals.join(' ')}`,
      { hint },
    );
  const datasetArg = positionals[0] as string;
  const methods = parseMethods(values.methods);
  // Unset, these take the runner's defaults (flags/cli-flags.ts shows the same).
  const concurrency = integer(values.concurrency, '--concurrency', { min: 1 });
  const maxSandboxes = integer(values['max-sandboxes'], '--max-sandboxes', { min: 1 });
  const epochs = integer(values.epochs, '--epochs', { min: 1 }) ?? 1;
  const limit = integer(values.limit, '--limit', { min: 1 });
  const sample = integer(values.sample, '--sample', { min: 1 });
  const seed = integer(values.seed, '--seed', { min: 0 }) ?? 0;
  const retries = integer(values.retries, '--retries', { min: 0 });
  const budgetUsd = number(values.budget, '--budget', { above: 0 });
  const tolerance = number(values.tolerance, '--tolerance', { min: 0 });
  const fields = parseFields(values.field ?? []);
  const scorerName = values.scorer ?? 'em';
  const mode: EvalProgressMode = values.quiet ? 'quiet' : io.stderrIsTTY ? 'live' : 'lines';
  const cwd = io.cwd ?? process.cwd();

  // `--budget` and `--max-sandboxes` are the evaluation's (across every run), not a run's limits.
  const { budget: _budget, 'max-sandboxes': _maxSandboxes, ...runFlags } = values;
  const [{ resolveSettings }, { readDataset }, { selectTasks }] = await Promise.all([
    import('../config/settings.js'),
    import('../../eval/dataset/read-dataset.js'),
    import('../../eval/dataset/select-tasks.js'),
  ]);
  const settings = await resolveSettings({ flags: runFlags, env: io.env, cwd });
  const dataset = await readDataset(path.resolve(cwd, datasetArg), { ...(fields ? { fields } : {}), signal: io.signal });
  const tasks = selectTasks(dataset.tasks, { limit, sample, seed });
  const judgePrompt = values['judge-prompt'] === undefined ? undefined : await readJudgePrompt(path.resolve(cwd, values['judge-prompt']));

  const manifest = buildManifest({
    dataset,
    tasks,
    settings,
    options: {
      methods,
      scorer: scorerName,
      tolerance: tolerance ?? null,
      'judge-model': values['judge-model'] ?? null,
      'judge-prompt': judgePrompt === undefined ? null : sha256(judgePrompt),
      field: fields ?? null,
      epochs,
      limit: limit ?? null,
      sample: sample ?? null,
      seed: sample === undefined ? null : seed,
    },
    version: version(),
  });
  const { buildRlmOptions } = await import('./run-command.js');
  const rlm = buildRlmOptions(settings);
  const scorerOptions = { tolerance, judge: judgeOptions(rlm, values['judge-model'], judgePrompt), cwd };

  const [{ readResults }, { runEvaluation }, { resolveScorer }] = await Promise.all([
    import('../../eval/runner/results-file.js'),
    import('../../eval/runner/run-evaluation.js'),
    import('../../eval/scorers/index.js'),
  ]);
  // One scorer per name: `--scorer`, or the task's own. Resolved before anything runs, so a bad
  // name or module is a usage error at once.
  const scorers = new Map<string, Promise<Scorer>>();
  const scorerFor = (task: EvalTask) => {
    const name = task.scorer ?? scorerName;
    let scorer = scorers.get(name);
    if (!scorer) {
      scorer = resolveScorer(name, scorerOptions);
      scorers.set(name, scorer);
    }
    return scorer;
  };
  // Every scorer the tasks use, before the directory is made: a typo is not recorded in eval.json.
  for (const task of [{ id: '', query: '', expected: [], metadata: {}, row: 0 }, ...tasks]) await scorerFor(task);

  const dir = path.resolve(cwd, values.out ?? defaultOutDir(dataset.path));
  await prepareDirectory(dir, manifest);

  const planned = plannedKeys(tasks, methods, epochs);
  // What the runner will not run again: lines of this evaluation other than infrastructure errors.
  const before = (await readResults(dir)).lines.filter((line) => planned.has(resultKey(line)) && line.error_kind !== 'infra');
  const palette = paletteFor(colorEnabled(io.env, io.stderrIsTTY ?? false));
  const progress = new EvalProgress({
    write: io.stderr,
    mode,
    palette,
    total: planned.size,
    alreadyDone: before.length,
    ...(io.stderrColumns ? { columns: io.stderrColumns } : {}),
  });
  progress.seed(before);
  if (mode !== 'quiet') {
    const resumed = before.length > 0 ? `; ${before.length} already done, resuming` : '';
    progress.note(
      `rlm eval: ${tasks.length} task${tasks.length === 1 ? '' : 's'} × ${methods.join(', ')}${epochs > 1 ? ` × ${epochs} epochs` : ''} → ${displayPath(dir, cwd)}${resumed}`,
    );
  }

  let outcome: Awaited<ReturnType<typeof runEvaluation>> | undefined;
  let failure: unknown;
  try {
    outcome = await runEvaluation({
      outDir: dir,
      tasks,
      methods,
      epochs,
      rlm,
      scorer: scorerFor,
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(maxSandboxes === undefined ? {} : { maxSandboxes }),
      ...(retries === undefined ? {} : { retries }),
      ...(budgetUsd === undefined ? {} : { budgetUsd }),
      signal: io.signal,
      onProgress: (event) => {
        switch (event.type) {
          case 'started':
            progress.started();
            break;
          case 'finished':
            progress.finished(event.line);
            break;
          case 'abandoned':
            progress.abandoned();
            break;
          case 'retry':
            progress.note(
              palette.yellow(
                `retrying ${event.taskId} ${event.method}${event.epoch > 1 ? ` #${event.epoch}` : ''} (attempt ${event.attempt} failed): ${event.error}`,
              ),
            );
            break;
          case 'budget':
            progress.note(
              palette.yellow(`budget reached (${formatCost(event.spentUsd)} of ${formatCost(event.budgetUsd)}): nothing new starts; running tasks are stopped`),
            );
            break;
        }
      },
    });
  } catch (error) {
    // A fatal error (a refused key, an unknown model, no image): the results so far still get
    // their summary and report, then the error ends the command with its own exit code.
    failure = error;
  } finally {
    progress.stop();
  }

  const { lines } = await readResults(dir);
  const current = lines.filter((line) => planned.has(resultKey(line)));
  const summary = await writeSummaryAndReport(dir, { dataset: path.basename(dataset.path), planned: planned.size, methods, seed, lines: current, tasks });
  if (failure !== undefined && !io.signal.aborted) throw failure;
  if (values.json) io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  else io.stdout(summaryText(summary, dir, cwd, paletteFor(colorEnabled(io.env, io.stdoutIsTTY ?? false))));
  const missing = outcome?.missing ?? planned.size - summary.finished;
  if (io.signal.aborted || outcome?.interrupted) {
    if (!values.quiet) io.stderr(`rlm eval: interrupted; ${planned.size - missing} of ${planned.size} results kept; run the same command again to finish\n`);
    return ExitCode.interrupted;
  }
  if (missing > 0) {
    if (!values.quiet) {
      const why = outcome?.missingReasons.length ? ` (${outcome.missingReasons.join('; ')})` : '';
      io.stderr(`rlm eval: ${missing} of ${planned.size} (task, method, epoch) have no result${why}; run the same command again to retry them\n`);
    }
    return ExitCode.failure;
  }
  return ExitCode.ok;
}

/** The (task, method, epoch) keys of the evaluation. */
function plannedKeys(tasks: readonly EvalTask[], methods: readonly Method[], epochs: number): Set<string> {
  const keys = new Set<string>();
  for (const task of tasks)
    for (const method of methods) for (let epoch = 1; epoch <= epochs; epoch++) keys.add(resultKey({ task_id: task.id, method, epoch }));
  return keys;
}

function parseMethods(value: string | undefined): Method[] {
  if (value === undefined) return ['rlm'];
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UsageError(`--methods needs at least one of: ${METHODS.join(', ')}`, { hint: helpHint('eval') });
  const methods: Method[] = [];
  for (const name of names) {
    if (!(METHODS as readonly string[]).includes(name)) {
      const near = closest(name, [...METHODS]);
      throw new UsageError(`--methods: unknown method ${JSON.stringify(name)}${near ? ` (did you mean ${near}?)` : ''}; the methods: ${METHODS.join(', ')}`, {
        hint: helpHint('eval'),
      });
    }
    if (!methods.includes(name as Method)) methods.push(name as Method);
  }
  return methods;
}

/** `--field query=question` → `{ query: 'question' }`. */
function parseFields(values: readonly string[]): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const fields: Record<string, string> = {};
  for (const value of values) {
    const equals = value.indexOf('=');
    if (equals <= 0 || equals === value.length - 1)
      throw new UsageError(`--field ${value}: write FIELD=COLUMN, e.g. --field query=question`, { hint: helpHint('eval') });
    const field = value.slice(0, equals).trim();
    if (Object.hasOwn(fields, field)) throw new UsageError(`--field ${value}: ${field} is mapped twice; map each field once`, { hint: helpHint('eval') });
    fields[field] = value.slice(equals + 1).trim();
  }
  return fields;
}

async function readJudgePrompt(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--judge-prompt ${file}: cannot read it (${errorCode(error) ?? errorMessage(error)})`, { hint: helpHint('eval') });
  }
}

/**
 * The judge's model: `--judge-model NAME` names a model of `models:`/`--model-alias`, else a model
 * id on the root's backend; default the root model.
 */
function judgeOptions(rlm: Pick<RlmOptions, 'root' | 'models'>, name: string | undefined, prompt: string | undefined): { role: ModelRole; prompt?: string } {
  const role: ModelRole = name === undefined ? rlm.root : (rlm.models?.[name] ?? { backend: rlm.root.backend, model: name });
  return { role, ...(prompt === undefined ? {} : { prompt }) };
}

/**
 * `eval.json` for this evaluation. Options are recorded as they resolve (flags, environment and the
 * config file applied), so a resume notices a changed `RLM_MODEL` or config file as well as a
 * changed flag.
 */
function buildManifest(input: {
  dataset: Dataset;
  tasks: readonly EvalTask[];
  settings: ResolvedSettings;
  options: Record<string, unknown>;
  version: string;
}): EvalManifest {
  const { settings } = input;
  const role = (spec: ResolvedSettings['root']) => ({
    backend: spec.backend,
    model: spec.model ?? null,
    'base-url': spec.baseURL ?? null,
    'max-output-tokens': spec.maxOutputTokens ?? null,
    'context-window': spec.contextWindowTokens ?? null,
  });
  const models = Object.fromEntries(Object.entries(settings.models).map(([name, spec]) => [name, role(spec)]));
  const { config } = settings;
  const options: Record<string, unknown> = {
    ...input.options,
    root: role(settings.root),
    sub: role(settings.sub),
    models,
    language: config.language ?? 'javascript',
    limits: canonical(config.limits ?? {}),
    sandbox: canonical({ runtime: config.sandbox?.runtime, memoryMb: config.sandbox?.memoryMb, cpus: config.sandbox?.cpus, image: config.sandbox?.image }),
  };
  return {
    version: 1,
    dataset: { path: input.dataset.path, sha256: input.dataset.sha256, tasks: input.dataset.tasks.length },
    options: canonical(options) as Record<string, unknown>,
    task_ids: input.tasks.map((task) => task.id),
    created_at: new Date().toISOString(),
    rlm_version: input.version,
  };
}

/** A JSON value with keys sorted and undefined dropped, so two equal settings compare equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = canonical(item);
    }
    return out;
  }
  return value;
}

/**
 * Creates the directory and its `eval.json`, or checks a resume: the recorded manifest must match
 * this one in everything that changes results.
 *
 * @throws {UsageError} the directory holds another evaluation (naming each difference), or a file.
 */
async function prepareDirectory(dir: string, manifest: EvalManifest): Promise<void> {
  const { readManifest, writeManifest, manifestDifferences } = await import('../../eval/runner/manifest.js');
  try {
    if (!(await stat(dir)).isDirectory()) throw new UsageError(`--out ${dir} is a file; give a directory`, { hint: helpHint('eval') });
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  await mkdir(dir, { recursive: true });
  const recorded = await readManifest(dir);
  if (recorded === undefined || recorded === null) {
    await writeManifest(dir, manifest);
    return;
  }
  const differences = manifestDifferences(recorded, manifest);
  if (differences.length > 0) {
    throw new UsageError(
      `${path.join(dir, EVAL_FILES.manifest)} records another evaluation; resuming it with these options would mix results:\n  ${differences.join('\n  ')}`,
      {
        hint: 'Run it with the options it was started with, or give another --out DIR.',
      },
    );
  }
}

function defaultOutDir(datasetPath: string): string {
  const name = path.basename(datasetPath).replace(/\.[^.]+$/, '') || 'dataset';
  const stamp = new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');
  return path.join('rlm-evals', `${name}-${stamp}`);
}

// ---------------------------------------------------------------------------------------------
// summary.json, report.html and the summary on stdout

async function writeSummaryAndReport(
  dir: string,
  input: { dataset: string; planned: number; methods: readonly Method[]; seed: number; lines: readonly ResultLine[]; tasks: readonly EvalTask[] },
): Promise<EvalSummary> {
  const [{ summarize }, { writeReport }] = await Promise.all([import('../../eval/statistics/summarize.js'), import('../../eval/report/write-report.js')]);
  const summary = summarize(input.lines, { dataset: input.dataset, planned: input.planned, methods: input.methods, seed: input.seed });
  await writeAtomically(path.join(dir, EVAL_FILES.summary), `${JSON.stringify(summary, null, 2)}\n`);
  await writeReport(dir, { summary, lines: input.lines, tasks: input.tasks });
  return summary;
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, text, 'utf8');
  await rename(temporary, file);
}

function summaryText(summary: EvalSummary, dir: string, cwd: string, c: ReturnType<typeof paletteFor>): string {
  const out: string[] = [];
  const rows = Object.entries(summary.methods).map(([method, s]) => [
    method,
    `${s.scored}/${s.n}`,
    s.accuracy === null ? '–' : s.accuracy.toFixed(3),
    s.ci95 ? `[${s.ci95[0].toFixed(3)}, ${s.ci95[1].toFixed(3)}]` : '–',
    String(s.errors),
    formatCost(s.cost_usd),
    s.p50_ms === null ? '–' : formatDuration(s.p50_ms),
    s.p95_ms === null ? '–' : formatDuration(s.p95_ms),
  ]);
  out.push(...table(['method', 'scored', 'accuracy', '95% CI', 'errors', 'cost', 'p50', 'p95'], rows, c));
  for (const pair of summary.pairs) {
    const diff = pair.difference === null ? '–' : signed(pair.difference);
    const ci = pair.ci95 ? ` [${signed(pair.ci95[0])}, ${signed(pair.ci95[1])}]` : '';
    out.push(`${pair.a} − ${pair.b}: ${diff}${ci} over ${pair.tasks} task${pair.tasks === 1 ? '' : 's'}`);
  }
  const shown = displayPath(dir, cwd);
  out.push(`${summary.finished}/${summary.planned} results in ${shown}; the report: rlm view ${shown}`);
  return `${out.join('\n')}\n`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], c: ReturnType<typeof paletteFor>): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ');
  return [c.bold(line(head)), ...rows.map(line)];
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
}

function displayPath(dir: string, cwd: string): string {
  const relative = path.relative(cwd, dir);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : dir;
}

// ---------------------------------------------------------------------------------------------
// rlm eval generate niah|counting

const GENERATORS = ['niah', 'counting'] as const;

async function generate(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'eval generate');
  const hint = helpHint('eval generate');
  if (values.help) {
    io.stdout(helpText('eval generate'));
    return ExitCode.ok;
  }
  const kind = positionals[0];
  if (positionals.length !== 1 || kind === undefined || !(GENERATORS as readonly string[]).includes(kind)) {
    const near = kind === undefined ? undefined : closest(kind, [...GENERATORS]);
    throw new UsageError(
      `${kind === undefined ? 'which dataset?' : positionals.length > 1 ? `give one dataset kind, got ${positionals.length}` : `unknown dataset ${JSON.stringify(kind)}${near ? ` (did you mean ${near}?)` : ''}`}; write rlm eval generate niah|counting`,
      { hint },
    );
  }
  const n = integer(values.n, '--n', { min: 1 }) ?? 50;
  const contextChars = integer(values['context-chars'], '--context-chars', { min: 1 }) ?? 100_000;
  const seed = integer(values.seed, '--seed', { min: 0 }) ?? 0;
  const { generateDataset } = await import('../../eval/dataset/generators/index.js');
  const rows = generateDataset(kind as (typeof GENERATORS)[number], { n, contextChars, seed });
  const cwd = io.cwd ?? process.cwd();
  if (values.out === undefined) {
    for (const row of rows) {
      if (io.signal.aborted) return ExitCode.interrupted;
      io.stdout(`${JSON.stringify(row)}\n`);
    }
    return ExitCode.ok;
  }
  const { writeJsonl } = await import('../../eval/dataset/write-jsonl.js');
  let count: number;
  try {
    ({ rows: count } = await writeJsonl(path.resolve(cwd, values.out), rows, { signal: io.signal }));
  } catch (error) {
    if (io.signal.aborted) return ExitCode.interrupted;
    throw new RlmError(`cannot write ${values.out}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
  io.stderr(`rlm eval generate: ${count} ${kind} tasks of ${contextChars} characters (seed ${seed}) → ${values.out}\n`);
  return ExitCode.ok;
}

// ---------------------------------------------------------------------------------------------
// rlm eval rescore DIR

async function rescore(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'eval rescore');
  const hint = helpHint('eval rescore');
  if (values.help) {
    io.stdout(helpText('eval rescore'));
    return ExitCode.ok;
  }
  if (positionals.length !== 1) throw new UsageError(`give one evaluation directory, got ${positionals.length}`, { hint });
  const cwd = io.cwd ?? process.cwd();
  const dir = path.resolve(cwd, positionals[0] as string);
  const tolerance = number(values.tolerance, '--tolerance', { min: 0 });
  const scorerName = values.scorer ?? 'em';
  const judgePrompt = values['judge-prompt'] === undefined ? undefined : await readJudgePrompt(path.resolve(cwd, values['judge-prompt']));
  const [{ readManifest, writeManifest }, { readResults }, { resolveScorer }, { readDataset }] = await Promise.all([
    import('../../eval/runner/manifest.js'),
    import('../../eval/runner/results-file.js'),
    import('../../eval/scorers/index.js'),
    import('../../eval/dataset/read-dataset.js'),
  ]);
  const manifest = await readManifest(dir);
  if (!manifest) throw new UsageError(`${positionals[0]} is no evaluation directory: it has no ${EVAL_FILES.manifest}`, { hint });

  // The judge needs models; other scorers need no key, so models are resolved only for it.
  let judge: { role: ModelRole; prompt?: string } | undefined;
  if (scorerName === 'judge') {
    const [{ resolveSettings }, { buildRlmOptions }] = await Promise.all([import('../config/settings.js'), import('./run-command.js')]);
    const rlm = buildRlmOptions(await resolveSettings({ flags: values, env: io.env, cwd }));
    judge = judgeOptions(rlm, values['judge-model'], judgePrompt);
  }
  const scorerOptions = { ...(tolerance === undefined ? {} : { tolerance }), ...(judge ? { judge } : {}), cwd };
  const tasks = await tasksOf(manifest, readDataset, io.signal);
  const taskById = new Map(tasks.map((task) => [task.id, task]));
  const { lines } = await readResults(dir);
  const scorers = new Map<string, Awaited<ReturnType<typeof resolveScorer>>>();
  const scorerFor = async (name: string) => {
    let scorer = scorers.get(name);
    if (!scorer) {
      scorer = await resolveScorer(name, scorerOptions);
      scorers.set(name, scorer);
    }
    return scorer;
  };
  await scorerFor(scorerName); // a bad --scorer is a usage error before anything is rewritten
  const rescored: ResultLine[] = [];
  for (const line of lines) {
    if (io.signal.aborted) return ExitCode.interrupted;
    // An infrastructure error has no answer to score; it stays what it was.
    if (line.error_kind === 'infra') {
      rescored.push(line);
      continue;
    }
    const task: EvalTask = taskById.get(line.task_id) ?? { id: line.task_id, query: '', expected: line.expected, metadata: {}, row: 0 };
    const scorer = await scorerFor(task.scorer ?? scorerName);
    const modelError = line.error_kind === 'model' ? line.error : null;
    try {
      const score = await scorer.score({ answer: line.answer, expected: line.expected, task, signal: io.signal });
      rescored.push({
        ...line,
        score: score.score,
        score_note: score.note ?? null,
        scorer: scorer.name,
        error: modelError,
        error_kind: line.error_kind === 'model' ? 'model' : null,
      });
    } catch (error) {
      if (io.signal.aborted) return ExitCode.interrupted;
      rescored.push({
        ...line,
        score: null,
        score_note: null,
        scorer: scorer.name,
        error: `scorer ${scorer.name}: ${errorMessage(error)}`,
        error_kind: 'scorer',
      });
    }
  }
  await writeAtomically(path.join(dir, EVAL_FILES.results), rescored.map((line) => `${JSON.stringify(line)}\n`).join(''));
  await writeManifest(dir, {
    ...manifest,
    options: canonical({
      ...manifest.options,
      scorer: scorerName,
      tolerance: tolerance ?? null,
      'judge-model': values['judge-model'] ?? null,
      'judge-prompt': judgePrompt === undefined ? null : sha256(judgePrompt),
    }) as Record<string, unknown>,
  });
  const methods = methodsOf(manifest, rescored);
  const epochs = typeof manifest.options.epochs === 'number' ? manifest.options.epochs : 1;
  const planned = manifest.task_ids.length * methods.length * epochs;
  const keys = plannedKeys(
    manifest.task_ids.map((id) => taskById.get(id) ?? ({ id } as EvalTask)),
    methods,
    epochs,
  );
  const current = rescored.filter((line) => keys.has(resultKey(line)));
  const summary = await writeSummaryAndReport(dir, {
    dataset: path.basename(manifest.dataset.path),
    planned,
    methods,
    seed: 0,
    lines: current,
    tasks,
  });
  if (values.json) io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
  else io.stdout(summaryText(summary, dir, cwd, paletteFor(colorEnabled(io.env, io.stdoutIsTTY ?? false))));
  return ExitCode.ok;
}

/** The recorded methods, in order; those of the results when the manifest has none. */
function methodsOf(manifest: EvalManifest, lines: readonly ResultLine[]): Method[] {
  const recorded = manifest.options.methods;
  if (Array.isArray(recorded)) return recorded.filter((m): m is Method => (METHODS as readonly unknown[]).includes(m));
  return [...new Set(lines.map((line) => line.method))];
}

/** The evaluation's tasks from its dataset, when the dataset is still there and unchanged; none otherwise (scorers then see the stored expected answers). */
async function tasksOf(
  manifest: EvalManifest,
  readDataset: (file: string, options?: { fields?: Readonly<Record<string, string>>; signal?: AbortSignal }) => Promise<Dataset>,
  signal: AbortSignal,
): Promise<EvalTask[]> {
  const field = manifest.options.field;
  const fields = field && typeof field === 'object' ? (field as Record<string, string>) : undefined;
  try {
    const dataset = await readDataset(manifest.dataset.path, { ...(fields ? { fields } : {}), signal });
    return dataset.sha256 === manifest.dataset.sha256 ? dataset.tasks : [];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// rlm eval compare DIR_A DIR_B

async function compare(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'eval compare');
  const hint = helpHint('eval compare');
  if (values.help) {
    io.stdout(helpText('eval compare'));
    return ExitCode.ok;
  }
  if (positionals.length !== 2) throw new UsageError(`give two evaluation directories, got ${positionals.length}`, { hint });
  const seed = integer(values.seed, '--seed', { min: 0 }) ?? 0;
  const cwd = io.cwd ?? process.cwd();
  const [{ readResults }, { compareResults }] = await Promise.all([import('../../eval/runner/results-file.js'), import('../../eval/statistics/compare.js')]);
  const read = async (given: string) => {
    const dir = path.resolve(cwd, given);
    try {
      await stat(path.join(dir, EVAL_FILES.results));
    } catch (error) {
      throw new UsageError(`${given} is no evaluation directory: it has no ${EVAL_FILES.results} (${errorCode(error) ?? errorMessage(error)})`, { hint });
    }
    return (await readResults(dir)).lines;
  };
  const [a, b] = await Promise.all([read(positionals[0] as string), read(positionals[1] as string)]);
  const rows = compareResults(a, b, { seed });
  if (values.json) {
    io.stdout(`${JSON.stringify(rows, null, 2)}\n`);
    return ExitCode.ok;
  }
  const c = paletteFor(colorEnabled(io.env, io.stdoutIsTTY ?? false));
  io.stdout(`A: ${positionals[0]}\nB: ${positionals[1]}\n`);
  const fmt = (value: number | null) => (value === null ? '–' : value.toFixed(3));
  const lines = table(
    ['method', 'common tasks', 'accuracy A', 'accuracy B', 'A − B', '95% CI'],
    rows.map((row) => [
      row.method,
      String(row.tasks),
      fmt(row.accuracyA),
      fmt(row.accuracyB),
      row.difference === null ? '–' : signed(row.difference),
      row.ci95 ? `[${signed(row.ci95[0])}, ${signed(row.ci95[1])}]` : '–',
    ]),
    c,
  );
  io.stdout(`${lines.join('\n')}\n`);
  if (rows.length === 0) io.stderr('rlm eval compare: the two evaluations share no (task, method)\n');
  return ExitCode.ok;
}

// ---------------------------------------------------------------------------------------------
// Values

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
