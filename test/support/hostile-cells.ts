/**
 * Pieces of attack code the hostile suite's cells share.
 */

/**
 * Evaluated in the main thread of the cell's process through the inspector: freezes that thread
 * a moment later, once the evaluation has answered. Where cells run in a worker of the REPL server
 * that thread is the server's, and the host hears nothing more from the container. Deferred, so the
 * cell learns that the evaluation ran before the freeze (an immediate loop would never answer).
 */
export const FREEZE_EXPRESSION = 'setTimeout(() => { for (;;) {} }, 200); 0';
