/**
 * The worker's side of calls answered by the host (sub-calls and custom tools): post the request to
 * the main thread and block on `Atomics.wait` until the answer is posted back, so a cell can call
 * them without `await`. The answer is read with `receiveMessageOnPort`: no size limit, no copy
 * through shared memory. One channel and one id sequence serve every kind, so a late answer to an
 * abandoned call can never be taken for another call's.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { HostCallKind, HostCallReply, HostCallRequest, HostCalls } from './worker-messages.js';

/** The cell's deadline passed while it waited for the host. The runner reports the cell as timed out. */
export class HostCallDeadlineError extends Error {
  override name = 'TimeoutError';
}

/**
 * Asks the host and blocks until it answers: `{ result }` validated by the main thread, or
 * `{ error }` when the host could not be asked or failed.
 * @throws HostCallDeadlineError when the cell's deadline passes first.
 */
export type HostCaller = <K extends HostCallKind>(
  kind: K,
  params: HostCalls[K]['params'],
) => { readonly result: HostCalls[K]['result'] } | { readonly error: string };

export function createHostCaller(
  port: MessagePort,
  signal: Int32Array,
  /** Milliseconds left until the current cell's deadline; `Infinity` outside a cell. */
  remainingMs: () => number,
): HostCaller {
  let nextId = 1;

  const waitForReply = (id: number, kind: HostCallKind): HostCallReply => {
    for (;;) {
      const seen = Atomics.load(signal, 0);
      for (let received = receiveMessageOnPort(port); received; received = receiveMessageOnPort(port)) {
        const reply = received.message as HostCallReply;
        if (reply.id === id) return reply;
        // An answer to a call whose cell already timed out: nobody waits for it any more.
      }
      const remaining = remainingMs();
      if (remaining <= 0) {
        throw new HostCallDeadlineError(`the cell reached its time limit while waiting for ${kind === 'tool' ? 'a tool call' : 'a sub-call'}`);
      }
      Atomics.wait(signal, 0, seen, remaining === Infinity ? undefined : Math.ceil(remaining));
    }
  };

  return ((kind: HostCallKind, params: HostCalls[HostCallKind]['params']) => {
    const id = nextId++;
    port.postMessage({ id, kind, params } as HostCallRequest);
    const reply = waitForReply(id, kind);
    return 'error' in reply ? { error: reply.error } : { result: reply.result };
  }) as HostCaller;
}
