/**
 * The contract between the parts of `rlm eval`: a dataset's tasks (dataset/), how an answer is
 * scored (scorers/), one finished (task, method, epoch) as a line of `results.jsonl` (runner/), the
 * evaluation's recorded options (`eval.json`) and its summary (`summary.json`, statistics/).
 *
 * Files on disk use snake_case field names (like trajectories and the reference's tools); the
 * schemas here are what is written and what a resume or a rescore reads back. Light on purpose:
 * zod and nothing of the engine, so scorers and statistics load without dockerode or the SDKs.
 */
import { z } from 'zod';

// ---------------------------------------------------------------------------------------------
// Tasks

/** A context as a dataset row gives it: text, an array or an object (JSON). */
export type TaskContext = string | readonly unknown[] | Readonly<Record<string, unknown>>;

/** One task of a dataset, after column mapping and validation. */
export interface EvalTask {
  /** The row's `id`, or its 1-based row number as a string when the row has none. Unique in the dataset. */
  id: string;
  /** The question. Never empty. */
  query: string;
  /**
   * The context: inline (`context`), or files (`context_file` / `context_files`, resolved to absolute
   * paths relative to the dataset file; several files become a map of relative path → content, as
   * `rlm --context-file` does). Absent when the task has none.
   */
  context?:
    | { kind: 'inline'; value: TaskContext }
    | {
        kind: 'files';
        paths: readonly string[];
        /** The paths as the row wrote them, in the order of `paths`: the keys of the map when there are several files (default: `paths`). */
        names?: readonly string[];
      };
  /** Accepted answers (`answer`, or every item of `answers`); a scorer compares with each and keeps the best. Empty for a judge-only or custom scorer that needs none. */
  expected: readonly string[];
  /** Multiple-choice options, in order (A, B, C… for the `choice` scorer). */
  choices?: readonly string[];
  /** The scorer for this task, overriding `--scorer` (a scorer name or a module path). */
  scorer?: string;
  /** Anything else the row carried under `metadata` (e.g. `depth`, `context_chars` of generated sets). */
  metadata: Readonly<Record<string, unknown>>;
  /** The row's 1-based number in the file (for error messages). */
  row: number;
}

// ---------------------------------------------------------------------------------------------
// Scoring

/** What a scorer gives one answer: a score in [0, 1] and an optional note (why, e.g. the judge's verdict). */
export interface Score {
  score: number;
  note?: string;
}

/** What a scorer is given. `answer` is null when the run produced none. */
export interface ScoreInput {
  answer: string | null;
  expected: readonly string[];
  task: EvalTask;
  signal: AbortSignal;
}

/**
 * A scorer: pure and synchronous for the built-in ones, asynchronous for `judge` and possibly for a
 * module. Must return a score in [0, 1]; a scorer that throws makes the result an error of kind
 * `scorer` (recorded, excluded from accuracy, counted).
 */
export interface Scorer {
  /** The name `--scorer` takes, or the module path. */
  readonly name: string;
  score(input: ScoreInput): Score | Promise<Score>;
}

// ---------------------------------------------------------------------------------------------
// Results: one line of results.jsonl per finished (task, method, epoch)

/** The methods an evaluation compares. */
export const METHODS = ['rlm', 'direct', 'rlm-no-subcalls'] as const;
export type Method = (typeof METHODS)[number];

/**
 * Why a (task, method, epoch) has no score:
 * - `infra`: the sandbox, Docker, the provider (5xx/429 after the backend's retries) or the network
 *   failed, after `--retries`; excluded from accuracy, counted in `errors`.
 * - `model`: the run ended without an answer (iteration, token, time or cost limit; no FINAL); scores 0.
 * - `scorer`: the scorer threw; excluded from accuracy, counted in `errors`.
 */
