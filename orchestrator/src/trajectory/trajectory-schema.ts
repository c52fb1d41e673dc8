/**
 * The trajectory file's lines, defined once: what {@link TrajectoryWriter} writes, what
 * {@link parseTrajectory} accepts, and what the viewer reads.
 *
 * The format is the reference implementation's (`rlms`) JSONL, so its visualizer opens our logs: a
 * `metadata` line, then one `iteration` line per turn. Names and units are the reference's (snake
 * case; times in seconds). Our extensions (a result's `status`, a call's `kind`, a child run's
 * nested `trajectory`…) are optional fields the reference's reader ignores. We write no line of
 * another type: the reference's visualizer takes any line that is not metadata for an iteration.
 *
 * Three forms of each line, all here:
 * - the documented interface (`IterationLine`, …), the public type. It is written out rather than
 *   inferred from the schema because declaration files drop the doc comments of a zod shape;
 * - the strict schema (`IterationLineSchema`, …), exactly what we write; a compile-time check
 *   below proves each schema and its interface name the same fields with the same types, so
 *   neither can change alone;
 * - the lenient schema (`LenientIterationLine`, …) the viewer reads any file with — ours or the
 *   reference's, old or new — derived from the strict one by {@link lenientObject}: every field
 *   optional and nullable, plus the fields and shapes only the reference writes, declared here
 *   (`REFERENCE_*`) and nowhere else.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { errorCode, errorMessage, RlmError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// The lines as users see them

/** Tokens one model used, summed over its calls. Token counts are integers. */
export interface ModelUsageSummaryLine {
  /** Model calls. */
  total_calls: number;
  /** Input (prompt) tokens, as the provider reported them. */
  total_input_tokens: number;
  /** Output (completion) tokens, as the provider reported them. */
  total_output_tokens: number;
}

/** Usage per model. */
export interface UsageSummaryLine {
  /** Model name → its usage. */
  model_usage_summaries: Record<string, ModelUsageSummaryLine>;
}

/** One message of the conversation sent to the root model. */
export interface MessageLine {
  /** `system`, `user` or `assistant`. */
  role: string;
  /** The message's text (clipped as {@link TRAJECTORY_TEXT_LIMIT_CHARS} says). */
  content: string;
}

/**
 * One `llm_query` or `rlm_query` a cell made (a batched call gives one per prompt). Prompt and
 * response are kept whole up to 64 Ki characters, else their beginning and end around a marker.
 */
export interface RlmCallLine {
  /** The model that served the call; for an `rlm_query`, the child run's root model. */
  root_model: string;
  /** The prompt as recorded: possibly clipped (see `prompt_chars`); a refused prompt by its first 200 characters. */
  prompt: string;
  /** The answer as recorded (clipped like `prompt`); empty when the call failed. */
  response: string;
  /** Tokens per model: a plain call's own; for an `rlm_query`, the child's whole run (its own children included). */
  usage_summary: UsageSummaryLine;
  /** Wall-clock time of the call, in seconds (millisecond precision). */
  execution_time: number;
  /** Input tokens, summed over `usage_summary` (the reference's visualizer shows it). */
  prompt_tokens?: number;
  /** Output tokens, summed over `usage_summary`. */
  completion_tokens?: number;
  /** Why the call failed, as the cell saw it; absent when it succeeded. */
  error?: string;
  /** Which function made the call. */
  kind?: 'llm_query' | 'rlm_query';
  /** The whole prompt's length in characters (UTF-16 code units), whatever `prompt` kept of it. */
  prompt_chars?: number;
  /** Why the call was served otherwise than asked, e.g. an `rlm_query` answered as a plain `llm_query`. */
  note?: string;
  /** The call was aborted while it ran (its cell ended, the run stopped); `error` says why. */
  cancelled?: true;
  /**
   * For an `rlm_query` served by a child RLM: the lines the child would have written to a file of
   * its own — a metadata line with its `run_id` and `depth`, then its iterations — recursively.
   */
  trajectory?: TrajectoryLine[];
}

