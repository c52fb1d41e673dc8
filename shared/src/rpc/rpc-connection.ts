/**
 * A symmetric request/response connection over any text transport (a WebSocket in practice).
 *
 * It lives in `shared/` because it *is* the protocol's behaviour: both ends must validate, size-check
 * and fail the same way. It knows nothing of `ws`; an adapter feeds it frames and close events.
 *
 * Every frame is scanned before it is parsed ({@link scanFrame}): one linear pass that bounds its
 * depth and number of values and reads the envelope's `type`, `id` and `method`, so the frame is
 * held to its method's size limit (`maxRequestBytes` for a request, the pending request's
 * `maxResultBytes` for a response) and a request for a method this end does not serve, or a response
 * to no request, is refused without being parsed.
 *
 * States: `open` → `closed`. Closing (by either end, or because the peer broke the protocol)
 * rejects every pending request with {@link ConnectionClosedError}, aborts every running handler's
 * signal, and never throws; closing twice is a no-op. A peer breaks the protocol with: a binary
 * frame; a frame that is not one JSON object, nests deeper than {@link MAX_FRAME_DEPTH} levels or
 * holds more than {@link MAX_FRAME_ELEMENTS} values; a frame over its method's limit; an unknown
 * frame type; a request for a method without a handler here (unless `unknownMethods: 'answer'`);
 * a response to a request never sent, or a second response to one; a result that fails its schema.
 * A late answer to a request its caller abandoned is dropped unparsed.
 *
 * Cancellation crosses the channel: when a request's signal fires, the requester sends a `cancel`
 * frame for its id; the peer aborts that handler's signal and sends no answer. So a chain of calls
 * (a cell's sub-call through the REPL server to the host's model call) stops at every hop.
 */
import type * as z from 'zod/mini';
import { Envelope, type ErrorPayload, RequestId } from '../protocol/messages.js';
import { type AnyMethod, MAX_FRAME_BYTES, METHODS, type MethodDescriptor, type ParamsOf, type ResultOf } from '../protocol/methods.js';
import {
  ConnectionClosedError,
  MessageTooLargeError,
  PeerCancelledError,
  ProtocolViolationError,
  RemoteError,
  RequestAbortedError,
  formatBytes,
} from './errors.js';
import { MAX_CANCEL_BYTES, MAX_FRAME_DEPTH, MAX_FRAME_ELEMENTS, MAX_PROTOCOL_ERROR_BYTES, MAX_UNKNOWN_METHOD_REQUEST_BYTES } from './frame-limits.js';
import { type FrameHeader, type FrameScanLimits, scanFrame } from './frame-scan.js';

/** What the connection needs from a transport. Both calls must not throw once the transport is closed. */
export interface TextTransport {
  send(text: string): void;
  close(code: number, reason: string): void;
}

