/**
 * Writes a run's trajectory as JSON lines in the format `trajectory-schema.ts` defines (the
 * reference implementation's, so its visualizer can open our logs, plus our extensions): a
 * `metadata` line, then one `iteration` line per turn, each child RLM nested in the call that
 * started it. The input is the engine's own {@link TurnRecord}s; the line builders return the
 * schema's types, so what is written is what the schema (and so `parseTrajectory` and the viewer)
 * reads.
 *
 * Bounded by configuration, not by payload: sub-call prompts and responses arrive already bounded
 * (see `engine/recorded-text.ts`: 64 Ki characters each, a refused prompt 200, 1,000 calls per
 * cell); on top of that every text of a line (a message, code, stdout, stderr, a value, an answer)
 * longer than {@link TRAJECTORY_TEXT_LIMIT_CHARS} (1 Mi characters) keeps its beginning and end
 * around a marker, and a result lists at most `MAX_LISTED_VARIABLES` (1,000) locals.
 *
 * Secrets: every key in the metadata's kwargs that names a key, secret, token, password or
 * credential is written as `[redacted]`, and so is any string there shaped like an API key.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import path from 'node:path';
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES, type ExecuteResult } from '@rlm/shared';
import { clipForRecord } from '../engine/recorded-text.js';
import type { BlockRecord, ChildRunRecord, SubcallRecord, TurnRecord } from '../engine/run-records.js';
import { errorMessage } from '../errors.js';
import { warn } from '../logging.js';
import { jsonChunks } from './json-chunks.js';
import type { IterationLine, MetadataLine, ModelUsageSummaryLine, ReplResultLine, RlmCallLine, TrajectoryLine } from './trajectory-schema.js';

/**
 * Longest text a trajectory line keeps whole, in characters (1 Mi, the longest final answer); a
 * longer one keeps its beginning and its last 64 Ki characters around a marker.
 */
export const TRAJECTORY_TEXT_LIMIT_CHARS = MAX_FINAL_CHARS;

/** What a reduced line (written when the full one could not be) keeps of each text, in characters. */
export const REDUCED_TEXT_LIMIT_CHARS = 4 * 1024;

const text = (value: string) => clipForRecord(value, TRAJECTORY_TEXT_LIMIT_CHARS, 64 * 1024);

/** The run's configuration, as the metadata line records it. */
export interface TrajectoryMetadata {
  rootModel: string;
  maxDepth: number;
  maxIterations: number;
  /** The root backend's name, e.g. `anthropic`. */
  backend: string;
  /** The backend's settings; secrets are redacted on the way out. */
  backendKwargs?: Readonly<Record<string, unknown>>;
  /** The sandbox's settings (image, limits, runtime…); secrets are redacted on the way out. */
  environmentKwargs?: Readonly<Record<string, unknown>>;
  /** Other backends the run may call (a sub model's, named models'), by name. */
  otherBackends?: readonly string[] | null;
}

// ---------------------------------------------------------------------------------------------
// Converting

const seconds = (ms: number) => Math.round(ms) / 1000;

/** The metadata line; `extra` adds a child's `run_id` and `depth`, or a reduced line's `note`. */
export function toMetadataLine(metadata: TrajectoryMetadata, now: Date, extra: Pick<MetadataLine, 'run_id' | 'depth' | 'note'> = {}): MetadataLine {
  return {
    type: 'metadata',
    timestamp: now.toISOString(),
    root_model: metadata.rootModel,
    max_depth: metadata.maxDepth,
    max_iterations: metadata.maxIterations,
    backend: metadata.backend,
    backend_kwargs: redactedRecord(metadata.backendKwargs),
    environment_type: 'docker',
    environment_kwargs: redactedRecord(metadata.environmentKwargs),
    other_backends: metadata.otherBackends ? metadata.otherBackends.map((name) => String(redact(name, new WeakSet()))) : null,
    ...extra,
  };
}

/**
 * One turn as an iteration line. `metadata` is the run's, from which a child RLM's nested metadata
 * line is made (its own root model, run id and depth).
 */
