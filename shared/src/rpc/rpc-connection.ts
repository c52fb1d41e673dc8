/**
 * A symmetric request/response connection over any text transport (a WebSocket in practice).
 *
 * It lives in `shared/` because it *is* the protocol's behaviour: both ends must validate, size-check
 * and fail the same way. It knows nothing of `ws`; an adapter feeds it frames and close events.
 *
 * States: `open` → `closed`. Closing (by either end, or because the peer broke the protocol)
 * rejects every pending request with {@link ConnectionClosedError}, aborts every running handler's
 * signal, and never throws; closing twice is a no-op.
 */
import type * as z from 'zod/mini';
import { MAX_MESSAGE_BYTES } from '../limits.js';
import { Envelope, type ErrorPayload } from '../protocol/messages.js';
import type { AnyMethod, MethodDescriptor, ParamsOf, ResultOf } from '../protocol/methods.js';
import { ConnectionClosedError, MessageTooLargeError, ProtocolViolationError, RemoteError, RequestAbortedError, formatBytes } from './errors.js';

/** What the connection needs from a transport. Both calls must not throw once the transport is closed. */
export interface TextTransport {
  send(text: string): void;
  close(code: number, reason: string): void;
}

export interface RequestHandlerContext {
  /** Aborted when the connection closes while the handler runs. */
  signal: AbortSignal;
}

export type RequestHandler<D extends AnyMethod> = (params: ParamsOf<D>, context: RequestHandlerContext) => Promise<ResultOf<D>> | ResultOf<D>;

export interface CloseInfo {
  code: number | undefined;
  reason: string;
  /** Set when this end closed because the peer broke the protocol. */
  violation?: ProtocolViolationError;
}

export interface RpcConnectionOptions {
  /** Used in error messages: `host` or `sandbox`. */
  name: string;
  maxMessageBytes?: number;
}

