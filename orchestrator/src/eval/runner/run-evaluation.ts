/**
 * Runs an evaluation: every (task, method, epoch) that has no result yet in `outDir/results.jsonl`,
 * `concurrency` at a time, each RLM run in fresh sandboxes from one {@link SandboxPool}, infrastructure
 * failures retried, a global budget in dollars, and each result appended (and flushed) as soon as it
 * is scored. It talks to the engine only through its public API (`RLM`, events, the pool, backends).
 *
 * How a (task, method, epoch) ends, and what its line says:
 * - **answered**: the scorer's score (and note).
 * - **`model`** (score 0): the run ended without an answer — a limit of the run (iterations with no
 *   last answer, time, tokens, cost), failing cells turn after turn, or the provider refused the
 *   request itself (`invalid_request`, e.g. a prompt too long). The scorer is not called: a partial
 *   answer is recorded as `answer` for inspection, but it is not an answer to score (and a judge would
 *   cost money for nothing).
 * - **`infra`** (score null): a sandbox or Docker failure ({@link SandboxError} and its subclasses,
 *   {@link DockerUnavailableError}), the provider failing after the backend's own retries
 *   (`ModelCallError` of kind `rate_limited`, `timeout` or `provider_error`, also when it made the
 *   run's turns fail in a row), a context file that cannot be read, or an unexpected error. Tried
 *   again up to `retries` times; the line records the last failure. A resume runs it again.
 * - **`scorer`** (score null): the scorer threw or returned a score outside [0, 1].
 * - **no line**: the run was stopped by the budget, the caller's signal, or a fatal error.
 *
 * Fatal errors stop the whole evaluation rather than be recorded once per task, since every later run
 * would fail the same way: a `ModelCallError` that is {@link ModelCallError.fatal} (a refused key, a
 * model the provider does not know, no permission, an unreachable provider), a {@link SandboxImageError}
 * (the sandbox image cannot be built) and an {@link InvalidOptionError} from the RLM options. The
 * running runs are stopped, the lines already written stay, and {@link runEvaluation} rejects with
 * that error.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortedError, DockerUnavailableError, InvalidOptionError, RlmError, SandboxError, SandboxImageError, errorMessage } from '../../errors.js';
import { RLM, useReplFactory } from '../../engine/rlm.js';
import type { ModelRole, RlmOptions } from '../../engine/rlm-options.js';
import { RunLimitError } from '../../engine/run-budget.js';
import type { RunEvent } from '../../engine/run-events.js';
import { ModelCallError } from '../../models/model-backend.js';
import { contextWindowOf, estimateTokens } from '../../models/model-table.js';
import type { ReplFactory } from '../../sandbox/repl.js';
import { createSandboxPool, type SandboxPool } from '../../sandbox/pool/sandbox-pool.js';
import { costOf, priceOf } from '../../usage/pricing.js';
import type { UsageByModel } from '../../usage/usage-ledger.js';
import { taskContextChars, taskContextText, taskContextValue } from '../dataset/task-context.js';
import { type ErrorKind, type EvalTask, METHODS, type Method, type ResultLine, type Scorer, resultKey } from '../eval-types.js';
import { openResultsWriter, readResults } from './results-file.js';

/** Default {@link EvaluationOptions.concurrency}. */
export const DEFAULT_EVAL_CONCURRENCY = 4;
/** Default {@link EvaluationOptions.retries}. */
export const DEFAULT_EVAL_RETRIES = 2;
/** Where trajectories go, under the evaluation's directory. */
export const TRAJECTORIES_DIR = 'trajectories';

/** One (task, method, epoch) of an evaluation. */
export interface EvaluationRun {
  task: EvalTask;
  method: Method;
  /** 1-based. */
  epoch: number;
}

/**
 * The RLM options of an evaluation's runs: everything of {@link RlmOptions} but the pool, which the
 * evaluation provides. The runner sets `logDir` (to `outDir/trajectories`) and, for
 * `rlm-no-subcalls`, `subcalls: false`; with a pool, `sandbox` configures the pool's sandboxes
 * rather than each run's.
 */
