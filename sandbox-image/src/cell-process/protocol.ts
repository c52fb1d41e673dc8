/**
 * What the REPL server and its cell process say to each other over their pipe (fd 3 of the cell
 * process, length-prefixed frames: see frames.ts): the control channel's own requests (`execute`,
 * `load_context`, `define_tools` from the server; `subcall`, `tool_call` from the cell process,
 * with the same schemas), plus `cell_ready`, sent once by the cell process when its REPL is up.
 * (Its command line is in args.ts.)
 */
import * as z from 'zod/mini';
import { Language, MAX_HOST_INBOUND_FRAME_BYTES, MAX_SANDBOX_INBOUND_FRAME_BYTES, type MethodDescriptor, type RemoteError } from '@rlm/shared';

/**
 * Largest frame the server reads from its cell process, in bytes: what the host itself accepts from
 * a sandbox (an `execute` result, a `subcall` request), so whatever the host may receive fits and
 * nothing larger is ever buffered. Each method's own limits apply below it (the RpcConnection's).
 */
export const MAX_FRAME_FROM_CELL_BYTES = MAX_HOST_INBOUND_FRAME_BYTES;

/** Largest frame the cell process reads from the server, in bytes: what the sandbox accepts from the host. */
export const MAX_FRAME_TO_CELL_BYTES = MAX_SANDBOX_INBOUND_FRAME_BYTES;

export const CellReadyParams = z.object({
  language: Language,
  node: z.string().check(z.maxLength(64)),
});
export const CellReadyResult = z.object({});

/** Sent once by the cell process when its REPL (worker, interpreter) is ready for requests. */
export const CellReady: MethodDescriptor<typeof CellReadyParams, typeof CellReadyResult> = Object.freeze({
  method: 'cell_ready',
  direction: 'sandbox-to-host',
  params: CellReadyParams,
  result: CellReadyResult,
  maxRequestBytes: 8 * 1024,
  maxResultBytes: 8 * 1024,
});

/** Error codes the cell process answers with, so the server can rethrow the REPL's typed errors. */
export const CellErrorCode = {
  contextLoad: 'context_load_failed',
  /** A context that cannot fit in the REPL's memory, or whose load ended the worker for memory. */
  contextOutOfMemory: 'context_out_of_memory',
  invalidTools: 'invalid_tools',
  repl: 'repl_error',
} as const;

/**
 * The peer's own message of a {@link RemoteError}, without the `<method> failed on the other end
 * (<code>): ` the receiving connection put in front of it, so an error relayed through the server
 * reads the same to a cell as one that came straight from the host.
 */
export function remoteErrorText(error: RemoteError): string {
  const prefix = `${error.method} failed on the other end (${error.code}): `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}