/** An error a handler may throw to answer with a specific code instead of `internal`. */
export class HandlerError extends Error {
  override name = 'HandlerError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

interface Pending {
  descriptor: AnyMethod;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  cleanup: () => void;
}

/** WebSocket close codes we use (RFC 6455 §7.4.1). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
} as const;

export class RpcConnection {
  readonly #transport: TextTransport;
  readonly #name: string;
  readonly #maxBytes: number;
  readonly #handlers = new Map<string, { descriptor: AnyMethod; handler: RequestHandler<AnyMethod> }>();
  readonly #pending = new Map<number, Pending>();
  readonly #running = new Set<AbortController>();
  readonly #closeListeners = new Set<(info: CloseInfo) => void>();
  #nextId = 0;
  #closeInfo: CloseInfo | undefined;
  readonly closed: Promise<CloseInfo>;
  #resolveClosed!: (info: CloseInfo) => void;

  constructor(transport: TextTransport, options: RpcConnectionOptions) {
    this.#transport = transport;
    this.#name = options.name;
    this.#maxBytes = options.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.#closeInfo === undefined;
  }

  /** Registers the handler for requests of `descriptor`'s method; replaces an earlier one. */
  handle<D extends AnyMethod>(descriptor: D, handler: RequestHandler<D>): void {
    this.#handlers.set(descriptor.method, {
      descriptor,
      handler: handler as unknown as RequestHandler<AnyMethod>,
    });
  }

  onClose(listener: (info: CloseInfo) => void): () => void {
    if (this.#closeInfo) {
      const info = this.#closeInfo;
      queueMicrotask(() => listener(info));
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * Sends a request and resolves with the peer's validated result.
   *
   * @throws {MessageTooLargeError} the request exceeds the size limit (nothing was sent).
   * @throws {RemoteError} the peer answered with an error.
   * @throws {ConnectionClosedError} the connection closed first.
   * @throws {RequestAbortedError} `signal` fired first.
   * @throws {ProtocolViolationError} the peer's result did not match the schema (the connection is closed).
   */
  request<P extends z.ZodMiniType, R extends z.ZodMiniType>(
    descriptor: MethodDescriptor<P, R>,
    params: z.infer<P>,
    options: { signal?: AbortSignal } = {},
  ): Promise<z.infer<R>> {
    const { signal } = options;
    if (this.#closeInfo) return Promise.reject(this.#closedError(descriptor.method));
    if (signal?.aborted) return Promise.reject(new RequestAbortedError(descriptor.method, { cause: signal.reason }));
    // Our own params are validated too: a bug here should fail here, not as a hostile-looking reply.
    const checked = descriptor.params.safeParse(params);
    if (!checked.success) {
      return Promise.reject(new TypeError(`invalid ${descriptor.method} params: ${summarizeZodError(checked.error)}`));
    }
    const id = this.#nextId++;
    const text = JSON.stringify({ type: 'request', id, method: descriptor.method, params: checked.data });
    const size = utf8Length(text, this.#maxBytes);
    if (size > this.#maxBytes) return Promise.reject(new MessageTooLargeError(descriptor.method, size, this.#maxBytes));

    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.#pending.get(id)?.cleanup();
        this.#pending.delete(id);
        reject(new RequestAbortedError(descriptor.method, { cause: signal?.reason }));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.set(id, {
        descriptor,
        resolve: resolve as (value: unknown) => void,
        reject,
        cleanup: () => signal?.removeEventListener('abort', onAbort),
      });
      this.#transport.send(text);
    });
  }

  /** Feeds one frame from the transport. Never throws. */
  receive(data: string | Buffer | ArrayBuffer | Buffer[], isBinary = false): void {
    if (this.#closeInfo) return;
    if (isBinary) {
      this.#violation('binary frames are not part of the protocol');
      return;
    }
    const text =
      typeof data === 'string'
        ? data
        : Buffer.isBuffer(data)
          ? data.toString('utf8')
          : Array.isArray(data)
            ? Buffer.concat(data).toString('utf8')
            : Buffer.from(data).toString('utf8');
    if (text.length > this.#maxBytes) {
      this.#violation(`message over ${formatBytes(this.#maxBytes)}`);
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.#violation('a frame was not valid JSON');
      return;
    }
    const envelope = Envelope.safeParse(json);
    if (!envelope.success) {
      this.#violation(`a frame did not match any message envelope: ${summarizeZodError(envelope.error)}`);
      return;
    }
    const message = envelope.data;
    switch (message.type) {
      case 'request':
        void this.#serve(message.id, message.method, message.params);
        return;
      case 'response':
        this.#settle(message);
        return;
      case 'protocol_error':
        // The peer is about to close; its reason makes the close error more useful.
        this.#peerProtocolError = message.message;
        return;
    }
  }

  #peerProtocolError: string | undefined;

  /** Tells the connection its transport closed. Never throws; safe to call more than once. */
  transportClosed(code: number | undefined, reason: string): void {
    this.#finish({ code, reason: this.#peerProtocolError ? `${reason || 'closed'} (peer reported: ${this.#peerProtocolError})` : reason });
  }

  /** Closes the connection and its transport. Never throws; closing twice is a no-op. */
  close(code: number = CloseCode.normal, reason = 'closed'): void {
    if (this.#closeInfo) return;
    this.#finish({ code, reason });
    try {
      this.#transport.close(code, reason);
    } catch {
      // The transport may already be gone; the connection is closed either way.
    }
  }

  async #serve(id: number, methodName: string, rawParams: unknown): Promise<void> {
    const entry = this.#handlers.get(methodName);
    if (!entry) {
      return this.#respondError(id, { code: 'method_not_found', message: `unknown method ${JSON.stringify(methodName).slice(0, 80)}` });
    }
    const params = entry.descriptor.params.safeParse(rawParams);
    if (!params.success) {
      return this.#respondError(id, { code: 'invalid_params', message: `invalid ${methodName} params: ${summarizeZodError(params.error)}` });
    }
    const controller = new AbortController();
    this.#running.add(controller);
    try {
      const result = await entry.handler(params.data, { signal: controller.signal });
      if (!this.isOpen) return;
      const text = JSON.stringify({ type: 'response', id, result });
      const size = utf8Length(text, this.#maxBytes);
      if (size > this.#maxBytes) {
        const tooLarge = new MessageTooLargeError(`${methodName} result`, size, this.#maxBytes);
        return this.#respondError(id, { code: 'result_too_large', message: tooLarge.message });
      }
      this.#transport.send(text);
    } catch (error) {
      if (!this.isOpen) return;
      const code = error instanceof HandlerError ? error.code : 'internal';
      const message = error instanceof Error ? error.message : String(error);
      this.#respondError(id, { code, message: message.slice(0, 60_000) });
    } finally {
      this.#running.delete(controller);
    }
  }

  #respondError(id: number, error: ErrorPayload): void {
    if (!this.isOpen) return;
    this.#transport.send(JSON.stringify({ type: 'response', id, error }));
  }

  #settle(message: Extract<Envelope, { type: 'response' }>): void {
    const pending = this.#pending.get(message.id);
    // A late answer to a request the caller already abandoned: nothing waits for it.
    if (!pending) return;
    this.#pending.delete(message.id);
    pending.cleanup();
    if ('error' in message) {
      pending.reject(new RemoteError(pending.descriptor.method, message.error.code, message.error.message));
      return;
    }
    const result = pending.descriptor.result.safeParse(message.result);
    if (!result.success) {
      const violation = new ProtocolViolationError(`${pending.descriptor.method} result did not match its schema: ${summarizeZodError(result.error)}`);
      pending.reject(violation);
      this.#violation(violation.message);
      return;
    }
    pending.resolve(result.data);
  }

  #violation(message: string): void {
    if (this.#closeInfo) return;
    const violation = new ProtocolViolationError(`${this.#name} closed the control channel: the peer broke the protocol: ${message}`);
    try {
      this.#transport.send(JSON.stringify({ type: 'protocol_error', message }));
    } catch {
      // best effort: the close below is what matters
    }
    this.#finish({ code: CloseCode.policyViolation, reason: message, violation });
    try {
      this.#transport.close(CloseCode.policyViolation, message.slice(0, 120));
    } catch {
      // already closed
    }
  }

  #finish(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.cleanup();
      pending.reject(info.violation ?? this.#closedError(pending.descriptor.method));
    }
    for (const controller of this.#running) controller.abort(this.#closedError('handler'));
    for (const listener of this.#closeListeners) {
      try {
        listener(info);
      } catch {
        // a listener's bug must not break closing
      }
    }
    this.#closeListeners.clear();
    this.#resolveClosed(info);
  }

  #closedError(method: string): ConnectionClosedError {
    const info = this.#closeInfo;
    const detail = info ? `code ${info.code ?? 'none'}${info.reason ? `, ${info.reason}` : ''}` : 'not open';
    return new ConnectionClosedError(`${method}: the control channel is closed (${detail})`, info?.code, info?.reason ?? '');
  }
}

/** UTF-8 byte length of `text`, computed only when it might exceed `limit`. */
function utf8Length(text: string, limit: number): number {
  if (text.length * 3 <= limit) return text.length; // cannot exceed: exact size not needed
  return Buffer.byteLength(text, 'utf8');
}

/** One line naming each failing path, so an error message says what to fix. */
export function summarizeZodError(error: { readonly issues: ReadonlyArray<{ readonly path: readonly PropertyKey[]; readonly message: string }> }): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}
