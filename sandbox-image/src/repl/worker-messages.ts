/**
 * Messages between the main thread (`JavaScriptRepl`) and the cell worker. All plain
 * structured-clone objects. Control messages travel over the worker's `parentPort`; host calls
 * (sub-calls and tool calls) over their own `MessagePort`, which the worker reads synchronously
 * with `receiveMessageOnPort`.
 */
import type { MessagePort } from 'node:worker_threads';
import type {
  CapturedOutput,
  CellError,
  ExecuteParams,
  FinalAnswer,
  LoadContextParams,
  SubcallParams,
  SubcallResult,
  ToolCallParams,
  ToolCallResult,
  ToolDefinition,
  VariableInfo,
} from '@rlm/shared';

export interface WorkerInit {
  readonly contextDir: string;
  /** The worker's end of the host-call channel (sub-calls and tool calls). */
  readonly hostCallPort: MessagePort;
  /** Int32Array[1] over a SharedArrayBuffer: bumped by the main thread after each host-call answer it posts. */
  readonly hostCallSignal: SharedArrayBuffer;
  /** Int32Array[2] the main thread writes into at a cell's deadline (Python workers; see python/interrupt.ts). */
  readonly interruptSignal: SharedArrayBuffer;
  /** Settings of a Python worker. */
  readonly python?: PythonWorkerSettings;
}

export interface PythonWorkerSettings {
  /** Directory of Pyodide's files. */
  readonly indexDir: string;
  /** A memory snapshot of a booted interpreter; absent or missing: Pyodide boots from scratch (seconds). */
  readonly snapshotFile?: string;
  /** Cap of the interpreter's memory in MiB. */
  readonly memoryLimitMb?: number;
}

export type ToWorker =
  | { readonly type: 'execute'; readonly id: number; readonly cellNumber: number; readonly params: ExecuteParams }
  | { readonly type: 'load-context'; readonly id: number; readonly params: LoadContextParams }
  | { readonly type: 'define-tools'; readonly id: number; readonly tools: readonly ToolDefinition[] };

/** A cell's outcome as the worker sees it; the main thread adds `stateLost` and `durationMs`. */
export interface CellReport {
  readonly status: 'ok' | 'error' | 'timeout';
  readonly stdout: CapturedOutput;
  readonly stderr: CapturedOutput;
  readonly value?: string;
  readonly error: CellError | null;
  readonly final: FinalAnswer | null;
  readonly variables: VariableInfo[];
  /**
   * The worker's runtime is broken (the Python interpreter suffered a fatal error): the main thread
   * replaces the worker and reports the state lost.
   */
  readonly restartWorker?: boolean;
}

export type FromWorker =
  | { readonly type: 'ready' }
  | { readonly type: 'executed'; readonly id: number; readonly report: CellReport }
  | { readonly type: 'context-loaded'; readonly id: number; readonly bytes: number; readonly valueType: string }
  /** `outOfMemory`: the context did not fit in the worker's memory (Python's MemoryError while reading it). */
  | { readonly type: 'context-failed'; readonly id: number; readonly message: string; readonly outOfMemory?: boolean }
  | { readonly type: 'tools-defined'; readonly id: number; readonly defined: string[] }
  | { readonly type: 'tools-failed'; readonly id: number; readonly message: string };

/** What the worker can ask the host for while a cell runs, and what each answers. */
export interface HostCalls {
  readonly subcall: { readonly params: SubcallParams; readonly result: SubcallResult };
  readonly tool: { readonly params: ToolCallParams; readonly result: ToolCallResult };
}
export type HostCallKind = keyof HostCalls;

export type HostCallRequest = {
  readonly [K in HostCallKind]: { readonly id: number; readonly kind: K; readonly params: HostCalls[K]['params'] };
}[HostCallKind];

/** `result` was validated by the main thread against the schema of the request's kind. */
export type HostCallReply = { readonly id: number; readonly result: unknown } | { readonly id: number; readonly error: string };
