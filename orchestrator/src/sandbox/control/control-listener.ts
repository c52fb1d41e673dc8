/**
 * The host end of a sandbox's control channel: a WebSocket server that accepts exactly one
 * connection, from the container that knows the sandbox's token, and stops listening once it has.
 *
 * The transport (where the server listens, and the URL the container dials) is the only
 * Unix-socket-specific part; a TCP variant for a Docker daemon on another machine is another
 * {@link ControlEndpoint} and nothing else changes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import {
  CONTROL_MOUNT_PATH,
  CONTROL_SOCKET_NAME,
  CloseCode,
  HandlerError,
  Hello,
  MAX_HOST_INBOUND_FRAME_BYTES,
  PROTOCOL_VERSION,
  connectionOverWebSocket,
  type RpcConnection,
} from '@rlm/shared';
import { WebSocketServer, type WebSocket } from 'ws';
import { SandboxError } from '../../errors.js';

/** Where the host listens and what address the container is told to dial. */
export interface ControlEndpoint {
  /** Starts listening on `server`; resolves once connections can arrive. */
  listen(server: Server): Promise<void>;
  /** The `ws`/`ws+unix` URL the REPL server inside the container connects to. */
  readonly containerUrl: string;
  /** Frees whatever `listen` took (the socket file). Safe to call twice. */
  dispose(): Promise<void>;
}

/**
 * A Unix domain socket in the per-sandbox control directory, which is bind-mounted into that
 * container only. The socket is mode 0666 so the container's unprivileged user (mapped to another
 * uid under rootless Docker) can connect; other host users are kept out by the 0700 state root
 * above the directory.
 */
export class UnixSocketEndpoint implements ControlEndpoint {
  readonly socketPath: string;
  readonly containerUrl = `ws+unix://${CONTROL_MOUNT_PATH}/${CONTROL_SOCKET_NAME}:/`;

  constructor(controlDir: string) {
    this.socketPath = path.join(controlDir, CONTROL_SOCKET_NAME);
  }

  async listen(server: Server): Promise<void> {
    await rm(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.socketPath, 0o666);
  }

  async dispose(): Promise<void> {
    await rm(this.socketPath, { force: true });
  }
}

export interface ControlListenerOptions {
  endpoint: ControlEndpoint;
  /** Used in error messages. */
  sandboxId: string;
  /** Largest frame accepted, in bytes; a larger one is refused from its header (close 1009). Default: the largest frame the protocol lets a sandbox send. */
  maxMessageBytes?: number;
  /** How often the host pings the sandbox, in milliseconds; the sandbox exits when pings stop. Default 5 000, or a quarter of `livenessTimeoutMs` when that is shorter. */
  heartbeatIntervalMs?: number;
  /**
   * How long the accepted connection may go without answering a ping (or sending anything), in
   * milliseconds, before the host gives up on it: it closes the connection and calls
   * `onUnresponsive`. Default 20 000.
   */
  livenessTimeoutMs?: number;
  /** How long a connection may take to say hello, in milliseconds; default 10 000. */
  helloTimeoutMs?: number;
  /**
   * Most connections open at once before hello succeeds (default 4). More are closed as soon as
   * they arrive, so a flood of dials costs the host no file descriptors.
   */
  maxPendingConnections?: number;
  /** Called once when the accepted connection stops answering pings, just before the host closes it. */
  onUnresponsive?: (detail: { silentMs: number }) => void;
}

/** Liveness is judged after a ping had this long to be answered when a quarter of the timeout is shorter. */
const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
export const DEFAULT_LIVENESS_TIMEOUT_MS = 20_000;
const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PENDING_CONNECTIONS = 4;

/**
 * Listens for the sandbox's connection. Create it before the container starts, hand the container
 * {@link ControlListener.token} (in a file of its control directory) and the endpoint's URL, then
 * await {@link ControlListener.accept}.
 *
 * One sandbox, one connection: before hello, at most `maxPendingConnections` are open at once and
 * each must say hello within `helloTimeoutMs`; once one has said hello with the right token, the
 * listener stops listening (the server closes and the socket file is removed), every other
 * connection is closed, and later dials find nothing to connect to. From then on the host pings the
 * accepted connection and gives up on it when it stops answering (`livenessTimeoutMs`).
 */