export type EvaluationRlmOptions = Omit<RlmOptions, 'pool'>;

/** What {@link runEvaluation} reports as it goes. */
export type EvaluationProgress =
  /** A (task, method, epoch) started (once, whatever its retries). */
  | { type: 'started'; taskId: string; method: Method; epoch: number }
  /** Attempt `attempt` (1-based) failed with an infrastructure error; another starts after a pause. */
  | { type: 'retry'; taskId: string; method: Method; epoch: number; attempt: number; error: string }
  /** Its line was written to `results.jsonl`. */
  | { type: 'finished'; line: ResultLine }
  /** A started (task, method, epoch) was stopped without a result: by the budget, the caller's signal, or a fatal error of another run. */
  | { type: 'abandoned'; taskId: string; method: Method; epoch: number; reason: StopReason }
  /** The budget was reached (sent once): nothing new starts and the running runs are stopped. Dollars. */
  | { type: 'budget'; spentUsd: number; budgetUsd: number };

/** Why an evaluation stopped before running everything. */
export type StopReason = 'budget' | 'interrupted' | 'fatal';

/** Options of {@link runEvaluation}. */
export interface EvaluationOptions {
  /**
   * The tasks; ids unique. Runs start in this order: epoch 1 of every task (each task with every
   * method, in `methods` order), then epoch 2…, so a stopped evaluation has covered as many tasks as it could.
   */
  tasks: readonly EvalTask[];
  /** The methods each task runs with (at least one; no repeats). */
  methods: readonly Method[];
  /** Times each (task, method) runs; default 1. */
  epochs?: number;
  /**
   * The RLM options for the runs — or a function giving them per run (called at each attempt; it
   * should be cheap). `direct` uses their `root` role (and `prices`). With a function, the pool's
   * sandbox settings and language come from its options for the first run to start.
   */
  rlm: EvaluationRlmOptions | ((run: EvaluationRun) => EvaluationRlmOptions);
  /** The scorer of a task (e.g. its `scorer` or `--scorer`, resolved); called once per task, before anything runs. */
  scorer: (task: EvalTask) => Scorer | Promise<Scorer>;
  /** The evaluation's directory: `results.jsonl` is read and appended to, trajectories go to `trajectories/`. Created if needed. */
  outDir: string;
  /** (task, method, epoch) runs at once; default {@link DEFAULT_EVAL_CONCURRENCY}. */
  concurrency?: number;
  /**
   * Most sandboxes alive at once across the evaluation (runs and their child RLMs), for the pool the
   * evaluation creates; default twice `concurrency`. It keeps `min(concurrency, maxSandboxes)` warm.
   * Ignored with `pool`.
   */
  maxSandboxes?: number;
  /** A pool to take sandboxes from instead of creating one; the evaluation does not close it. */
  pool?: SandboxPool;
  /** Extra attempts for an infrastructure error (see the module's doc); default {@link DEFAULT_EVAL_RETRIES}. */
  retries?: number;
  /** Pause before the first retry, in milliseconds, doubling for each further one (at most 30 s); default 1 000. */
  retryDelayMs?: number;
  /**
   * A bound in US dollars on the whole evaluation: the cost of the results already in `outDir`, of
   * this call's finished attempts, and of the running ones. Once reached, nothing new starts and the
   * running runs are stopped (they get no line). Every model must have a known price (or a backend
   * that reports costs); else {@link InvalidOptionError} before anything runs.
   */
  budgetUsd?: number;
  /** Stops the evaluation (Ctrl-C): running runs are cancelled and get no line; written lines stay. The promise then resolves with `interrupted: true`. */
  signal?: AbortSignal;
  /** Called with each {@link EvaluationProgress}; must not throw. */
  onProgress?: (event: EvaluationProgress) => void;
}

