/**
 * What the viewer's JSON API returns: a trajectory file normalized so the page has one shape to
 * draw, whichever writer produced it (ours, or the reference implementation's, old or new).
 * Times are in seconds, as in the files; token counts are integers; costs are US dollars.
 *
 * Shared by the server (trajectory-reader.ts) and the page's script (page/browser/), which is
 * bundled for the browser: nothing here may import anything.
 */

/** Usage of one model, summed over the calls that reported it. */
export interface ModelUsageView {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  /** `null` when the model has no known price and the file reported no cost. */
  costUsd: number | null;
}

export type UsageView = Record<string, ModelUsageView>;

/** A line of the file that could not be read (not JSON, or not a metadata/iteration line). */
export interface LineProblem {
  /** Where: `line 7`, or for a nested child `line 3 › block 1 › call 2 › child line 4`. */
  where: string;
  message: string;
}

export interface RunMetadataView {
  timestamp: string | null;
  rootModel: string | null;
  backend: string | null;
  maxDepth: number | null;
  maxIterations: number | null;
  environmentType: string | null;
  otherBackends: string[] | null;
  /** A child run's id and depth (our nested trajectories). */
  runId: string | null;
  depth: number | null;
  /** Every other field of the metadata line, as written (backend and environment settings…). */
  settings: Record<string, unknown>;
}

/** A reference `run_context` line: one completion of a session, with its root prompt (the query). */
export interface RunContextView {
  timestamp: string | null;
  /** The query the root model saw (`root_prompt`). */
  query: string | null;
  sessionMode: boolean | null;
  /** The start of the context the run was given, cut to a preview. */
  contextPreview: string | null;
  /** Number of the first turn of this completion, 1-based; turns after it belong to it. */
  firstTurn: number;
}

export interface MessageView {
  role: string;
  content: string;
}

export interface CallView {
  /** `llm_query` or `rlm_query` when the file says so (ours does; the reference's does not). */
  kind: string | null;
  model: string;
  prompt: string;
  response: string;
  /** The call failed: the error text. */
  error: string | null;
  /** Usage of this call; for a child RLM, of the child's whole run. */
  usage: UsageView;
  executionTime: number | null;
  /** The child RLM this call started, with its own turns (recursively). */
  child: RunView | null;
}

export type CellStatus = 'ok' | 'error' | 'timeout';

export interface BlockView {
  code: string;
  stdout: string;
  stderr: string;
  /** As the file says; `null` in files that do not record it (the reference's). */
  status: CellStatus | null;
  /** The cell's last expression, as text. */
  value: string | null;
  /** The REPL restarted during this cell and lost its variables. */
  stateLost: boolean;
  executionTime: number | null;
  /** Variable name → its type or value, as the file wrote it. */
  locals: Record<string, string>;
  calls: CallView[];
}

/** A cell that failed: by its status, or — in files without one — by writing to stderr. */
export function isFailedCell(block: BlockView): boolean {
  return block.status === 'error' || block.status === 'timeout' || (block.status === null && block.stderr.trim() !== '');
}

export interface TurnView {
  iteration: number;
  timestamp: string | null;
  /** The conversation sent to the root model for this turn. */
  prompt: MessageView[];
  response: string;
  blocks: BlockView[];
  finalAnswer: string | null;
  iterationTime: number | null;
}

/** A run: a whole file, or a child run nested in a call. */
export interface RunView {
  metadata: RunMetadataView | null;
  contexts: RunContextView[];
  /** The query, from a `run_context` line or the first turn's prompt; `null` when unknown. */
  query: string | null;
  turns: TurnView[];
  /** The last final answer of the run's turns. */
  finalAnswer: string | null;
  /**
   * Usage per model as the file records it: the sub-calls' (a child RLM's call counts its whole
   * run), plus the root model's own where iteration lines carry a `usage_summary`. Neither our
   * writer nor the reference's records the root model's tokens today: then {@link rootUsageRecorded}
   * is false and the root model's calls (one per turn) are not in here. A child run's usage is the
   * one its parent's call recorded.
   */
  usage: UsageView;
  rootUsageRecorded: boolean;
  /** Sum of the models' costs; `null` when any model's cost is unknown. */
  costUsd: number | null;
  problems: LineProblem[];
  /** Number of failed cells, cell timeouts and failed sub-calls, children included. */
  errorCount: number;
}

/** One file of the run list. */
export interface RunSummary {
  /** Path relative to the viewer's directory, with `/` separators. */
  file: string;
  sizeBytes: number;
  /** Last modification, ISO 8601. */
  modified: string;
  /** The metadata line's timestamp, when there is one. */
  started: string | null;
  rootModel: string | null;
  query: string | null;
  iterations: number;
  finalAnswer: string | null;
  costUsd: number | null;
  totalTokens: number;
  errorCount: number;
  problemCount: number;
  /** The file could not be read at all (too large, unreadable): why. */
  error: string | null;
}

export interface RunListResponse {
  /** The directory shown, as given on the command line. */
  directory: string;
  runs: RunSummary[];
  /** The run to open first (`rlm view file.jsonl`). */
  initial: string | null;
}

export interface RunResponse {
  file: string;
  run: RunView;
}
