/**
 * How an RLM is configured: which models play which role, the REPL language, limits, sandbox
 * options, tools, prices and where trajectories go.
 */
import type { Language } from '@rlm/shared';
import type { ModelBackend } from '../models/model-backend.js';
import type { SandboxOptions } from '../sandbox/sandbox.js';
import type { SandboxPool } from '../sandbox/pool/sandbox-pool.js';
import type { JsonValue } from '../sandbox/context-files.js';
import type { PriceOverrides } from '../usage/pricing.js';
import type { RlmLimits } from './run-budget.js';
import type { RunEvent } from './run-events.js';

/** A model and the backend that serves it. */
export interface ModelRole {
  /** The backend that serves this model's calls (one backend may serve several roles). */
  backend: ModelBackend;
  /** The provider's model id. */
  model: string;
  /** Tokens the model accepts; default from the table of known models (128 000 when unknown). */
  contextWindowTokens?: number;
  /** Cap on tokens generated per call; the backend's default when absent. */
  maxOutputTokens?: number;
}

/** A host-side function callable from cells by name; arguments and result cross as JSON. */
export interface FunctionTool {
  /** What the tool does and how to call it, shown to the model in the system prompt (at most 8,192 characters). */
  description?: string;
  /**
   * Runs on the host for each call a cell makes, with the call's arguments as JSON values; returns
   * (or resolves to) the JSON value the call returns in the cell. A throw, a rejection or a value
   * that is not JSON becomes a `ToolError` in the cell carrying the message (keep secrets out of it).
   * `signal` fires when the calling cell ends or the sandbox closes: stop work then.
   */
  handler: (args: JsonValue[], options: { signal: AbortSignal }) => Promise<JsonValue> | JsonValue;
}

/** Plain data the cells see as a variable of that name. */
export interface DataTool {
  /** What the data is, shown to the model in the system prompt (at most 8,192 characters). */
  description?: string;
  /** The value, loaded into every sandbox of the run (children's too) as a variable named after the tool, like the context. */
  value: JsonValue;
}

/** A host tool the cells may use by name: a function ({@link FunctionTool}) or data ({@link DataTool}). */
export type RlmTool = FunctionTool | DataTool;

/** How an {@link RLM} is configured: the models, the REPL language, limits, sandbox settings, tools, prices and trajectory output. Checked by the `RLM` constructor, which throws {@link InvalidOptionError} naming the bad option. */
export interface RlmOptions {
  /** The model that drives the loop. */
  root: ModelRole;
  /** The model behind `llm_query` (and the children's sub-calls); defaults to `root`. */
  sub?: ModelRole;
  /** More models cells may name: `llm_query(p, { model: 'name' })`. Keys are the names cells use. */
  models?: Readonly<Record<string, ModelRole>>;
  /** The REPL language; default `javascript`. */
  language?: Language;
  /** Unset fields take {@link DEFAULT_LIMITS}. */
  limits?: Partial<RlmLimits>;
  /** Container settings for every sandbox of the run; not with `pool`, whose own settings apply. */
  sandbox?: Omit<SandboxOptions, 'context' | 'onSubcall' | 'signal' | 'cellTimeoutMs' | 'tools' | 'language'>;
  /**
   * Take every sandbox — runs', sessions' and their child RLMs' — from this pool (see
   * `createSandboxPool`): warm ones when there are, and never more at once than the pool's
   * `maxSandboxes` across everything that shares it. A run waits for room as long as its signal and
   * `limits.timeoutMs` allow; a child RLM that cannot get a sandbox (every one held by runs waiting
   * for children, or none freed within half the time its run had left) is answered as a plain
   * `llm_query` with a note, as with `limits.maxSandboxes`, which still caps each tree. The pool's
   * options (image, limits, runtime…) configure the sandboxes, so `sandbox` must be unset. The RLM
   * does not close the pool. Without a pool, each run starts its own sandboxes.
   */
  pool?: SandboxPool;
  /** Host functions and data the cells can use by name; their descriptions go into the system prompt. */
  tools?: Readonly<Record<string, RlmTool>>;
  /** Prices per million tokens that override or extend the built-in table. */
  prices?: PriceOverrides;
  /** Directory for JSONL trajectories; none are written without it. */
  logDir?: string;
  /** Called with every event of every run in the tree. */
  onEvent?: (event: RunEvent) => void;
  /** Summarise the root conversation when it reaches this share of the root model's window (default 0.8); `false` turns it off. */
  compaction?: { thresholdRatio?: number } | false;
  /** Characters of each block's output shown to the model (default 20 000). */
  outputLimitChars?: number;
  /**
   * `false` runs without sub-calls (the RLM paper's "no sub-calls" ablation): in the REPL,
   * `llm_query`, `llm_query_batched`, `rlm_query` and `rlm_query_batched` answer every prompt with an
   * error saying sub-calls are off (no model is called), and the system prompt does not mention
   * them or sub-models. Default true.
   */
  subcalls?: boolean;
}

export function isFunctionTool(tool: RlmTool): tool is FunctionTool {
  return 'handler' in tool && typeof tool.handler === 'function';
}