/** How {@link runEvaluation} ended. */
export interface EvaluationOutcome {
  /** (task, method, epoch) combinations of the evaluation. */
  planned: number;
  /** Of them, those with a result (other than an infrastructure error) before this call. */
  alreadyDone: number;
  /** Lines this call wrote. */
  written: number;
  /** Of them, infrastructure errors (after the retries). */
  infraErrors: number;
  /** Combinations with no result, or only an infrastructure error, now: what running again would run. */
  missing: number;
  /** Why some are missing, in words (the budget, an interruption, infrastructure errors); empty when none is. */
  missingReasons: string[];
  /** The budget was reached. */
  budgetExhausted: boolean;
  /** The caller's signal stopped the evaluation. */
  interrupted: boolean;
  /** What this call's runs cost in USD, stopped runs and retries included (calls of unknown price count 0). */
  spentUsd: number;
  /** Lines of `results.jsonl` skipped when reading it (cut short by a kill, or invalid). */
  ignoredLines: number;
}

/** @internal For tests: run the evaluation's RLM cells in REPLs made by `factory` instead of sandboxes (no pool is created). */
const replFactories = new WeakMap<EvaluationOptions, ReplFactory>();

/** @internal For the runner's tests: see {@link replFactories}. Not exported from the package. */
export function useEvaluationReplFactory(options: EvaluationOptions, factory: ReplFactory): EvaluationOptions {
  replFactories.set(options, factory);
  return options;
}

/**
 * Runs every (task, method, epoch) of `options` that has no result yet in `options.outDir` (see the
 * module's doc for how each ends and what is recorded), and resolves once all have ended or the
 * evaluation stopped (budget, signal).
 *
 * @throws {InvalidOptionError} an option is out of range (the message names it), the RLM options are
 *   invalid, or a budget is set and a model has no known price — before anything runs.
 * @throws what `options.scorer` throws for a task (before anything runs).
 * @throws a fatal error of a run (see the module's doc); the lines written so far stay.
 * @throws {RlmError} (`results_write`) a result could not be written (disk full…).
 */
