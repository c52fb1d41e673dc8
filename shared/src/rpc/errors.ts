/**
 * Errors of the control channel. Each class carries a marker so `isInstance` works even when two
 * copies of this package are loaded (host bundle and sandbox bundle in one test process).
 */

const MARKER = Symbol.for('rlm.protocol.error');

export class ChannelError extends Error {
  readonly [MARKER] = true;
  override name = 'ChannelError';

  static isInstance(value: unknown): value is ChannelError {
    return typeof value === 'object' && value !== null && MARKER in value;
  }
}

/** The connection closed (or was never open) before the request got its answer. */
export class ConnectionClosedError extends ChannelError {
  override name = 'ConnectionClosedError';
  constructor(
    message: string,
    readonly closeCode: number | undefined,
    readonly closeReason: string,
  ) {
    super(message);
  }
}

/** The peer broke the protocol: a frame that is not JSON, not a known envelope, or a result that fails its schema. */
export class ProtocolViolationError extends ChannelError {
  override name = 'ProtocolViolationError';
}

/** A message would exceed the channel's size limit; nothing was sent. */
export class MessageTooLargeError extends ChannelError {
  override name = 'MessageTooLargeError';
  constructor(
    readonly method: string,
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(
      `${method} message is ${formatBytes(bytes)}, over the control channel's limit of ${formatBytes(limitBytes)}; ` +
        'send less per call (split the batch or the prompt)',
    );
  }
}

/** The peer answered the request with an error. */
export class RemoteError extends ChannelError {
  override name = 'RemoteError';
  constructor(
    readonly method: string,
    readonly code: string,
    message: string,
  ) {
    super(`${method} failed on the other end (${code}): ${message}`);
  }
}

/** The caller's AbortSignal fired before the answer came. */
export class RequestAbortedError extends ChannelError {
  override name = 'RequestAbortedError';
  constructor(
    readonly method: string,
    options?: ErrorOptions,
  ) {
    super(`${method} was aborted before it was answered`, options);
  }
}

/** The peer cancelled its request while this end's handler ran: the handler's signal fires with it as the reason. */
export class PeerCancelledError extends ChannelError {
  override name = 'PeerCancelledError';
  constructor(readonly method: string) {
    super(`the peer cancelled its ${method} request`);
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
