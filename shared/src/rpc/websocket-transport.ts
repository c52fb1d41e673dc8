/**
 * Binds an {@link RpcConnection} to a WebSocket. Typed structurally against the `ws` package's
 * WebSocket so `shared/` needs no dependency on it; both ends use this one adapter.
 */
import { RpcConnection, type RpcConnectionOptions } from './rpc-connection.js';

const OPEN = 1;

/** The part of `ws`'s WebSocket the adapter uses. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * Creates a connection over `socket`. Frames flow to the connection; closing either one closes the
 * other. Socket errors (e.g. a frame over `maxPayload`, which `ws` answers with close code 1009)
 * end the connection with that code instead of surfacing as exceptions.
 */
export function connectionOverWebSocket(socket: WebSocketLike, options: RpcConnectionOptions): RpcConnection {
  let lastError: Error | undefined;
  const connection = new RpcConnection(
    {
      send(text) {
        if (socket.readyState === OPEN) socket.send(text);
      },
      close(code, reason) {
        try {
          socket.close(code, reason);
        } catch {
          socket.terminate();
        }
      },
    },
    options,
  );
  socket.on('message', (data, isBinary) => connection.receive(data, isBinary));
  socket.on('error', (error) => {
    lastError = error;
  });
  socket.on('close', (code, reason) => {
    // `ws` tears the socket down itself when a frame breaks its rules, so the close arrives as 1006
    // (abnormal); the error it raised first says what really happened.
    const fromError = lastError ? closeCodeOf(lastError) : undefined;
    const text = reason.toString('utf8');
    connection.transportClosed(fromError ?? code, text || (lastError ? describeSocketError(lastError) : ''));
  });
  return connection;
}

/** Close codes for the `ws` errors a peer can provoke (RFC 6455 §7.4.1). */
const CLOSE_CODE_BY_WS_ERROR: Readonly<Record<string, number>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_INVALID_OPCODE: 1002,
  WS_ERR_EXPECTED_MASK: 1002,
  WS_ERR_UNEXPECTED_MASK: 1002,
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: 1002,
  WS_ERR_UNEXPECTED_RSV_1: 1002,
  WS_ERR_UNEXPECTED_RSV_2_3: 1002,
  WS_ERR_EXPECTED_FIN: 1002,
  WS_ERR_INVALID_CLOSE_CODE: 1002,
};

function closeCodeOf(error: Error): number | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? CLOSE_CODE_BY_WS_ERROR[code] : undefined;
}

function describeSocketError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return 'a message exceeded the control channel size limit';
  return error.message;
}