export class ControlListener {
  /** The secret the container must present in its `hello`. */
  readonly token = randomBytes(24).toString('base64url');
  readonly #options: Required<Omit<ControlListenerOptions, 'endpoint' | 'onUnresponsive' | 'heartbeatIntervalMs'>> & {
    endpoint: ControlEndpoint;
    heartbeatIntervalMs: number;
    onUnresponsive: ((detail: { silentMs: number }) => void) | undefined;
  };
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  /** Raw sockets open now, upgraded or not. */
  readonly #sockets = new Set<Socket>();
  #accepted: RpcConnection | undefined;
  #acceptedSocket: Socket | undefined;
  #acceptWaiters: Array<{ resolve: (c: RpcConnection) => void; reject: (e: Error) => void }> = [];
  #closed = false;
  #listening = false;
  #heartbeat: NodeJS.Timeout | undefined;

  private constructor(options: ControlListenerOptions) {
    const livenessTimeoutMs = options.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS;
    this.#options = {
      maxMessageBytes: options.maxMessageBytes ?? MAX_HOST_INBOUND_FRAME_BYTES,
      livenessTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? Math.max(10, Math.min(DEFAULT_HEARTBEAT_INTERVAL_MS, Math.floor(livenessTimeoutMs / 4))),
      helloTimeoutMs: options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS,
      maxPendingConnections: options.maxPendingConnections ?? DEFAULT_MAX_PENDING_CONNECTIONS,
      endpoint: options.endpoint,
      sandboxId: options.sandboxId,
      onUnresponsive: options.onUnresponsive,
    };
    this.#server = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
    });
    // Node closes a connection past this count as soon as it is accepted: a flood of dials holds no
    // file descriptor of the host's for longer than that.
    this.#server.maxConnections = this.#options.maxPendingConnections;
    this.#server.on('connection', (socket: Socket) => this.#onSocket(socket));
    this.#wss = new WebSocketServer({
      server: this.#server,
      maxPayload: this.#options.maxMessageBytes,
      perMessageDeflate: false,
    });
    this.#wss.on('connection', (socket, request) => this.#onConnection(socket, request.socket as Socket));
  }

  /** Starts listening on `options.endpoint`. */
  static async open(options: ControlListenerOptions): Promise<ControlListener> {
    const listener = new ControlListener(options);
    await options.endpoint.listen(listener.#server);
    listener.#listening = true;
    return listener;
  }

  get containerUrl(): string {
    return this.#options.endpoint.containerUrl;
  }

  /** Whether the listener still takes connections (false once hello succeeded or it closed). */
  get isListening(): boolean {
    return this.#listening;
  }

  /**
   * Resolves with the connection once the container has said hello with the right token.
   *
   * @throws {SandboxError} the listener closed, or `signal` fired, first.
   */
  accept(options: { signal?: AbortSignal } = {}): Promise<RpcConnection> {
    if (this.#accepted) return Promise.resolve(this.#accepted);
    if (this.#closed) return Promise.reject(new SandboxError('control listener is closed', this.#options.sandboxId));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (connection: RpcConnection) => {
          options.signal?.removeEventListener('abort', onAbort);
          resolve(connection);
        },
        reject: (error: Error) => {
          options.signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      const onAbort = () => {
        this.#acceptWaiters = this.#acceptWaiters.filter((w) => w !== waiter);
        reject(
          options.signal?.reason instanceof Error
            ? options.signal.reason
            : new SandboxError('waiting for the sandbox to connect was aborted', this.#options.sandboxId),
        );
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#acceptWaiters.push(waiter);
    });
  }

  /** Stops listening, closes the accepted connection and frees the endpoint. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#accepted?.close(CloseCode.goingAway, 'host closed the sandbox');
    const error = new SandboxError('control listener closed before the sandbox connected', this.#options.sandboxId);
    for (const waiter of this.#acceptWaiters.splice(0)) waiter.reject(error);
    for (const client of this.#wss.clients) client.terminate();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#listening = false;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#options.endpoint.dispose().catch(() => {});
  }

  #onSocket(socket: Socket): void {
    if (this.#accepted || this.#closed) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    // A connection that never upgrades, or upgrades and never says hello, gives its slot back.
    const timer = setTimeout(() => {
      if (socket !== this.#acceptedSocket) socket.destroy();
    }, this.#options.helloTimeoutMs);
    timer.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      this.#sockets.delete(socket);
    });
  }

  #onConnection(socket: WebSocket, raw: Socket): void {
    // One sandbox, one connection: a second one is either a bug or someone else knocking.
    if (this.#accepted || this.#closed) {
      socket.terminate();
      return;
    }
    const connection = connectionOverWebSocket(socket, {
      name: 'host',
      maxMessageBytes: this.#options.maxMessageBytes,
    });
    // Until hello succeeds the connection serves nothing else.
    const helloTimer = setTimeout(
      () => connection.close(CloseCode.policyViolation, `no hello within ${this.#options.helloTimeoutMs} ms`),
      this.#options.helloTimeoutMs,
    );
    connection.onClose(() => clearTimeout(helloTimer));
    connection.handle(Hello, (params) => {
      clearTimeout(helloTimer);
      if (this.#accepted) throw new HandlerError('already_connected', 'hello was already accepted');
      if (!tokensEqual(params.token, this.token)) {
        setImmediate(() => connection.close(CloseCode.policyViolation, 'bad token'));
        throw new HandlerError('unauthorized', 'wrong sandbox token');
      }
      if (params.protocolVersion !== PROTOCOL_VERSION) {
        setImmediate(() => connection.close(CloseCode.policyViolation, 'protocol version mismatch'));
        throw new HandlerError(
          'version_mismatch',
          `host speaks protocol ${PROTOCOL_VERSION}, sandbox ${params.protocolVersion}; rebuild the image with \`rlm sandbox build\``,
        );
      }
      this.#accepted = connection;
      this.#acceptedSocket = raw;
      this.#stopListening();
      this.#startHeartbeat(socket, connection);
      queueMicrotask(() => {
        for (const waiter of this.#acceptWaiters.splice(0)) waiter.resolve(connection);
      });
      return { accepted: true as const };
    });
  }

  /** Once hello succeeded: nothing more may connect, and whatever else is connected is dropped. */
  #stopListening(): void {
    this.#listening = false;
    this.#server.close();
    void this.#options.endpoint.dispose().catch(() => {});
    for (const socket of this.#sockets) if (socket !== this.#acceptedSocket) socket.destroy();
  }

  #startHeartbeat(socket: WebSocket, connection: RpcConnection): void {
    const { heartbeatIntervalMs: interval, livenessTimeoutMs } = this.#options;
    let lastHeard = performance.now();
    let lastTick = lastHeard;
    const heard = () => {
      lastHeard = performance.now();
    };
    socket.on('pong', heard);
    socket.on('message', heard);
    this.#heartbeat = setInterval(() => {
      const now = performance.now();
      // A tick far later than scheduled means this process was stalled: answers that arrived meanwhile
      // have not been read yet, so the peer gets a fresh window instead of the blame.
      if (now - lastTick > 2 * interval) lastHeard = now;
      lastTick = now;
      const silentMs = now - lastHeard;
      if (silentMs > livenessTimeoutMs) {
        clearInterval(this.#heartbeat);
        // Rounded up: a silence just over the limit (400.3 ms) is reported over it (401), never at it.
        const reported = Math.ceil(silentMs);
        try {
          this.#options.onUnresponsive?.({ silentMs: reported });
        } finally {
          connection.close(CloseCode.goingAway, `no answer to pings for ${reported} ms`);
          socket.terminate();
        }
        return;
      }
      if (socket.readyState === socket.OPEN) socket.ping();
    }, interval);
    this.#heartbeat.unref();
    connection.onClose(() => clearInterval(this.#heartbeat));
  }
}

function tokensEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
