/**
 * What a run remembers of itself, turn by turn: the material of its trajectory file and of the
 * nested trajectories of its child RLMs.
 */
import type { ExecuteResult } from '@rlm/shared';
import type { ChatMessage, TokenUsage } from '../models/model-backend.js';
import type { UsageByModel } from '../usage/usage-ledger.js';

/** One `llm_query`/`rlm_query` prompt a cell sent (a batched call makes one record per prompt). */
export interface SubcallRecord {
  kind: 'llm_query' | 'rlm_query';
  model: string;
  prompt: string;
  /** The answer; null when the call failed. */
  response: string | null;
  error: string | null;
  usage: TokenUsage;
  durationMs: number;
  /** For an `rlm_query` served by a child RLM: that run. */
  child?: ChildRunRecord;
}

export interface ChildRunRecord {
  runId: string;
  depth: number;
  rootModel: string;
  turns: TurnRecord[];
  answer: string | null;
  usage: UsageByModel;
}

export interface BlockRecord {
  code: string;
  result: ExecuteResult;
  subcalls: SubcallRecord[];
}

export interface TurnRecord {
  /** 1-based. */
  turn: number;
  /** The conversation sent to the root model for this turn (system prompt first). */
  prompt: ChatMessage[];
  system: string;
  response: string;
  blocks: BlockRecord[];
  finalAnswer: string | null;
  durationMs: number;
  /** The root model of the turn and what its call used (the turn's sub-calls are in `blocks`). */
  model: string;
  usage: TokenUsage;
}
