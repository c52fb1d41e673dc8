/**
 * A run's REPL while it is being made. The root model's first call does not need it, so the
 * container starts while the model thinks, and a run that fails before its first cell (a refused
 * key, an unreachable provider) fails without waiting for a container. If making the REPL fails,
 * {@link PendingRepl.failed} fires with the error, so the model call in flight stops too: a user
 * without Docker pays for no call.
 */
import type { Repl } from '../sandbox/repl.js';

export class PendingRepl {
  readonly #made: Promise<Repl>;
  readonly #failure = new AbortController();
  /** Stops the making when the run ends before it needed the REPL. */
  readonly #unwanted = new AbortController();
  #repl: Repl | undefined;

  /** Starts `make` at once, with a signal that also fires when the REPL is closed before it is made. */
  constructor(make: (signal: AbortSignal) => Promise<Repl>, signal: AbortSignal) {
    this.#made = make(AbortSignal.any([signal, this.#unwanted.signal])).then(
      (repl) => {
        this.#repl = repl;
        return repl;
      },
      (error: unknown) => {
        this.#failure.abort(error);
        throw error;
      },
    );
    // Awaited by whoever needs the REPL; a failure nobody waits for is reported through `failed`.
    this.#made.catch(() => {});
  }

  /** Fires, with the error as its reason, if making the REPL failed. */
  get failed(): AbortSignal {
    return this.#failure.signal;
  }

  /** The REPL once made. @throws what making it threw. */
  get(): Promise<Repl> {
    return this.#made;
  }

  /** Closes the REPL, stopping its making if it is not made yet; never throws. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.#repl) this.#unwanted.abort(new Error('the run ended before it needed its REPL'));
    const repl = await this.#made.catch(() => undefined);
    await repl?.close();
  }
}
