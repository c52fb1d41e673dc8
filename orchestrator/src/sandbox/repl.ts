/**
 * What the RLM engine needs of a REPL: run a cell, load a context, define tools, answer the cells'
 * sub-calls, close. {@link Sandbox} (a hardened container) implements it, and it is the only
 * implementation the package ships: the engine's tests use an in-process one that is no security
 * boundary and is not part of the package (`src/testing/`, left out of `dist/`).
 */
import type { ExecuteResult, Language, LoadContextResult, SubcallParams, SubcallResult } from '@rlm/shared';
import type { ContextValue } from './context-files.js';
import type { SandboxTool } from './tools.js';

/** Answers a cell's `llm_query`/`rlm_query` family call: one outcome per prompt, in order. */
export type SubcallHandler = (request: SubcallParams, options: { signal: AbortSignal }) => Promise<SubcallResult>;

/** Per-cell options of {@link Sandbox.execute}: language, timeout, output cap, signal. */
export interface ExecuteOptions {
  /** The REPL's language, which is the default; another one is refused with `InvalidOptionError`. */
  language?: Language;
  /** This cell's wall-clock limit in milliseconds; default the REPL's `cellTimeoutMs`. */
  timeoutMs?: number;
  /** This cell's per-stream output cap in characters. */
  outputLimitChars?: number;
  /** Aborting closes the REPL (the running cell cannot be detached from it) and rejects with `AbortedError`. */
  signal?: AbortSignal;
}

/** A REPL of one language whose state persists across cells until it is closed. */
export interface Repl extends AsyncDisposable {
  /** The language of this REPL's cells. */
  readonly language: Language;
  /** True once `close()` was called (or an aborted call closed it). */
  readonly isClosed: boolean;
  /**
   * Runs one cell. The cell's own failure (exception, timeout, memory exhausted, a crash) is in the
   * result, not thrown.
   * @throws {SandboxClosedError} the REPL was closed. @throws {AbortedError} the signal fired; the REPL is closed.
   */
  execute(code: string, options?: ExecuteOptions): Promise<ExecuteResult>;
  /** Binds `variable` (default `context`) to `value`; it is loaded again into a replacement after a crash. */
  loadContext(value: ContextValue, options?: { variable?: string; signal?: AbortSignal }): Promise<LoadContextResult>;
  /** Makes `tools` the whole set of host functions the cells can call by name. Resolves with the names defined. */
  defineTools(tools: Record<string, SandboxTool>, options?: { signal?: AbortSignal }): Promise<string[]>;
  /** Replaces the handler of the cells' sub-calls; takes effect for the next call a cell makes. */
  setSubcallHandler(handler: SubcallHandler | undefined): void;
  /** Releases everything the REPL holds. Safe to call twice and concurrently; never throws. */
  close(): Promise<void>;
}

/** What the engine asks for when a run (or a session, or a child run) needs a REPL. */
export interface ReplRequest {
  language: Language;
  /** Loaded as `context` before the REPL is handed over. */
  context?: ContextValue;
  /** Default wall-clock limit of a cell, in milliseconds. */
  cellTimeoutMs: number;
  onSubcall?: SubcallHandler;
  /** Defined before the REPL is handed over. */
  tools?: Record<string, SandboxTool>;
  signal?: AbortSignal;
}

/** Makes a ready REPL for a request; the caller owns it and closes it. */
export type ReplFactory = (request: ReplRequest) => Promise<Repl>;