/** What running one code block gave. */
export interface ReplResultLine {
  /** What the cell printed (clipped as {@link TRAJECTORY_TEXT_LIMIT_CHARS} says). */
  stdout: string;
  /** What the cell wrote to stderr, then its uncaught error with its stack, if any. */
  stderr: string;
  /** The REPL's variables after the cell, name → `<type>` (at most 1,000). */
  locals: Record<string, string>;
  /** Wall-clock time of the cell, in seconds (millisecond precision). */
  execution_time: number;
  /** The cell's sub-calls, in the order they were recorded (at most 1,000; see `rlm_calls_not_recorded`). */
  rlm_calls: RlmCallLine[];
  /** How the cell ended: normally, with an uncaught error, or interrupted at its timeout. */
  status?: 'ok' | 'error' | 'timeout';
  /** The value of the cell's last expression, as text; absent when it had none. */
  value?: string;
  /** The REPL restarted during this cell and lost its variables; absent when it did not. */
  state_lost?: boolean;
  /** Sub-calls the cell made past the 1,000 recorded: counted, not recorded. Absent when none. */
  rlm_calls_not_recorded?: number;
  /** Prompts of the cell's batches never sent because the cell ended or the run stopped first. Absent when none. */
  rlm_calls_not_started?: number;
}

/** A code block of the response and what running it gave. */
export interface CodeBlockLine {
  /** The code, as the model wrote it in its fence. */
  code: string;
  /** What running it gave. */
  result: ReplResultLine;
}

/** The first line of a trajectory file: the run's settings. */
export interface MetadataLine {
  /** Always `metadata`: the line's kind. */
  type: 'metadata';
  /** When the line was written, ISO 8601 in UTC. */
  timestamp: string;
  /** The root model's name, as its backend knows it. */
  root_model: string;
  /** Deepest child RLM: at this depth `rlm_query` is a plain `llm_query` (the root is depth 0). */
  max_depth: number;
  /** Model turns the run may take, its children's included. */
  max_iterations: number;
  /** The root backend's name, e.g. `anthropic`. */
  backend: string;
  /** The backend's settings; every key naming a secret, and every string shaped like an API key, is `[redacted]`. */
  backend_kwargs: Record<string, unknown>;
  /** Where cells ran: `docker` for ours. */
  environment_type: string;
  /** The sandbox's settings (image, limits, runtime…), redacted like `backend_kwargs`. */
  environment_kwargs: Record<string, unknown>;
  /** Other backends the run may call (a sub model's, named models'), by name; null when none. */
  other_backends: string[] | null;
  /** A child run's id; only in the metadata line of a call's nested `trajectory`. */
  run_id?: string;
  /** A child run's depth, 1 for a child of the root; only in a nested `trajectory`. */
  depth?: number;
  /** Set when the line was written in a reduced form (without the settings): why. */
  note?: string;
}

/** One line per turn of the run: what the root model was sent and answered, and the code it ran. */
export interface IterationLine {
  /** Always `iteration`: the line's kind. */
  type: 'iteration';
  /** The turn's number, 1-based. */
  iteration: number;
  /** When the line was written (just after the turn ended), ISO 8601 in UTC. */
  timestamp: string;
  /** The conversation sent to the root model for this turn, system prompt first; empty in a reduced line. */
  prompt: MessageLine[];
  /** The root model's response. */
  response: string;
  /** The response's code blocks, in order, with what running each gave. */
  code_blocks: CodeBlockLine[];
  /** The answer this turn ended the run with; null when it did not end it. */
  final_answer: string | null;
  /** Wall-clock time of the turn (the model call and the cells), in seconds (millisecond precision). */
  iteration_time: number | null;
  /** The root model's usage for this turn (the reference does not record it); absent in a reduced line. */
  usage_summary?: UsageSummaryLine;
  /** Set when the line was written in a reduced form (no prompt, sub-calls or child runs; texts clipped to 4 Ki characters): why. */
  note?: string;
}