export async function runEvaluation(options: EvaluationOptions): Promise<EvaluationOutcome> {
  const settings = validate(options);
  const { outDir } = options;
  const emit = (event: EvaluationProgress) => options.onProgress?.(event);
  const factory = replFactories.get(options);

  const existing = await readResults(outDir);
  const plannedRuns: EvaluationRun[] = [];
  for (let epoch = 1; epoch <= settings.epochs; epoch++) {
    for (const task of options.tasks) for (const method of options.methods) plannedRuns.push({ task, method, epoch });
  }
  const plannedKeys = new Set(plannedRuns.map((run) => keyOf(run)));
  const done = new Set<string>();
  let spentBefore = 0;
  for (const line of existing.lines) {
    const key = resultKey(line);
    if (!plannedKeys.has(key)) continue;
    spentBefore += line.cost_usd ?? 0;
    if (line.error_kind !== 'infra') done.add(key);
  }
  const alreadyDone = done.size;
  const queue = plannedRuns.filter((run) => !done.has(keyOf(run)));

  const rlmFor = (run: EvaluationRun): EvaluationRlmOptions => (typeof options.rlm === 'function' ? options.rlm(run) : options.rlm);
  const first = queue[0];
  const baseRlm = first ? rlmFor(first) : undefined;
  if (baseRlm) {
    // Checked once here, so bad options are one error before anything runs, not one per task.
    const { sandbox: _sandbox, ...checked } = baseRlm;
    new RLM(checked);
    const withSubcalls = queue.some((run) => run.method === 'rlm');
    if (settings.budgetUsd !== undefined) assertPriced(baseRlm, withSubcalls);
  }

  const scorers = new Map<EvalTask, Scorer>();
  for (const run of queue) if (!scorers.has(run.task)) scorers.set(run.task, await options.scorer(run.task));

  const stop = new AbortController();
  let stopReason: StopReason | undefined;
  let fatal: unknown;
  const stopWith = (reason: StopReason, cause: unknown) => {
    if (stop.signal.aborted) return;
    stopReason = reason;
    stop.abort(cause);
  };
  const onCallerAbort = () => stopWith('interrupted', new AbortedError('the evaluation was interrupted'));
  if (options.signal?.aborted) onCallerAbort();
  else options.signal?.addEventListener('abort', onCallerAbort, { once: true });

  // Money: what earlier calls spent on these results, this call's ended attempts, and the running ones.
  let spentEnded = 0;
  const running = new Set<{ costUsd: number }>();
  let budgetExhausted = false;
  const spentNow = () => spentBefore + spentEnded + [...running].reduce((sum, entry) => sum + entry.costUsd, 0);
  const checkBudget = () => {
    if (settings.budgetUsd === undefined || budgetExhausted) return;
    const spent = spentNow();
    if (spent < settings.budgetUsd) return;
    budgetExhausted = true;
    emit({ type: 'budget', spentUsd: spent, budgetUsd: settings.budgetUsd });
    stopWith('budget', new AbortedError(`the evaluation's budget of $${settings.budgetUsd} was spent`));
  };
  checkBudget();

  const writer = await openResultsWriter(outDir);
  let pool: SandboxPool | undefined = options.pool;
  const ownPool = !factory && !pool && queue.some((run) => run.method !== 'direct') && !stop.signal.aborted;
  if (ownPool && baseRlm) {
    const language = baseRlm.language ?? 'javascript';
    try {
      pool = createSandboxPool({
        ...baseRlm.sandbox,
        maxSandboxes: settings.maxSandboxes,
        warm: { [language]: Math.min(settings.concurrency, settings.maxSandboxes, queue.length) },
      });
    } catch (error) {
      options.signal?.removeEventListener('abort', onCallerAbort);
      await writer.close();
      throw error;
    }
  }
  let written = 0;
  let infraErrors = 0;
  const contextChars = new Map<EvalTask, Promise<number>>();
  const charsOf = (task: EvalTask) => {
    let chars = contextChars.get(task);
    if (!chars) {
      chars = taskContextChars(task).catch(() => 0);
      contextChars.set(task, chars);
    }
    return chars;
  };

  const write = async (line: ResultLine) => {
    await writer.append(line);
    written += 1;
    if (line.error_kind === 'infra') infraErrors += 1;
    else done.add(resultKey(line));
    emit({ type: 'finished', line });
  };

  const attemptOnce = (run: EvaluationRun, cost: { costUsd: number }): Promise<Attempt> => {
    const rlmOptions = rlmFor(run);
    if (run.method === 'direct') return directAttempt(run, rlmOptions, stop.signal);
    const { sandbox, onEvent, ...rest } = rlmOptions;
    const rlm = new RLM({
      ...rest,
      ...(pool ? { pool } : sandbox ? { sandbox } : {}),
      logDir: path.join(outDir, TRAJECTORIES_DIR),
      subcalls: run.method === 'rlm-no-subcalls' ? false : rest.subcalls !== false,
      onEvent: (event) => {
        const spent = costOfEvent(event);
        if (spent > 0) {
          cost.costUsd += spent;
          checkBudget();
        }
        onEvent?.(event);
      },
    });
    return rlmAttempt(run, factory ? useReplFactory(rlm, factory) : rlm, outDir, stop.signal);
  };

  const runOne = async (run: EvaluationRun): Promise<void> => {
    const ids = { taskId: run.task.id, method: run.method, epoch: run.epoch };
    emit({ type: 'started', ...ids });
    const totals = { costUsd: 0, costKnown: true, inputTokens: 0, outputTokens: 0 };
    let attempt = 0;
    for (;;) {
      attempt += 1;
      const cost = { costUsd: 0 };
      running.add(cost);
      let result: Attempt;
      try {
        result = await attemptOnce(run, cost);
      } catch (error) {
        result = failedAttempt(error);
      } finally {
        running.delete(cost);
      }
      // What the attempt cost, as the run reported it when it ended, else as its events added up.
      const attemptCost = result.costUsd ?? cost.costUsd;
      spentEnded += attemptCost;
      totals.costUsd += attemptCost;
      if (result.costUsd === null && result.ended) totals.costKnown = false;
      totals.inputTokens += result.inputTokens;
      totals.outputTokens += result.outputTokens;
      checkBudget();

      // A run that ended on its own is recorded even when the evaluation stopped meanwhile (its cost
      // may be what reached the budget); one the stop cut short is not.
      if (stop.signal.aborted && !result.ended) {
        emit({ type: 'abandoned', ...ids, reason: stopReason ?? 'interrupted' });
        return;
      }
      const kind = result.error === null ? null : classify(result.error);
      if (kind === 'fatal') {
        fatal ??= result.error;
        stopWith('fatal', result.error);
        emit({ type: 'abandoned', ...ids, reason: 'fatal' });
        return;
      }
      if (kind === 'infra' && attempt <= settings.retries && !stop.signal.aborted) {
        emit({ type: 'retry', ...ids, attempt, error: errorMessage(result.error) });
        try {
          await sleep(Math.min(settings.retryDelayMs * 2 ** (attempt - 1), 30_000), undefined, { signal: stop.signal });
        } catch {
          emit({ type: 'abandoned', ...ids, reason: stopReason ?? 'interrupted' });
          return;
        }
        continue;
      }

      const base = {
        task_id: run.task.id,
        method: run.method,
        epoch: run.epoch,
        answer: result.answer,
        expected: [...run.task.expected],
        scorer: (scorers.get(run.task) as Scorer).name,
        cost_usd: totals.costKnown ? totals.costUsd : null,
        input_tokens: totals.inputTokens,
        output_tokens: totals.outputTokens,
        duration_ms: Math.round(result.durationMs),
        iterations: result.iterations,
        trajectory_file: result.trajectoryFile,
        attempts: attempt,
        ...(result.truncated === undefined ? {} : { truncated: result.truncated }),
        context_chars: await charsOf(run.task),
      };
      let line: ResultLine;
      if (kind !== null) {
        line = { ...base, score: kind === 'model' ? 0 : null, error: errorMessage(result.error), error_kind: kind, finished_at: new Date().toISOString() };
      } else {
        const scored = await score(scorers.get(run.task) as Scorer, run.task, result.answer, stop.signal);
        // A scorer the stop cut short (a judge's call) leaves no line: a resume runs it again.
        if (stop.signal.aborted && scored.error_kind === 'scorer') {
          emit({ type: 'abandoned', ...ids, reason: stopReason ?? 'interrupted' });
          return;
        }
        line = { ...base, ...scored, finished_at: new Date().toISOString() };
      }
      try {
        await write(line);
      } catch (error) {
        fatal ??= error;
        stopWith('fatal', error);
      }
      return;
    }
  };

  let next = 0;
  const worker = async () => {
    while (!stop.signal.aborted) {
      const run = queue[next];
      if (!run) return;
      next += 1;
      await runOne(run);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(settings.concurrency, queue.length) }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    await writer.close();
    if (ownPool) await pool?.close();
  }
  if (fatal !== undefined) throw fatal;

  const missing = plannedKeys.size - done.size;
  const missingReasons: string[] = [];
  if (missing > 0) {
    if (budgetExhausted) missingReasons.push(`the budget of $${settings.budgetUsd} was spent ($${spentNow().toFixed(4)})`);
    if (stopReason === 'interrupted') missingReasons.push('the evaluation was interrupted');
    if (infraErrors > 0) {
      missingReasons.push(
        `${infraErrors} ended with an infrastructure error after ${settings.retries} ${settings.retries === 1 ? 'retry' : 'retries'} (recorded with error_kind "infra")`,
      );
    }
  }
  return {
    planned: plannedKeys.size,
    alreadyDone,
    written,
    infraErrors,
    missing,
    missingReasons,
    budgetExhausted,
    interrupted: stopReason === 'interrupted',
    spentUsd: spentEnded,
    ignoredLines: existing.ignored,
  };
}