export interface RequestHandlerContext {
  /** Aborted when the connection closes while the handler runs, or when the peer cancels the request. */
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
  /**
   * Largest frame this end accepts, in bytes of UTF-8: a larger one is a protocol violation. Each
   * method's own limits apply below it. Give the transport the same bound (the WebSocket's
   * `maxPayload`), so a larger frame is refused before it is buffered. What this end sends is held
   * to the methods' limits only. Default {@link MAX_FRAME_BYTES}, the largest per-method limit.
   */
  maxMessageBytes?: number;
  /**
   * What a request for a method this end has no handler for does. `close` (the default): it is a
   * protocol violation and the channel closes, since a peer that probes is not one to keep talking
   * to. `answer`: it is answered with a `method_not_found` error and the channel stays open (such a
   * request may be at most {@link MAX_UNKNOWN_METHOD_REQUEST_BYTES}; a larger one still closes).
   */
  unknownMethods?: 'close' | 'answer';
  /**
   * Most of the peer's requests handled at once. One more is answered with a `busy` error without
   * being parsed (its frame is dropped at once). Default 1024.
   */
  maxConcurrentRequests?: number;
  /**
   * Most bytes of the peer's requests (their frames' sizes) whose handlers are running at once; a
   * request that would go past it is answered `busy` without being parsed. Bounds what a peer can
   * make this end hold by sending large requests it never lets finish. Default 256 MiB.
   */
  maxConcurrentRequestBytes?: number;
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

/** Counts of what a connection holds, for diagnostics and tests. All zero once it closed. */
export interface RpcConnectionStats {
  /** Requests this end sent that await their answer. */
  pendingRequests: number;
  /** Requests this end sent and its caller abandoned (aborted), remembered so their late answers are recognised. */
  abandonedRequests: number;
  /** The peer's requests whose handlers are running. */
  runningHandlers: number;
  /** Frame bytes of those requests. */
  runningHandlerBytes: number;
}

/** The smallest `maxResultBytes` of any method, so an error answer to a method not served here fits every limit. */
const MIN_RESULT_BYTES = Math.min(...METHODS.map((descriptor) => descriptor.maxResultBytes));

/** How many abandoned request ids a connection remembers (the oldest are forgotten first). */
const MAX_ABANDONED_REMEMBERED = 4096;

const SCAN_LIMITS: FrameScanLimits = { maxDepth: MAX_FRAME_DEPTH, maxElements: MAX_FRAME_ELEMENTS };

/** What the connection does with a frame, decided from its header before it is parsed. */
type Disposition =
  | { kind: 'request'; descriptor: AnyMethod | undefined }
  | { kind: 'response' }
  | { kind: 'late-response' }
  | { kind: 'protocol-error' }
  | { kind: 'cancel' }
  | { kind: 'refuse'; problem: string };

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
  readonly #unknownMethods: 'close' | 'answer';
  readonly #maxConcurrentRequests: number;
  readonly #maxConcurrentRequestBytes: number;
  readonly #handlers = new Map<string, { descriptor: AnyMethod; handler: RequestHandler<AnyMethod> }>();
  readonly #pending = new Map<number, Pending>();
  /** Abandoned request id → its descriptor, oldest first (a Map keeps insertion order). */
  readonly #abandoned = new Map<number, AnyMethod>();
  /** The highest abandoned id forgotten to keep {@link #abandoned} bounded; an answer at or below it may be a late one. */
  #forgottenAbandonedId = -1;
  /** Running handlers' abort controllers → their requests' frame sizes. */
  readonly #running = new Map<AbortController, number>();
  /** The peer's request id → its running handler's controller, for the peer's `cancel`. */
  readonly #runningById = new Map<number, { controller: AbortController; method: string }>();
  #runningBytes = 0;
  readonly #closeListeners = new Set<(info: CloseInfo) => void>();
  #nextId = 0;
  #closeInfo: CloseInfo | undefined;
  #peerProtocolError: string | undefined;
  readonly closed: Promise<CloseInfo>;
  #resolveClosed!: (info: CloseInfo) => void;

  constructor(transport: TextTransport, options: RpcConnectionOptions) {
    this.#transport = transport;
    this.#name = options.name;
    this.#maxBytes = options.maxMessageBytes ?? MAX_FRAME_BYTES;
    this.#unknownMethods = options.unknownMethods ?? 'close';
    this.#maxConcurrentRequests = options.maxConcurrentRequests ?? 1024;
    this.#maxConcurrentRequestBytes = options.maxConcurrentRequestBytes ?? 256 * 1024 * 1024;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  get isOpen(): boolean {
    return this.#closeInfo === undefined;
  }

