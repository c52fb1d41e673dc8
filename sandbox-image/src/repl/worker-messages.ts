/**
 * Messages between the main thread (`JavaScriptRepl`) and the cell worker. All plain
 * structured-clone objects. Control messages travel over the worker's `parentPort`; sub-calls over
 * their own `MessagePort`, which the worker reads synchronously with `receiveMessageOnPort`.
 */
import type { MessagePort } from 'node:worker_threads';
import type {
  CapturedOutput,
  CellError,
  ExecuteParams,
  FinalAnswer,
  LoadContextParams,
  SubcallOutcome,
  SubcallParams,
  VariableInfo,
} from '@rlm/shared';

export interface WorkerInit {
  readonly contextDir: string;
  /** The worker's end of the sub-call channel. */
  readonly subcallPort: MessagePort;
  /** Int32Array[1] over a SharedArrayBuffer: bumped by the main thread after each sub-call answer it posts. */
  readonly subcallSignal: SharedArrayBuffer;
}

export type ToWorker =
  | { readonly type: 'execute'; readonly id: number; readonly cellNumber: number; readonly params: ExecuteParams }
  | { readonly type: 'load-context'; readonly id: number; readonly params: LoadContextParams };

/** A cell's outcome as the worker sees it; the main thread adds `stateLost` and `durationMs`. */
export interface CellReport {
  readonly status: 'ok' | 'error' | 'timeout';
  readonly stdout: CapturedOutput;
  readonly stderr: CapturedOutput;
  readonly value?: string;
  readonly error: CellError | null;
  readonly final: FinalAnswer | null;
  readonly variables: VariableInfo[];
}

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'executed'; readonly id: number; readonly report: CellReport }
  | { readonly type: 'context-loaded'; readonly id: number; readonly bytes: number; readonly valueType: string }
  | { readonly type: 'context-failed'; readonly id: number; readonly message: string };

export interface SubcallRequest {
  readonly id: number;
  readonly params: SubcallParams;
}

export type SubcallReply =
  | { readonly id: number; readonly outcomes: SubcallOutcome[] }
  | { readonly id: number; readonly error: string };