export function toIterationLine(turn: TurnRecord, metadata: TrajectoryMetadata, now: Date): IterationLine {
  const prompt = turn.prompt.map(({ role, content }) => ({ role: role as string, content: text(content) }));
  return {
    type: 'iteration',
    iteration: turn.turn,
    timestamp: now.toISOString(),
    prompt: turn.system === '' ? prompt : [{ role: 'system', content: text(turn.system) }, ...prompt],
    response: text(turn.response),
    code_blocks: turn.blocks.map((block) => ({ code: text(block.code), result: toResultLine(block, metadata, now) })),
    final_answer: turn.finalAnswer === null ? null : text(turn.finalAnswer),
    iteration_time: seconds(turn.durationMs),
    // Not in the reference's lines (it keeps no root usage); its reader ignores the extra field.
    usage_summary: {
      model_usage_summaries: {
        [turn.model]: { total_calls: 1, total_input_tokens: turn.usage.inputTokens, total_output_tokens: turn.usage.outputTokens },
      },
    },
  };
}

/** A child run as the lines of a trajectory of its own: metadata, then its iterations. */
export function toChildTrajectory(child: ChildRunRecord, metadata: TrajectoryMetadata, now: Date): TrajectoryLine[] {
  const childMetadata: TrajectoryMetadata = { ...metadata, rootModel: child.rootModel };
  return [
    toMetadataLine(childMetadata, now, { run_id: child.runId, depth: child.depth }),
    ...child.turns.map((turn) => toIterationLine(turn, childMetadata, now)),
  ];
}

/**
 * A reduced iteration line, for a turn whose full line could not be written: no prompt, sub-calls
 * or child runs, each text clipped to {@link REDUCED_TEXT_LIMIT_CHARS}; `note` says why.
 */
export function toReducedIterationLine(turn: TurnRecord, now: Date, note: string): IterationLine {
  const short = (value: string) => clipForRecord(value, REDUCED_TEXT_LIMIT_CHARS, 1024);
  return {
    type: 'iteration',
    iteration: turn.turn,
    timestamp: now.toISOString(),
    prompt: [],
    response: short(turn.response),
    code_blocks: turn.blocks.map((block) => ({
      code: short(block.code),
      result: {
        stdout: short(block.result.stdout.text),
        stderr: short(stderrOf(block.result)),
        locals: {},
        execution_time: seconds(block.result.durationMs),
        rlm_calls: [],
        status: block.result.status,
        ...(block.result.stateLost ? { state_lost: true } : {}),
      },
    })),
    final_answer: turn.finalAnswer === null ? null : text(turn.finalAnswer),
    iteration_time: seconds(turn.durationMs),
    note: short(note),
  };
}

function stderrOf(result: ExecuteResult): string {
  const parts = [result.stderr.text.replace(/\n+$/, '')];
  if (result.error) parts.push([`${result.error.type}: ${result.error.message}`, ...result.error.stack.map((f) => `    ${f}`)].join('\n'));
  return parts.filter((part) => part !== '').join('\n');
}

function toResultLine(block: BlockRecord, metadata: TrajectoryMetadata, now: Date): ReplResultLine {
  const result: ExecuteResult = block.result;
  // No prototype: a variable a cell named `__proto__` is listed like any other.
  const locals: Record<string, string> = Object.create(null);
  for (const variable of result.variables.slice(0, MAX_LISTED_VARIABLES)) locals[variable.name] = `<${text(variable.type)}>`;
  return {
    stdout: text(result.stdout.text),
    stderr: text(stderrOf(result)),
    locals,
    execution_time: seconds(result.durationMs),
    rlm_calls: block.subcalls.map((call) => toCallLine(call, metadata, now)),
    status: result.status,
    ...(result.value === undefined ? {} : { value: text(result.value) }),
    ...(result.stateLost ? { state_lost: true } : {}),
    ...(block.subcallsNotRecorded ? { rlm_calls_not_recorded: block.subcallsNotRecorded } : {}),
    ...(block.subcallsNotStarted ? { rlm_calls_not_started: block.subcallsNotStarted } : {}),
  };
}

