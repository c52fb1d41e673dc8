/**
 * What a run reports as it goes. Every event carries the run's id and depth, so a listener can
 * follow child RLMs (depth ≥ 1) inside their parent's stream.
 */
import type { ExecuteResult, Language } from '@rlm/shared';
import type { UsageByModel } from '../usage/usage-ledger.js';

/** Tokens and cost of one model call; `costUsd` is null when the model's price is unknown. */
export interface CallUsage {
  /** Input tokens of the call, as the provider reported them (cache reads and writes included). */
  inputTokens: number;
  /** Output tokens of the call. */
  outputTokens: number;
  /** The call's cost in USD; null when the model's price is unknown. */
  costUsd: number | null;
}

interface EventBase {
  /** Unique per run (a child RLM has its own). */
  runId: string;
  /** The run's parent, for a child RLM. */
  parentRunId?: string;
  /** 0 for the root. */
  depth: number;
  /** Milliseconds since the Unix epoch. */
  time: number;
}

/** What happens during a run, as it happens: turns, model calls, code blocks, sub-calls, child runs, warnings. Every event carries the run's id and depth and a timestamp; `type` tells them apart. */
export type RunEvent =
  | (EventBase & { type: 'run_start'; query: string; rootModel: string; contextDescription: string })
  | (EventBase & { type: 'turn_start'; turn: number })
  /** A root model call: every turn's, and the last call made when the iterations run out. */
  | (EventBase & {
      type: 'model_response';
      turn: number;
      model: string;
      text: string;
      inputTokens: number;
      outputTokens: number;
      costUsd: number | null;
      durationMs: number;
    })
  | (EventBase & { type: 'cell_start'; turn: number; block: number; code: string })
  | (EventBase & { type: 'cell_end'; turn: number; block: number; result: ExecuteResult })
  | (EventBase & { type: 'subcall_start'; callId: string; kind: 'llm_query' | 'rlm_query'; model: string; promptChars: number })
  /** `usage` is the call's own model call; a child RLM's calls arrive as that child's events. */
  | (EventBase & {
      type: 'subcall_end';
      callId: string;
      kind: 'llm_query' | 'rlm_query';
      model: string;
      ok: boolean;
      durationMs: number;
      error?: string;
      /** The call was cancelled while it ran (its cell ended, the run stopped); `error` says why. */
      cancelled?: true;
      usage?: CallUsage;
    })
  /**
   * The run did something otherwise than configured or asked, and goes on: `sandbox_cap`, an
   * `rlm_query` answered as a plain `llm_query` because the tree's sandboxes were all taken
   * (`maxSandboxes`, or the sandbox pool's); `trajectory_write`, a trajectory line written in a
   * reduced form or not at all.
   */
  | (EventBase & { type: 'warning'; code: RunWarningCode; message: string })
  /**
   * Only for an RLM with a sandbox `pool`: the run got its sandbox. `waitedMs` is the time it
   * waited for room in the pool (0 when there was room at once); `warm` says a ready sandbox was
   * handed over rather than started for it; `readyMs` is the time from asking to a sandbox ready
   * for the run's context (the wait, the start or health check included). Milliseconds.
   */
  | (EventBase & { type: 'sandbox_acquired'; language: Language; waitedMs: number; warm: boolean; readyMs: number })
  | (EventBase & { type: 'compaction'; turn: number; messagesBefore: number; summaryChars: number; usage: CallUsage })
  /**
   * Only from an event iterator (`RLM.run().events`) that fell `bufferLimit` events behind: it
   * dropped `count` events (sub-call events first) since the events it yielded before this one.
   * Carries the root run's id and depth; `time` is when it was yielded. Never passed to `onEvent`.
   */
  | (EventBase & { type: 'events_dropped'; count: number })
  | (EventBase & { type: 'final'; answer: string; via: 'FINAL' | 'FINAL_VAR' | 'text' | 'last_call' })
  | (EventBase & {
      type: 'run_end';
      success: boolean;
      error: string | null;
      iterations: number;
      usage: UsageByModel;
      costUsd: number | null;
      durationMs: number;
    });

/** The `type` of a {@link RunEvent}. */
export type RunEventType = RunEvent['type'];

/** Why a `warning` event was sent: `sandbox_cap` (an `rlm_query` answered as a plain `llm_query` because the run's sandboxes were all taken) or `trajectory_write` (the trajectory file could not be written). */
export type RunWarningCode = 'sandbox_cap' | 'trajectory_write';

/** An event as a run emits it; the run adds its id, parent, depth and the time. */
export type RunEventInput = RunEvent extends infer E ? (E extends RunEvent ? Omit<E, keyof EventBase> : never) : never;
