/**
 * What a run remembers of itself, turn by turn: the material of its trajectory file and of the
 * nested trajectories of its child RLMs.
 */
import type { ExecuteResult } from '@rlm/shared';
import type { ChatMessage, TokenUsage } from '../models/model-backend.js';
import type { UsageByModel } from '../usage/usage-ledger.js';

/**
 * One `llm_query`/`rlm_query` prompt a cell sent (a batched call makes one record per prompt).
 * Texts are kept as `recorded-text.ts` says: whole up to 64 Ki characters, else beginning and end
 * around a marker; a refused prompt by its first 200 characters only.
 */
export interface SubcallRecord {
  /** Which function the cell called (`llm_query_batched` and `rlm_query_batched` record as these, one record per prompt). */
  kind: 'llm_query' | 'rlm_query';
  /** The model that served the call. */
  model: string;
  /** The prompt as recorded (see above): possibly clipped, never larger than about 64 Ki characters. */
  prompt: string;
  /** The whole prompt's length in characters (UTF-16 code units), whatever `prompt` kept of it. */
  promptChars: number;
  /** The answer as recorded (clipped like `prompt`); null when the call failed. */
  response: string | null;
  /** Why the call failed, as the cell saw it; null when it succeeded. */
  error: string | null;
  /** Tokens of the model call that served it; for an `rlm_query` served by a child RLM, the child's usage summed over its models (per model in `child.usage`). */
  usage: TokenUsage;
  /** Wall-clock time of the call, in milliseconds. */
  durationMs: number;
  /**
   * Why the call was served otherwise than asked, e.g. an `rlm_query` answered as a plain
   * `llm_query` because the run's sandboxes were all taken (see `RlmLimits.maxSandboxes`).
   */
  note?: string;
  /** For an `rlm_query` served by a child RLM: that run. */
  child?: ChildRunRecord;
  /**
   * The call was cancelled while it ran — its cell ended, the run was cancelled or stopped by a
   * limit, or a fatal error ended it — and its provider request aborted. `error` says why; `usage`
   * holds what the provider had reported by then (usually nothing).
   */
  cancelled?: true;
}

/** A child RLM started by `rlm_query`: its run id, depth (the root is 0), root model, turns, answer (null when it gave none) and usage. */
export interface ChildRunRecord {
  /** The child run's id (12 random hex digits), which its events carry as `runId`. */
  runId: string;
  /** The child's depth: 1 for a child of the root. */
  depth: number;
  /** The model that ran the child's turns: the `model` its `rlm_query` named, or the run's root model when it named none. */
  rootModel: string;
  /** The child's turns, in order, recorded as the root's are. */
  turns: TurnRecord[];
  /** The child's answer; null when it gave none. */
  answer: string | null;
  /** The child's usage (its own children included), per model. */
  usage: UsageByModel;
}

/** One code block a turn ran: its code, the cell's result and the sub-calls it made. */
export interface BlockRecord {
  /** The block's code, as the model wrote it inside its fence. */
  code: string;
  /** What running it gave: status, stdout and stderr (clipped to the output limit), error, final answer, variables. */
  result: ExecuteResult;
  /** The cell's sub-calls, the first `MAX_RECORDED_SUBCALLS_PER_CELL` (1,000) of them. */
  subcalls: SubcallRecord[];
  /** Sub-calls the cell made past that number: counted, not recorded. Absent when none. */
  subcallsNotRecorded?: number;
  /** Prompts of the cell's batches never sent because the cell ended (or the run stopped) first. Absent when none. */
  subcallsNotStarted?: number;
}

/** One turn of a run: what the root model was sent and answered, the blocks it ran, and the final answer if this turn gave one. Durations are in milliseconds. */
export interface TurnRecord {
  /** 1-based. */
  turn: number;
  /** The conversation sent to the root model for this turn (system prompt first). */
  prompt: ChatMessage[];
  /** The system prompt of this turn. */
  system: string;
  /** The root model's answer, whole. */
  response: string;
  /** The code blocks of the response, in order, with what running each gave. */
  blocks: BlockRecord[];
  /** The answer this turn gave, if it ended the run. */
  finalAnswer: string | null;
  /** Wall-clock time of the turn (model call and cells), in milliseconds. */
  durationMs: number;
  /** The root model of the turn and what its call used (the turn's sub-calls are in `blocks`). */
  model: string;
  /** Tokens of the turn's root model call alone. */
  usage: TokenUsage;
}
