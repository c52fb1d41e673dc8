/**
 * The interrupt buffer of a Python cell worker: an Int32Array of two slots over a
 * SharedArrayBuffer. Slot 0 is Pyodide's interrupt buffer (the main thread writes SIGINT into it at
 * a cell's deadline; Pyodide raises KeyboardInterrupt at the next bytecode boundary and clears it);
 * slot 1 holds the number of the cell the main thread interrupted, so the worker can tell a
 * timeout from a KeyboardInterrupt the cell raised itself.
 */
export const INTERRUPT_SIGNAL_SLOT = 0;
export const INTERRUPTED_CELL_SLOT = 1;
export const INTERRUPT_BUFFER_BYTES = 8;
const SIGINT = 2;

/** Main thread: asks the worker's interpreter to stop cell `cellNumber`. */
export function interruptCell(interrupt: Int32Array, cellNumber: number): void {
  Atomics.store(interrupt, INTERRUPTED_CELL_SLOT, cellNumber);
  Atomics.store(interrupt, INTERRUPT_SIGNAL_SLOT, SIGINT);
  // Wakes a cell sleeping in time.sleep (see sleepUntilInterrupted).
  Atomics.notify(interrupt, INTERRUPT_SIGNAL_SLOT);
}

/** Worker: blocks for `ms` milliseconds, or until the main thread interrupts the cell. */
export function sleepUntilInterrupted(interrupt: Int32Array, ms: number): void {
  const until = performance.now() + ms;
  for (;;) {
    const left = until - performance.now();
    if (left <= 0 || Atomics.load(interrupt, INTERRUPT_SIGNAL_SLOT) !== 0) return;
    Atomics.wait(interrupt, INTERRUPT_SIGNAL_SLOT, 0, left);
  }
}

/** Worker: forgets any interrupt, before the interpreter runs anything for a new request. */
export function clearInterrupt(interrupt: Int32Array): void {
  Atomics.store(interrupt, INTERRUPT_SIGNAL_SLOT, 0);
  Atomics.store(interrupt, INTERRUPTED_CELL_SLOT, 0);
}
