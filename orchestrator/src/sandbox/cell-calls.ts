/**
 * The host's side of "a cell's calls end with the cell". Every sub-call and tool call a sandbox
 * makes is served under the cell that is running when it arrives; when that cell ends — it
 * finished, timed out, crashed, or its caller aborted — every call it started is aborted on the
 * host (model requests included: their HTTP connections close) and the cell's result is handed
 * back only once they have settled, so what they leave on record belongs to that cell and no late
 * answer reaches the next one. The sandbox's own cancel frames do the same from the inside; this
 * does not depend on them: the container is not trusted to send them.
 */
import type { SubcallParams, SubcallResult, ToolCallResult } from '@rlm/shared';
import { AbortedError } from '../errors.js';

/** A call that arrived while no cell ran: the REPL makes none then, so only a hostile one would. */
export const NO_CELL_RUNNING = 'refused: no cell is running; sub-calls and tool calls are served only while the cell that makes them runs';

/** The answer to a sub-call that arrived while no cell ran: every prompt refused. */
export const refusedSubcall = (params: SubcallParams): SubcallResult => ({ outcomes: params.prompts.map(() => ({ ok: false, error: NO_CELL_RUNNING })) });

/** The answer to a tool call that arrived while no cell ran. */
export const refusedToolCall = (): ToolCallResult => ({ ok: false, error: NO_CELL_RUNNING });

/** Serves `call` as one of `cell`'s calls (see {@link CellCalls.serve}), or answers `refused()` when no cell runs. */
export function serveInCell<T>(cell: CellCalls | undefined, callSignal: AbortSignal, call: (signal: AbortSignal) => Promise<T>, refused: () => T): Promise<T> {
  return cell ? cell.serve(callSignal, call, refused) : Promise.resolve(refused());
}

export class CellCalls {
  readonly #controller = new AbortController();
  readonly #running = new Set<Promise<unknown>>();
  #ended = false;

  /** Fires when the cell ends; its reason says why. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Calls still running. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Runs `call` as one of this cell's, with a signal that fires on `callSignal` (the channel's: the
   * sandbox cancelled it or the connection closed) or when the cell ends. After {@link end} it is
   * not started: `refused()` answers instead.
   */
  serve<T>(callSignal: AbortSignal, call: (signal: AbortSignal) => Promise<T>, refused: () => T): Promise<T> {
    if (this.#ended) return Promise.resolve(refused());
    const running = call(AbortSignal.any([callSignal, this.#controller.signal]));
    this.#running.add(running);
    const forget = () => this.#running.delete(running);
    running.then(forget, forget);
    return running;
  }

  /**
   * Ends the cell: aborts every call it started with `reason` and waits until they have settled, at
   * most `graceMs` (a handler that ignores its signal is left running detached). Resolves with the
   * number still running then. Idempotent.
   */
  async end(reason: string, graceMs: number): Promise<number> {
    if (!this.#ended) {
      this.#ended = true;
      this.#controller.abort(new AbortedError(reason));
    }
    if (this.#running.size === 0) return 0;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    try {
      await Promise.race([Promise.allSettled([...this.#running]), gaveUp]);
    } finally {
      clearTimeout(timer);
    }
    return this.#running.size;
  }
}