  get stats(): RpcConnectionStats {
    return {
      pendingRequests: this.#pending.size,
      abandonedRequests: this.#abandoned.size,
      runningHandlers: this.#running.size,
      runningHandlerBytes: this.#runningBytes,
    };
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
   * @throws {MessageTooLargeError} the request exceeds the method's `maxRequestBytes` (nothing was sent).
   * @throws {RemoteError} the peer answered with an error.
   * @throws {ConnectionClosedError} the connection closed first.
   * @throws {RequestAbortedError} `signal` fired first. The peer's late answer is then dropped unparsed.
   * @throws {ProtocolViolationError} the peer's answer broke the protocol: over the method's
   *   `maxResultBytes`, malformed, or a result that does not match the schema (the connection is closed).
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
    const limit = descriptor.maxRequestBytes;
    const size = utf8Length(text, limit);
    if (size > limit) return Promise.reject(new MessageTooLargeError(descriptor.method, size, limit));

    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const pending = this.#pending.get(id);
        if (!pending) return;
        pending.cleanup();
        this.#pending.delete(id);
        this.#rememberAbandoned(id, descriptor);
        // The peer stops working on it; an answer already sent is dropped as a late one.
        this.#sendQuietly(JSON.stringify({ type: 'cancel', id }));
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

  /**
   * Feeds one frame from the transport. Never throws. A frame that breaks the protocol (see the
   * module doc) closes the connection with close code 1008 after telling the peer why.
   */
  receive(data: string | Buffer | ArrayBuffer | Buffer[], isBinary = false): void {
    if (this.#closeInfo) return;
    if (isBinary) {
      this.#violation('binary frames are not part of the protocol');
      return;
    }
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : toBuffer(data);
    const size = bytes.length;
    if (size > this.#maxBytes) {
      this.#violation(`a frame of ${formatBytes(size)} is over the channel's limit of ${formatBytes(this.#maxBytes)}`);
      return;
    }
    let disposition: Disposition | undefined;
    const scan = scanFrame(bytes, SCAN_LIMITS, (header) => {
      disposition = this.#dispose(header, size);
      return disposition.kind === 'refuse' ? disposition.problem : undefined;
    });
    if (!scan.ok) {
      this.#violation(scan.refusedByHeaderCheck ? scan.problem : `a frame was refused before parsing: it ${scan.problem}`);
      return;
    }
    // The header never completed during the scan (no `type`, a request without `method`…): decide now.
    disposition ??= this.#dispose(scan.header, size);
    const header = scan.header;
    switch (disposition.kind) {
      case 'refuse':
        this.#violation(disposition.problem);
        return;
      case 'late-response':
        // An answer to a request its caller abandoned: nothing waits for it, so it is not parsed.
        this.#abandoned.delete(header.id as number);
        return;
      case 'request':
        if (disposition.descriptor && this.#overloaded(size)) {
          const id = RequestId.safeParse(header.id);
          if (id.success) {
            this.#respondError(id.data, disposition.descriptor, {
              code: 'busy',
              message: `${this.#name} is already handling ${this.#running.size} requests (${formatBytes(this.#runningBytes)}); retry when some finish`,
            });
            return;
          }
        }
        break;
      case 'cancel': {
        const id = header.id as number;
        // A cancel for a request that already finished (the answer crossed the cancel) is a no-op.
        const running = this.#runningById.get(id);
        running?.controller.abort(new PeerCancelledError(running.method));
        return;
      }
      case 'response':
      case 'protocol-error':
        break;
    }

    // Parse exactly what was scanned: for a string, its UTF-8 round trip (a lone surrogate became U+FFFD).
    const text = bytes.toString('utf8');
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      // The scan accepts only what JSON.parse parses; kept so a bug there cannot become a throw here.
      this.#violation('a frame was not valid JSON');
      return;
    }
    const envelope = Envelope.safeParse(json);
    if (!envelope.success) {
      this.#violation(`a frame did not match any message envelope: ${summarizeZodError(envelope.error)}`);
      return;
    }
    const message = envelope.data;
    // What was judged must be what is served: the scan decodes escapes and refuses repeated header
    // keys, so these agree unless the scan has a bug, which must not become a way past the limits.
    if (message.type !== header.type || ('id' in message && message.id !== header.id) || (message.type === 'request' && message.method !== header.method)) {
      this.#violation('a frame read differently when parsed than when scanned');
      return;
    }
    switch (message.type) {
      case 'request':
        void this.#serve(message.id, message.method, message.params, size);
        return;
      case 'response':
        this.#settle(message);
        return;
      case 'protocol_error':
        // The peer is about to close; its reason makes the close error more useful.
        this.#peerProtocolError = message.message;
        return;
      case 'cancel':
        // Served from the header above; kept so the switch covers every envelope.
        return;
    }
  }

  /** Tells the connection its transport closed. Never throws; safe to call more than once. */
  transportClosed(code: number | undefined, reason: string): void {
    this.#finish({ code, reason: this.#peerProtocolError ? `${reason || 'closed'} (peer reported: ${this.#peerProtocolError})` : reason });
  }

  /** Closes the connection and its transport. Never throws; closing twice is a no-op. */
  close(code: number = CloseCode.normal, reason = 'closed'): void {
    if (this.#closeInfo) return;
    this.#finish({ code, reason });
    try {
      this.#transport.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
    } catch {
      // The transport may already be gone; the connection is closed either way.
    }
  }

  /** Decides from a frame's header (and size) what to do with it, before it is parsed. */
  #dispose(header: Readonly<FrameHeader>, size: number): Disposition {
    const over = (what: string, limit: number): Disposition => ({
      kind: 'refuse',
      problem: `${what} of ${formatBytes(size)} is over its limit of ${formatBytes(limit)}`,
    });
    switch (header.type) {
      case 'request': {
        const method = header.method;
        if (method === undefined) return { kind: 'refuse', problem: 'a request has no string "method"' };
        const descriptor = this.#handlers.get(method)?.descriptor;
        if (!descriptor) {
          if (this.#unknownMethods === 'close') return { kind: 'refuse', problem: `a request for ${quote(method)}, a method ${this.#name} does not serve` };
          if (size > MAX_UNKNOWN_METHOD_REQUEST_BYTES) return over(`a request for the unknown method ${quote(method)}`, MAX_UNKNOWN_METHOD_REQUEST_BYTES);
          return { kind: 'request', descriptor: undefined };
        }
        const limit = Math.min(this.#maxBytes, descriptor.maxRequestBytes);
        return size > limit ? over(`a ${descriptor.method} request`, limit) : { kind: 'request', descriptor };
      }
      case 'response': {
        const id = header.id;
        if (id === undefined || !Number.isSafeInteger(id) || id < 0) return { kind: 'refuse', problem: 'a response has no valid numeric "id"' };
        const descriptor = this.#pending.get(id)?.descriptor ?? this.#abandoned.get(id);
        // Past thousands of abandoned requests their ids are forgotten, oldest first: an answer to one
        // of those is dropped like any late answer (only the transport's limit applies to it), since
        // it cannot be told from a second answer.
        if (!descriptor && id <= this.#forgottenAbandonedId) return { kind: 'late-response' };
        if (!descriptor) {
          return {
            kind: 'refuse',
            problem:
              id < this.#nextId
                ? `a second response to request ${id} (or an answer to one abandoned long ago)`
                : `a response to request ${id}, which ${this.#name} never sent`,
          };
        }
        const limit = Math.min(this.#maxBytes, descriptor.maxResultBytes);
        if (size > limit) return over(`a ${descriptor.method} response`, limit);
        return { kind: this.#pending.has(id) ? 'response' : 'late-response' };
      }
      case 'protocol_error':
        return size > MAX_PROTOCOL_ERROR_BYTES ? over('a protocol_error frame', MAX_PROTOCOL_ERROR_BYTES) : { kind: 'protocol-error' };
      case 'cancel': {
        if (size > MAX_CANCEL_BYTES) return over('a cancel frame', MAX_CANCEL_BYTES);
        const id = header.id;
        if (id === undefined || !Number.isSafeInteger(id) || id < 0) return { kind: 'refuse', problem: 'a cancel has no valid numeric "id"' };
        return { kind: 'cancel' };
      }
      case undefined:
        return { kind: 'refuse', problem: 'a frame has no string "type"' };
      default:
        return { kind: 'refuse', problem: `a frame of the unknown type ${quote(header.type)}` };
    }
  }

  #overloaded(size: number): boolean {
    return this.#running.size >= this.#maxConcurrentRequests || this.#runningBytes + size > this.#maxConcurrentRequestBytes;
  }

  #rememberAbandoned(id: number, descriptor: AnyMethod): void {
    this.#abandoned.set(id, descriptor);
    if (this.#abandoned.size > MAX_ABANDONED_REMEMBERED) {
      const oldest = this.#abandoned.keys().next();
      if (!oldest.done) {
        this.#abandoned.delete(oldest.value);
        this.#forgottenAbandonedId = Math.max(this.#forgottenAbandonedId, oldest.value);
      }
    }
  }

  async #serve(id: number, methodName: string, rawParams: unknown, size: number): Promise<void> {
    const entry = this.#handlers.get(methodName);
    if (!entry) {
      return this.#respondError(id, undefined, { code: 'method_not_found', message: `unknown method ${quote(methodName)}` });
    }
    const params = entry.descriptor.params.safeParse(rawParams);
    if (!params.success) {
      return this.#respondError(id, entry.descriptor, { code: 'invalid_params', message: `invalid ${methodName} params: ${summarizeZodError(params.error)}` });
    }
    const controller = new AbortController();
    this.#running.set(controller, size);
    this.#runningById.set(id, { controller, method: methodName });
    this.#runningBytes += size;
    try {
      const result = await entry.handler(params.data, { signal: controller.signal });
      // Cancelled by the peer: it dropped the request and expects no answer.
      if (!this.isOpen || controller.signal.aborted) return;
      const text = JSON.stringify({ type: 'response', id, result });
      const limit = entry.descriptor.maxResultBytes;
      const resultSize = utf8Length(text, limit);
      if (resultSize > limit) {
        const tooLarge = new MessageTooLargeError(`${methodName} result`, resultSize, limit);
        return this.#respondError(id, entry.descriptor, { code: 'result_too_large', message: tooLarge.message });
      }
      this.#transport.send(text);
    } catch (error) {
      if (!this.isOpen || controller.signal.aborted) return;
      const code = error instanceof HandlerError ? error.code : 'internal';
      const message = error instanceof Error ? error.message : String(error);
      this.#respondError(id, entry.descriptor, { code, message });
    } finally {
      // Closing already forgot every handler (a handler may ignore its abort signal and never end).
      if (this.#running.delete(controller)) this.#runningBytes -= size;
      // A peer that reused an id while the first request ran owns the entry now.
      if (this.#runningById.get(id)?.controller === controller) this.#runningById.delete(id);
    }
  }

  /** Sends a frame if the connection is open; a transport that fails now will report its close. */
  #sendQuietly(text: string): void {
    if (!this.isOpen) return;
    try {
      this.#transport.send(text);
    } catch {
      // The close that follows a failed send rejects what is pending.
    }
  }

  /**
   * Answers request `id` with an error, its message cut so the frame fits the method's
   * `maxResultBytes` (the peer holds error answers to that limit too), or
   * {@link MIN_RESULT_BYTES} for a method this end does not serve.
   */
  #respondError(id: number, descriptor: AnyMethod | undefined, error: ErrorPayload): void {
    if (!this.isOpen) return;
    const limit = descriptor?.maxResultBytes ?? MIN_RESULT_BYTES;
    // Room for the message once escaped, at worst 6 bytes a character, within the schema's 64 Ki
    // characters; the rest of the frame (id, a code of 64 characters) takes under 1 KiB.
    const room = Math.min(60_000, Math.floor((limit - 1024) / 6));
    const message = error.message.length > room ? `${error.message.slice(0, room - 1)}…` : error.message;
    this.#transport.send(JSON.stringify({ type: 'response', id, error: { code: error.code.slice(0, 64), message } }));
  }

  #settle(message: Extract<Envelope, { type: 'response' }>): void {
    const pending = this.#pending.get(message.id);
    // #dispose let the frame through only for a pending id, and nothing ran in between; kept as a guard.
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
      this.#transport.send(JSON.stringify({ type: 'protocol_error', message: message.slice(0, 60_000) }));
    } catch {
      // best effort: the close below is what matters
    }
    this.#finish({ code: CloseCode.policyViolation, reason: message, violation });
    try {
      this.#transport.close(CloseCode.policyViolation, truncateUtf8(message, MAX_CLOSE_REASON_BYTES));
    } catch {
      // already closed
    }
  }

  #finish(info: CloseInfo): void {
    if (this.#closeInfo) return;
    this.#closeInfo = info;
    this.#abandoned.clear();
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.cleanup();
      pending.reject(info.violation ?? this.#closedError(pending.descriptor.method));
    }
    const running = [...this.#running.keys()];
    this.#running.clear();
    this.#runningById.clear();
    this.#runningBytes = 0;
    for (const controller of running) controller.abort(this.#closedError('handler'));
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

/** A close frame's reason may be at most 123 bytes (RFC 6455 §5.5: 125 minus the code). */
const MAX_CLOSE_REASON_BYTES = 123;

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8, not splitting a character. */
function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let end = Math.min(text.length, maxBytes);
  while (end > 0 && Buffer.byteLength(text.slice(0, end), 'utf8') > maxBytes) end -= 1;
  // Do not leave half a surrogate pair.
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end);
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A peer-chosen name, quoted and cut short for an error message. */
function quote(name: string): string {
  return JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}…` : name);
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