/** A line of a trajectory file: a {@link MetadataLine} or an {@link IterationLine}. */
export type TrajectoryLine = MetadataLine | IterationLine;

// ---------------------------------------------------------------------------------------------
// Strict schemas: exactly what we write

const ModelUsageSummaryLineSchema = z.object({
  total_calls: z.number(),
  total_input_tokens: z.number(),
  total_output_tokens: z.number(),
});

const UsageSummaryLineSchema = z.object({ model_usage_summaries: z.record(z.string(), ModelUsageSummaryLineSchema) });

const MessageLineSchema = z.object({ role: z.string(), content: z.string() });

const RlmCallLineSchema = z.object({
  root_model: z.string(),
  prompt: z.string(),
  response: z.string(),
  usage_summary: UsageSummaryLineSchema,
  execution_time: z.number(),
  prompt_tokens: z.number().optional(),
  completion_tokens: z.number().optional(),
  error: z.string().optional(),
  kind: z.enum(['llm_query', 'rlm_query']).optional(),
  prompt_chars: z.number().optional(),
  note: z.string().optional(),
  cancelled: z.literal(true).optional(),
  // A child's lines nest in its call: the recursion goes through a getter.
  get trajectory(): z.ZodOptional<z.ZodArray<z.ZodType<TrajectoryLine>>> {
    return z.array(TrajectoryLineSchema).optional();
  },
});

const ReplResultLineSchema = z.object({
  stdout: z.string(),
  stderr: z.string(),
  locals: z.record(z.string(), z.string()),
  execution_time: z.number(),
  rlm_calls: z.array(RlmCallLineSchema),
  status: z.enum(['ok', 'error', 'timeout']).optional(),
  value: z.string().optional(),
  state_lost: z.boolean().optional(),
  rlm_calls_not_recorded: z.number().optional(),
  rlm_calls_not_started: z.number().optional(),
});

const CodeBlockLineSchema = z.object({ code: z.string(), result: ReplResultLineSchema });

const MetadataLineSchema = z.object({
  type: z.literal('metadata'),
  timestamp: z.string(),
  root_model: z.string(),
  max_depth: z.number(),
  max_iterations: z.number(),
  backend: z.string(),
  backend_kwargs: z.record(z.string(), z.unknown()),
  environment_type: z.string(),
  environment_kwargs: z.record(z.string(), z.unknown()),
  other_backends: z.array(z.string()).nullable(),
  run_id: z.string().optional(),
  depth: z.number().optional(),
  note: z.string().optional(),
});

const IterationLineSchema = z.object({
  type: z.literal('iteration'),
  iteration: z.number().int().positive(),
  timestamp: z.string(),
  prompt: z.array(MessageLineSchema),
  response: z.string(),
  code_blocks: z.array(CodeBlockLineSchema),
  final_answer: z.string().nullable(),
  iteration_time: z.number().nullable(),
  usage_summary: UsageSummaryLineSchema.optional(),
  note: z.string().optional(),
});

/** A metadata or an iteration line of our format; fields this version does not know are dropped. */
export const TrajectoryLineSchema = z.discriminatedUnion('type', [MetadataLineSchema, IterationLineSchema]);

/** True when a schema's output and a documented line type have the same fields, each side's types assignable to the other's. */
type Agrees<Schema extends z.ZodType, Line> = [z.output<Schema>, keyof z.output<Schema>] extends [Line, keyof Line]
  ? [Line, keyof Line] extends [z.output<Schema>, keyof z.output<Schema>]
    ? true
    : false
  : false;

// Compile-time: a field added to, removed from or changed in an interface or its schema alone fails
// the typecheck on its pair's line ("Type 'true' does not satisfy the expected type 'false'").
true satisfies Agrees<typeof ModelUsageSummaryLineSchema, ModelUsageSummaryLine>;
true satisfies Agrees<typeof UsageSummaryLineSchema, UsageSummaryLine>;
true satisfies Agrees<typeof MessageLineSchema, MessageLine>;
true satisfies Agrees<typeof RlmCallLineSchema, RlmCallLine>;
true satisfies Agrees<typeof ReplResultLineSchema, ReplResultLine>;
true satisfies Agrees<typeof CodeBlockLineSchema, CodeBlockLine>;
true satisfies Agrees<typeof MetadataLineSchema, MetadataLine>;
true satisfies Agrees<typeof IterationLineSchema, IterationLine>;