export const ERROR_KINDS = ['infra', 'model', 'scorer'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export const ResultLineSchema = z.object({
  task_id: z.string(),
  method: z.enum(METHODS),
  /** 1-based. */
  epoch: z.number().int().min(1),
  answer: z.string().nullable(),
  expected: z.array(z.string()),
  /** In [0, 1]; null when `error_kind` is `infra` or `scorer`. */
  score: z.number().min(0).max(1).nullable(),
  /** The scorer's note, if any. */
  score_note: z.string().nullable().optional(),
  /** Which scorer gave the score. */
  scorer: z.string(),
  error: z.string().nullable(),
  error_kind: z.enum(ERROR_KINDS).nullable(),
  /** USD; null when a model's price is unknown. */
  cost_usd: z.number().nullable(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  /** Wall-clock time of the run, ms. */
  duration_ms: z.number(),
  /** Root-model turns; 1 for `direct`. */
  iterations: z.number().int(),
  /** Relative to the evaluation's directory; null for `direct` or without a trajectory. */
  trajectory_file: z.string().nullable(),
  /** Attempts made (1 + infra retries). */
  attempts: z.number().int().min(1),
  /** `direct` only: the context was cut to fit the model's window. */
  truncated: z.boolean().optional(),
  /** Characters of the task's context (for score-against-length charts); 0 without one. */
  context_chars: z.number().int().min(0),
  /** ISO 8601 UTC, when the line was written. */
  finished_at: z.string(),
});
/** One line of `results.jsonl`. */
export type ResultLine = z.infer<typeof ResultLineSchema>;

/** The key of a result: one per (task, method, epoch). */
export function resultKey(line: Pick<ResultLine, 'task_id' | 'method' | 'epoch'>): string {
  return `${line.task_id}\u0000${line.method}\u0000${line.epoch}`;
}

// ---------------------------------------------------------------------------------------------
// eval.json: what the results depend on; a resume with other values is refused

export const EvalManifestSchema = z.object({
  /** Format version of the directory. */
  version: z.literal(1),
  /** The dataset as given (absolute path) and the SHA-256 of its bytes (hex). */
  dataset: z.object({ path: z.string(), sha256: z.string(), tasks: z.number().int() }),
  /**
   * Every option that changes results, by its flag name (`methods`, `scorer`, `epochs`, `limit`,
   * `sample`, `seed`, `field`, `backend`, `model`, `sub-model`, `models`, `language`, limits,
   * `tolerance`, `judge-model`…), as canonical JSON values. Options that do not change results
   * (`concurrency`, `max-sandboxes`, `retries`, `budget`, output flags) are not here.
   */
  options: z.record(z.string(), z.unknown()),
  /** The (task id) list selected by `--limit` / `--sample`, in run order. */
  task_ids: z.array(z.string()),
  /** ISO 8601 UTC. */
  created_at: z.string(),
  /** The rlm version that created it. */
  rlm_version: z.string(),
});
export type EvalManifest = z.infer<typeof EvalManifestSchema>;

// ---------------------------------------------------------------------------------------------
// summary.json

/** A 95% confidence interval, [low, high]; null when it cannot be computed (fewer than 2 tasks). */
export const Ci95Schema = z.tuple([z.number(), z.number()]).nullable();

export const MethodSummarySchema = z.object({
  /** (task, epoch) results of this method, with or without a score. */
  n: z.number().int(),
  /** Results with a score (model failures included, as 0). */
  scored: z.number().int(),
  /** Results without a score: `infra` and `scorer` errors. */
  errors: z.number().int(),
  /** Mean score over scored results; null when none is scored. */
  accuracy: z.number().nullable(),
  /** Bootstrap over tasks (resampling tasks, each task's epochs together when epochs > 1). */
  ci95: Ci95Schema,
  /** Null when some result's cost is unknown. */
  cost_usd: z.number().nullable(),
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  /** Of `duration_ms`, over results; null when none. */
  p50_ms: z.number().nullable(),
  p95_ms: z.number().nullable(),
});
export type MethodSummary = z.infer<typeof MethodSummarySchema>;

export const PairSummarySchema = z.object({
  a: z.enum(METHODS),
  b: z.enum(METHODS),
  /** Tasks both methods scored (mean over epochs per task). */
  tasks: z.number().int(),
  /** Mean of (score a − score b) over those tasks. */
  difference: z.number().nullable(),
  /** Paired bootstrap over those tasks. */
  ci95: Ci95Schema,
});
export type PairSummary = z.infer<typeof PairSummarySchema>;

export const EvalSummarySchema = z.object({
  dataset: z.string(),
  /** (task, method, epoch) combinations in the evaluation, and how many have a result line. */
  planned: z.number().int(),
  finished: z.number().int(),
  methods: z.record(z.string(), MethodSummarySchema),
  pairs: z.array(PairSummarySchema),
});
export type EvalSummary = z.infer<typeof EvalSummarySchema>;