const keyOf = (run: EvaluationRun) => resultKey({ task_id: run.task.id, method: run.method, epoch: run.epoch });

// ---------------------------------------------------------------------------------------------
// One attempt

/** How one attempt of a (task, method, epoch) ended. */
interface Attempt {
  answer: string | null;
  /** Why it has no answer to score; null when it has one. */
  error: unknown;
  /** USD; null when a price is unknown, or when the attempt did not end (see `ended`). */
  costUsd: number | null;
  /** False when it threw before reporting its usage (its cost is then what its events added up). */
  ended: boolean;
  inputTokens: number;
  outputTokens: number;
  durationMs: number;
  iterations: number;
  /** Relative to the evaluation's directory. */
  trajectoryFile: string | null;
  truncated?: boolean;
}

function failedAttempt(error: unknown): Attempt {
  return { answer: null, error, costUsd: null, ended: false, inputTokens: 0, outputTokens: 0, durationMs: 0, iterations: 0, trajectoryFile: null };
}

/** A context that cannot be prepared (a file gone since the dataset was read): the task's, not the model's. */
class ContextUnavailableError extends RlmError {
  constructor(cause: unknown) {
    super(`the task's context could not be read: ${errorMessage(cause)}`, { kind: 'context_unavailable', cause });
  }
}