// ---------------------------------------------------------------------------------------------
// Reading our files back

/** A trajectory read back: its metadata line (the first, if any) and its iterations, in file order. */
export interface ParsedTrajectory {
  /** The metadata line, or `null` when the file has none. */
  metadata: MetadataLine | null;
  /** Every iteration line, in the order the turns ran. */
  iterations: IterationLine[];
}

/**
 * Parses a trajectory's JSONL text, as our writer writes it, with the strict schemas; blank lines
 * are skipped. For files of other writers (the reference's), see the viewer (`rlm view`).
 *
 * @throws {RlmError} `kind` `invalid_trajectory`: a line is not JSON or does not match, naming the
 *   line number; the JSON or zod error is the `cause`.
 */
export function parseTrajectory(jsonl: string): ParsedTrajectory {
  const parsed: ParsedTrajectory = { metadata: null, iterations: [] };
  const lines = jsonl.split('\n');
  for (const [index, text] of lines.entries()) {
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new RlmError(`trajectory line ${index + 1} is not JSON: ${errorMessage(error)}`, { kind: 'invalid_trajectory', cause: error });
    }
    const result = TrajectoryLineSchema.safeParse(value);
    if (!result.success) {
      throw new RlmError(`trajectory line ${index + 1} is not a metadata or iteration line: ${z.prettifyError(result.error)}`, {
        kind: 'invalid_trajectory',
        cause: result.error,
      });
    }
    if (result.data.type === 'metadata') parsed.metadata ??= result.data;
    else parsed.iterations.push(result.data);
  }
  return parsed;
}

/**
 * Reads and parses a trajectory file; see {@link parseTrajectory}.
 *
 * @throws {RlmError} `kind` `trajectory_unreadable` when the file cannot be read (the message
 *   names it and the system error's code), `invalid_trajectory` as {@link parseTrajectory}.
 */
export async function readTrajectory(file: string): Promise<ParsedTrajectory> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new RlmError(`cannot read the trajectory ${file}: ${errorCode(error) ?? errorMessage(error)}`, { kind: 'trajectory_unreadable', cause: error });
  }
  return parseTrajectory(text);
}

// ---------------------------------------------------------------------------------------------
// Lenient schemas: any writer's lines, for the viewer

type NullishShape<Shape extends z.core.$ZodShape> = { [K in keyof Shape]: z.ZodOptional<z.ZodNullable<Shape[K]>> };
type DroppedWhenInvalidShape<Shape extends z.core.$ZodShape> = { [K in keyof Shape]: z.ZodCatch<z.ZodOptional<z.ZodNullable<Shape[K]>>> };

/**
 * The lenient form of a strict line schema: every field optional and nullable, unknown fields
 * kept; `replaced` gives some fields another schema (the reference writes other shapes) and adds
 * the reference's own fields. With `dropInvalid`, a field of the wrong type reads as `null`
 * instead of failing the line (for informational lines).
 */
function lenientObject<Shape extends z.core.$ZodShape, Replaced extends z.core.$ZodShape>(
  strict: z.ZodObject<Shape>,
  replaced: Replaced,
): z.ZodObject<Omit<NullishShape<Shape>, keyof Replaced> & Replaced, z.core.$loose>;
function lenientObject<Shape extends z.core.$ZodShape, Replaced extends z.core.$ZodShape>(
  strict: z.ZodObject<Shape>,
  replaced: Replaced,
  options: { dropInvalid: true },
): z.ZodObject<Omit<DroppedWhenInvalidShape<Shape>, keyof Replaced> & Replaced, z.core.$loose>;
function lenientObject(strict: z.ZodObject, replaced: z.core.$ZodShape, options?: { dropInvalid: true }): z.ZodObject {
  const shape: Record<string, z.ZodType> = {};
  for (const key of Object.keys(strict.shape)) {
    if (key in replaced) continue;
    const field = (strict.shape[key] as z.ZodType).nullish();
    shape[key] = options?.dropInvalid ? field.catch(null) : field;
  }
  return z.looseObject({ ...shape, ...replaced });
}