function toCallLine(call: SubcallRecord, metadata: TrajectoryMetadata, now: Date): RlmCallLine {
  // A child's usage is its whole run's, per model; a plain call's is its own.
  const usage = call.child
    ? Object.entries(call.child.usage).map(([model, u]) => [model, u.calls, u.inputTokens, u.outputTokens] as const)
    : [[call.model, 1, call.usage.inputTokens, call.usage.outputTokens] as const];
  const summaries: Record<string, ModelUsageSummaryLine> = Object.create(null);
  let inputTokens = 0;
  let outputTokens = 0;
  for (const [model, calls, input, output] of usage) {
    const previous = summaries[model];
    summaries[model] = {
      total_calls: (previous?.total_calls ?? 0) + calls,
      total_input_tokens: (previous?.total_input_tokens ?? 0) + input,
      total_output_tokens: (previous?.total_output_tokens ?? 0) + output,
    };
    inputTokens += input;
    outputTokens += output;
  }
  return {
    root_model: call.model,
    prompt: text(call.prompt),
    response: text(call.response ?? ''),
    usage_summary: { model_usage_summaries: summaries },
    execution_time: seconds(call.durationMs),
    prompt_tokens: inputTokens,
    completion_tokens: outputTokens,
    ...(call.error === null ? {} : { error: text(call.error) }),
    kind: call.kind,
    prompt_chars: call.promptChars,
    ...(call.note === undefined ? {} : { note: text(call.note) }),
    ...(call.cancelled ? { cancelled: true } : {}),
    ...(call.child ? { trajectory: toChildTrajectory(call.child, metadata, now) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Redaction

const REDACTED = '[redacted]';
/** Key names (lower case, without `-`, `_` and blanks) that hold secrets. */
const SECRET_KEY = /(?:key|token|secret|password|passwd|passphrase|credentials?|authorization|cookie|signature)$|^(?:auth|bearer)$/;
/** Strings shaped like provider API keys or bearer headers. */
const SECRET_VALUE =
  /\b(?:sk-[A-Za-z0-9_-]{16,}|sk_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{30,}|xox[abp]-[A-Za-z0-9-]{10,}|gh[pousr]_[A-Za-z0-9]{20,}|Bearer\s+[A-Za-z0-9._~+/-]{16,}=*)/;

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key.toLowerCase().replace(/[-_\s]/g, ''));
}

function redactedRecord(record: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  const value = redact(record ?? {}, new WeakSet());
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** A JSON-safe copy of `value` with secrets redacted; functions, bigints and cycles become strings. */
function redact(value: unknown, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return SECRET_VALUE.test(value) ? REDACTED : value;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function') return `<function ${value.name || 'anonymous'}>`;
  if (typeof value !== 'object') return undefined;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof URL) return redact(value.href, seen);
  if (Array.isArray(value)) return value.map((item) => redact(item, seen) ?? null);
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (isSecretKey(key)) {
      if (item !== undefined && item !== null) copy[key] = REDACTED;
      continue;
    }
    const redacted = redact(item, seen);
    if (redacted !== undefined) copy[key] = redacted;
  }
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The writer

export interface TrajectoryWriterOptions {
  /** Directory of the log files; created (mode 0700) if missing. */
  logDir: string;
  /** The run's configuration: the first line of the file. */
  metadata: TrajectoryMetadata;
  /** Start of the file name, `rlm` by default: `<prefix>_<YYYY-MM-DD_HH-MM-SS>_<8 hex>.jsonl` (UTC). */
  fileNamePrefix?: string;
  now?: () => Date;
  /**
   * Called with a message for every line written in a reduced form or not at all (besides the
   * warning through `warn`), e.g. to emit it as a run event.
   */
  onWriteError?: (message: string) => void;
}

/** Characters gathered before they are handed to the file: a line of any size is written in pieces this large. */
const WRITE_PIECE_CHARS = 256 * 1024;

/**
 * Appends a run's trajectory to a JSONL file as it happens: the metadata line on the first write,
 * then one line per {@link writeTurn}, in call order (writes are serialized), so a crash leaves
 * every line written so far. The file is created with mode 0600: it holds the prompts, and so
 * pieces of the context.
 *
 * A line is streamed to the file in pieces, never built as one string. Writing never fails the
 * run, and never loses a line silently: a line that cannot be written whole (it cannot be
 * serialised, or the write fails) is removed from the file again and written in a reduced form
 * with a `note` saying why (see {@link toReducedIterationLine}); each such line, and each line
 * that could not be written at all, is reported through `warn` and `onWriteError`.
 */
export class TrajectoryWriter {
  /** The file's absolute path (it exists once the first line is written). */
  readonly path: string;
  readonly #metadata: TrajectoryMetadata;
  readonly #now: () => Date;
  readonly #onWriteError: ((message: string) => void) | undefined;
  #queue: Promise<void> = Promise.resolve();
  #metadataWritten = false;
  #closed = false;

  constructor(options: TrajectoryWriterOptions) {
    this.#metadata = options.metadata;
    this.#now = options.now ?? (() => new Date());
    this.#onWriteError = options.onWriteError;
    const stamp = this.#now().toISOString().slice(0, 19).replace('T', '_').replace(/:/g, '-');
    const id = randomBytes(4).toString('hex');
    this.path = path.resolve(options.logDir, `${options.fileNamePrefix ?? 'rlm'}_${stamp}_${id}.jsonl`);
  }

  /** Appends the metadata line now, rather than with the first turn (e.g. so a run that fails early leaves a file). */
  writeMetadata(): void {
    if (this.#metadataWritten) return;
    this.#metadataWritten = true;
    const now = this.#now();
    this.#append(
      'the metadata line',
      () => toMetadataLine(this.#metadata, now),
      (note) => ({ ...toMetadataLine({ ...this.#metadata, backendKwargs: {}, environmentKwargs: {}, otherBackends: null }, now), note }),
    );
  }

  /** Appends one turn of the root run as an `iteration` line, its child runs nested in it. */
  writeTurn(turn: TurnRecord): void {
    this.writeMetadata();
    const now = this.#now();
    this.#append(
      `turn ${turn.turn}`,
      () => toIterationLine(turn, this.#metadata, now),
      (note) => toReducedIterationLine(turn, now, note),
    );
  }

  /** Resolves once every line given so far is written (or has failed and been reported). Never rejects. */
  flush(): Promise<void> {
    return this.#queue;
  }

  /** Flushes; lines given after it are reported as lost. Safe to call twice. Never rejects. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }

  /**
   * Queues a line. It is converted now — the records may change after this call returns; the
   * line's strings are shared with them, not copied — and serialised while it is written.
   */
  #append(label: string, full: () => TrajectoryLine, reduced: (note: string) => TrajectoryLine): void {
    if (this.#closed) {
      this.#report(`${label} could not be written to the trajectory ${this.path}: the writer is closed`);
      return;
    }
    let line: TrajectoryLine | undefined;
    let failure: unknown;
    try {
      line = full();
    } catch (error) {
      failure = error;
    }
    this.#queue = this.#queue.then(() => this.#write(label, line, failure, reduced));
  }

  async #write(label: string, line: TrajectoryLine | undefined, conversionFailure: unknown, reduced: (note: string) => TrajectoryLine): Promise<void> {
    let failure = conversionFailure;
    if (line !== undefined && failure === undefined) {
      try {
        await this.#stream(line);
        return;
      } catch (error) {
        failure = error;
      }
    }
    const why = errorMessage(failure);
    try {
      await this.#stream(reduced(`the full line could not be written (${why}); this reduced form leaves out the prompt, sub-calls and child runs`));
      this.#report(`${label} of the trajectory ${this.path} was written in a reduced form: ${why}`);
    } catch (error) {
      const again = errorMessage(error);
      this.#report(`${label} could not be written to the trajectory ${this.path}: ${why}${again === why ? '' : `; then ${again}`}`);
    }
  }

  /**
   * Appends `line` and a newline, in pieces. On failure the file is cut back to where the line
   * began, so no partial line is left for the next one to run into.
   */
  async #stream(line: TrajectoryLine): Promise<void> {
    await mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 });
    const handle = await open(this.path, 'a', 0o600);
    let start: number | undefined;
    try {
      start = (await handle.stat()).size;
      let pieces: string[] = [];
      let size = 0;
      for (const chunk of jsonChunks(line)) {
        pieces.push(chunk);
        size += chunk.length;
        if (size >= WRITE_PIECE_CHARS) {
          await handle.writeFile(pieces.join(''), 'utf8');
          pieces = [];
          size = 0;
        }
      }
      pieces.push('\n');
      await handle.writeFile(pieces.join(''), 'utf8');
    } catch (error) {
      if (start !== undefined) {
        try {
          await handle.truncate(start);
        } catch (truncateError) {
          throw new Error(`${errorMessage(error)}; the file may end in a partial line (cutting it failed: ${errorMessage(truncateError)})`, { cause: error });
        }
      }
      throw error;
    } finally {
      await handle.close().catch(() => {});
    }
  }

  #report(message: string): void {
    warn(`${message}; the run goes on`);
    try {
      this.#onWriteError?.(message);
    } catch {
      // A listener's failure must not turn a reported write failure into a lost one.
    }
  }
}