async function rlmAttempt(run: EvaluationRun, rlm: RLM, outDir: string, signal: AbortSignal): Promise<Attempt> {
  let context: Awaited<ReturnType<typeof taskContextValue>>;
  try {
    context = await taskContextValue(run.task, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new ContextUnavailableError(error);
  }
  const result = await rlm.completion({ context: context ?? '', query: run.task.query, signal });
  const tokens = sumTokens(result.usage);
  return {
    answer: result.answer,
    error: result.success ? null : (result.error ?? new RlmError('the run ended without an answer')),
    costUsd: result.costUsd,
    ended: true,
    ...tokens,
    durationMs: result.durationMs,
    iterations: result.iterations,
    trajectoryFile: result.trajectoryFile === null ? null : path.relative(outDir, result.trajectoryFile).split(path.sep).join('/'),
  };
}

/** Tokens kept free of the context in a `direct` prompt when the model has no `maxOutputTokens`. */
const DIRECT_OUTPUT_RESERVE_TOKENS = 4_096;

/**
 * The `direct` baseline: one call to the root model with the context and the query in one prompt,
 * the context cut in the middle (its beginning and end kept) to fit the model's window with room for
 * the rest of the prompt and the answer.
 */
async function directAttempt(run: EvaluationRun, options: EvaluationRlmOptions, signal: AbortSignal): Promise<Attempt> {
  let context: string;
  try {
    context = await taskContextText(run.task, signal);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new ContextUnavailableError(error);
  }
  const role = options.root;
  const { prompt, truncated } = directPrompt(context, run.task.query, role);
  const started = performance.now();
  try {
    const response = await role.backend.complete(
      {
        model: role.model,
        messages: [{ role: 'user', content: prompt }],
        ...(role.maxOutputTokens === undefined ? {} : { maxOutputTokens: role.maxOutputTokens }),
      },
      { signal },
    );
    return {
      answer: response.text.trim(),
      error: null,
      costUsd: costOf(role.model, response.usage, options.prices),
      ended: true,
      inputTokens: response.usage.inputTokens,
      outputTokens: response.usage.outputTokens,
      durationMs: performance.now() - started,
      iterations: 1,
      trajectoryFile: null,
      truncated,
    };
  } catch (error) {
    return { ...failedAttempt(error), durationMs: performance.now() - started, truncated };
  }
}

/** The marker put where a `direct` prompt's context was cut; `{n}` is the number of characters cut. */
export const DIRECT_TRUNCATION_MARKER = '[… {n} characters of the context were cut here to fit the model’s context window …]';

/**
 * The prompt of the `direct` baseline for `context` and `query`: the context whole when it fits the
 * model's window (estimated with `estimateTokens`, leaving room for the question and the answer),
 * else its beginning and its end around {@link DIRECT_TRUNCATION_MARKER}, with `truncated: true`.
 */
export function directPrompt(
  context: string,
  query: string,
  role: Pick<ModelRole, 'model' | 'contextWindowTokens' | 'maxOutputTokens'>,
): { prompt: string; truncated: boolean } {
  const build = (text: string) =>
    `Answer the question using the context below.\n\n<context>\n${text}\n</context>\n\nQuestion: ${query}\n\nGive only the final answer, with no explanation.`;
  const window = role.contextWindowTokens ?? contextWindowOf(role.model);
  const reserve = role.maxOutputTokens ?? DIRECT_OUTPUT_RESERVE_TOKENS;
  const whole = build(context);
  if (estimateTokens(whole) + reserve <= window) return { prompt: whole, truncated: false };
  const marker = DIRECT_TRUNCATION_MARKER.replace('{n}', context.length.toLocaleString('en-US'));
  // Characters the context may keep: what is left of the window, at the estimator's 3.5 characters a token.
  const room = Math.max(0, Math.floor((window - reserve - estimateTokens(build('')) - estimateTokens(marker) - 8) * 3.5));
  const head = Math.ceil(room / 2);
  const tail = room - head;
  const cut = context.length - room;
  const kept = `${context.slice(0, head)}\n\n${DIRECT_TRUNCATION_MARKER.replace('{n}', cut.toLocaleString('en-US'))}\n\n${tail > 0 ? context.slice(context.length - tail) : ''}`;
  return { prompt: build(kept), truncated: true };
}

/** The score of an answer, or the scorer's failure as a `scorer` error. */
async function score(
  scorer: Scorer,
  task: EvalTask,
  answer: string | null,
  signal: AbortSignal,
): Promise<Pick<ResultLine, 'score' | 'score_note' | 'error' | 'error_kind'>> {
  try {
    const scored = await scorer.score({ answer, expected: task.expected, task, signal });
    if (!(typeof scored.score === 'number' && scored.score >= 0 && scored.score <= 1)) {
      throw new RlmError(`the scorer ${scorer.name} returned ${String(scored.score)}; a score must be a number in [0, 1]`);
    }
    return { score: scored.score, score_note: scored.note ?? null, error: null, error_kind: null };
  } catch (error) {
    return { score: null, score_note: null, error: `scorer ${scorer.name}: ${errorMessage(error)}`, error_kind: 'scorer' };
  }
}

// ---------------------------------------------------------------------------------------------
// Classification

/** What an attempt's failure means: see the module's doc. */
export function classify(error: unknown): Exclude<ErrorKind, 'scorer'> | 'fatal' {
  if (ModelCallError.isInstance(error)) {
    if (error.fatal) return 'fatal';
    return error.kind === 'invalid_request' ? 'model' : 'infra';
  }
  if (RunLimitError.isInstance(error)) {
    // Turns that failed in a row because the provider did: the provider's failure decides.
    if (error.limit === 'consecutive_failures' && ModelCallError.isInstance(error.cause)) return classify(error.cause);
    return 'model';
  }
  if (SandboxImageError.isInstance(error) || InvalidOptionError.isInstance(error)) return 'fatal';
  if (SandboxError.isInstance(error) || DockerUnavailableError.isInstance(error) || error instanceof ContextUnavailableError) return 'infra';
  if (AbortedError.isInstance(error)) return 'infra';
  // A generic engine error wrapping one of the above (a REPL that could not be made…).
  if (RlmError.isInstance(error) && error.cause !== undefined && error.cause !== error) {
    const cause = classify(error.cause);
    if (cause !== 'model') return cause;
  }
  if (RlmError.isInstance(error)) return 'model';
  return 'infra';
}

// ---------------------------------------------------------------------------------------------
// Money

/** USD an event reports spent: a root model's answer, a sub-call's own model call, a compaction. */
function costOfEvent(event: RunEvent): number {
  switch (event.type) {
    case 'model_response':
      return event.costUsd ?? 0;
    case 'subcall_end':
      return event.usage?.costUsd ?? 0;
    case 'compaction':
      return event.usage.costUsd ?? 0;
    default:
      return 0;
  }
}

function sumTokens(usage: UsageByModel): { inputTokens: number; outputTokens: number } {
  let inputTokens = 0;
  let outputTokens = 0;
  for (const entry of Object.values(usage)) {
    inputTokens += entry.inputTokens;
    outputTokens += entry.outputTokens;
  }
  return { inputTokens, outputTokens };
}

/** A budget in dollars needs a price for every model a run may call (as `limits.maxCostUsd` does). */
function assertPriced(options: EvaluationRlmOptions, withSubcalls: boolean): void {
  const roles = [options.root, ...(withSubcalls ? [...(options.sub ? [options.sub] : []), ...Object.values(options.models ?? {})] : [])];
  const unpriced = [...new Set(roles.filter((role) => !role.backend.reportsCost && !priceOf(role.model, options.prices)).map((role) => role.model))];
  if (unpriced.length === 0) return;
  throw new InvalidOptionError(
    'budgetUsd',
    `the $ budget cannot be kept: ${unpriced.map((model) => JSON.stringify(model)).join(', ')} ${unpriced.length === 1 ? 'has' : 'have'} no known price; ` +
      'give prices (prices: in the config file, in USD per million tokens), or run without a budget',
  );
}

// ---------------------------------------------------------------------------------------------
// Options

interface Settings {
  epochs: number;
  concurrency: number;
  maxSandboxes: number;
  retries: number;
  retryDelayMs: number;
  budgetUsd: number | undefined;
}

function validate(options: EvaluationOptions): Settings {
  const integer = (name: string, value: number | undefined, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (!(Number.isInteger(value) && value >= min)) throw new InvalidOptionError(name, `must be an integer of at least ${min}, got ${value}`);
    return value;
  };
  if (options.methods.length === 0) throw new InvalidOptionError('methods', `give at least one of ${METHODS.join(', ')}`);
  for (const method of options.methods) {
    if (!(METHODS as readonly string[]).includes(method))
      throw new InvalidOptionError('methods', `unknown method ${JSON.stringify(method)}; the methods: ${METHODS.join(', ')}`);
  }
  if (new Set(options.methods).size !== options.methods.length) throw new InvalidOptionError('methods', 'a method is listed twice');
  const ids = new Set<string>();
  for (const task of options.tasks) {
    if (ids.has(task.id)) throw new InvalidOptionError('tasks', `two tasks have the id ${JSON.stringify(task.id)}; ids must be unique`);
    ids.add(task.id);
  }
  const concurrency = integer('concurrency', options.concurrency, DEFAULT_EVAL_CONCURRENCY, 1);
  const budgetUsd = options.budgetUsd;
  if (budgetUsd !== undefined && !(budgetUsd > 0 && Number.isFinite(budgetUsd)))
    throw new InvalidOptionError('budgetUsd', `must be a positive number of dollars, got ${budgetUsd}`);
  const retryDelayMs = options.retryDelayMs ?? 1_000;
  if (!(retryDelayMs >= 0 && Number.isFinite(retryDelayMs))) throw new InvalidOptionError('retryDelayMs', `must be 0 or more, got ${retryDelayMs}`);
  return {
    epochs: integer('epochs', options.epochs, 1, 1),
    concurrency,
    maxSandboxes: integer('maxSandboxes', options.maxSandboxes, Math.max(2, concurrency * 2), 1),
    retries: integer('retries', options.retries, DEFAULT_EVAL_RETRIES, 0),
    retryDelayMs,
    budgetUsd,
  };
}