// What only the reference writes, or writes in other shapes than we do.

/** Any JSON value, or none (zod 4 takes a plain `z.unknown()` field of an object as required). */
const anyValue = z.unknown().optional();

/** The reference's call: a prompt that is a dict or a list of messages, an error type besides (or instead of) its message. */
const REFERENCE_CALL_FIELDS = { prompt: anyValue, response: anyValue, error: anyValue, error_type: anyValue };
/** The reference's iteration: `type` missing in older files; a string or dict as prompt or response; `[variable, value]` as `final_answer`. */
const REFERENCE_ITERATION_FIELDS = { prompt: anyValue, response: anyValue, final_answer: anyValue };
/** The reference's metadata: `recursive_max_depth` in some versions instead of `max_depth`. */
const REFERENCE_METADATA_FIELDS = { recursive_max_depth: z.number().nullish().catch(null) };
/** A cost in US dollars a usage summary may carry (neither writer writes it today); honoured when present. */
const REFERENCE_USAGE_FIELDS = { total_cost: z.number().nullish() };

export const LenientModelUsageSummaryLine = lenientObject(ModelUsageSummaryLineSchema, REFERENCE_USAGE_FIELDS);

export const LenientUsageSummaryLine = lenientObject(UsageSummaryLineSchema, {
  model_usage_summaries: z.record(z.string(), LenientModelUsageSummaryLine).nullish(),
});

export const LenientRlmCallLine = lenientObject(RlmCallLineSchema, {
  ...REFERENCE_CALL_FIELDS,
  usage_summary: LenientUsageSummaryLine.nullish(),
  // A kind of a later version is shown as it is.
  kind: z.string().nullish(),
  // A child's lines are read one by one, each as leniently as a file's.
  trajectory: z.array(z.unknown()).nullish(),
});

/** The reference's result: locals as values (not `<type>`), a value of any type; older files name the calls `llm_calls`. */
const REFERENCE_RESULT_FIELDS = { locals: z.record(z.string(), z.unknown()).nullish(), value: anyValue, llm_calls: z.array(LenientRlmCallLine).nullish() };

export const LenientReplResultLine = lenientObject(ReplResultLineSchema, {
  ...REFERENCE_RESULT_FIELDS,
  rlm_calls: z.array(LenientRlmCallLine).nullish(),
  // A status of a later version is shown as none.
  status: z.string().nullish(),
});

export const LenientCodeBlockLine = lenientObject(CodeBlockLineSchema, { code: anyValue, result: LenientReplResultLine.nullish() });

/** An iteration line of any writer: the line is drawn if this holds; a line failing it is reported as a problem. */
export const LenientIterationLine = lenientObject(IterationLineSchema, {
  ...REFERENCE_ITERATION_FIELDS,
  // A turn's number is only a label: any number will do, and a missing one is the line's position.
  iteration: z.number().nullish(),
  code_blocks: z.array(LenientCodeBlockLine).nullish(),
  usage_summary: LenientUsageSummaryLine.nullish(),
});

/** A metadata line of any writer: informational, so a field of the wrong type reads as `null` and never fails the line. */
export const LenientMetadataLine = lenientObject(MetadataLineSchema, REFERENCE_METADATA_FIELDS, { dropInvalid: true });

/**
 * The reference's `run_context` line (we do not write it): one completion of a session, with the
 * query (`root_prompt`) and the context (`prompt`). Informational, like metadata.
 */
export const LenientRunContextLine = z.looseObject({
  timestamp: z.string().nullish().catch(null),
  root_prompt: anyValue,
  prompt: anyValue,
  session_mode: z.boolean().nullish().catch(null),
});
