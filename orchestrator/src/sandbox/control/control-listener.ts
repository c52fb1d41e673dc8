/**
 * The host end of a sandbox's control channel: a WebSocket server that accepts exactly one
 * connection, from the container that knows the sandbox's token.
 *
 * The transport (where the server listens, and the URL the container dials) is the only
 * Unix-socket-specific part; a TCP variant for a Docker daemon on another machine is another
 * {@link ControlEndpoint} and nothing else changes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import {
  CONTROL_MOUNT_PATH,
  CONTROL_SOCKET_NAME,
  CloseCode,
  HandlerError,
  Hello,
  MAX_MESSAGE_BYTES,
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
  maxMessageBytes?: number;
  /** How often the host pings the sandbox, in milliseconds; the sandbox exits when pings stop. */
  heartbeatIntervalMs?: number;
}

/**
 * Listens for the sandbox's connection. Create it before the container starts, hand the container
 * {@link ControlListener.token} and the endpoint's URL, then await {@link ControlListener.accept}.
 */
export class ControlListener {
  /** The secret the container must present in its `hello`. */
  readonly token = randomBytes(24).toString('base64url');
  readonly #options: Required<Omit<ControlListenerOptions, 'endpoint'>> & { endpoint: ControlEndpoint };
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  #accepted: RpcConnection | undefined;
  #acceptWaiters: Array<{ resolve: (c: RpcConnection) => void; reject: (e: Error) => void }> = [];
  #closed = false;
  #heartbeat: NodeJS.Timeout | undefined;

  private constructor(options: ControlListenerOptions) {
    this.#options = {
      maxMessageBytes: MAX_MESSAGE_BYTES,
      heartbeatIntervalMs: 5_000,
      ...options,
    };
    this.#server = createServer((_request, response) => {
      response.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
    });
    this.#wss = new WebSocketServer({
      server: this.#server,
      maxPayload: this.#options.maxMessageBytes,
      perMessageDeflate: false,
    });
    this.#wss.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Starts listening on `options.endpoint`. */
  static async open(options: ControlListenerOptions): Promise<ControlListener> {
    const listener = new ControlListener(options);
    await options.endpoint.listen(listener.#server);
    return listener;
  }

  get containerUrl(): string {
    return this.#options.endpoint.containerUrl;
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
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    await this.#options.endpoint.dispose().catch(() => {});
  }

  #onConnection(socket: WebSocket): void {
    // One sandbox, one connection: a second one is either a bug or someone else knocking.
    if (this.#accepted || this.#closed) {
      socket.close(CloseCode.policyViolation, 'this sandbox already has a control connection');
      return;
    }
    const connection = connectionOverWebSocket(socket, {
      name: 'host',
      maxMessageBytes: this.#options.maxMessageBytes,
    });
    // Until hello succeeds the connection serves nothing else.
    const helloTimer = setTimeout(() => connection.close(CloseCode.policyViolation, 'no hello within 10 s'), 10_000);
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
      this.#startHeartbeat(socket);
      queueMicrotask(() => {
        for (const waiter of this.#acceptWaiters.splice(0)) waiter.resolve(connection);
      });
      return { accepted: true as const };
    });
  }

  #startHeartbeat(socket: WebSocket): void {
    this.#heartbeat = setInterval(() => {
      if (socket.readyState === socket.OPEN) socket.ping();
    }, this.#options.heartbeatIntervalMs);
    this.#heartbeat.unref();
  }
}

function tokensEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
