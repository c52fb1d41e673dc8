/**
 * Length-prefixed frames over a byte stream (the pipe between the REPL server and its cell
 * process): a 4-byte big-endian byte length, then that many bytes of UTF-8 JSON. The length is
 * checked against the limit before a byte of the body is buffered, so a peer cannot make the
 * reader hold more than one frame of at most `maxFrameBytes`.
 */
import type { Duplex } from 'node:stream';
import { RpcConnection, type RpcConnectionOptions } from '@rlm/shared';
import { errorMessage } from '../to-error.js';

const HEADER_BYTES = 4;

/** A frame's declared length is over the limit: the stream is broken or hostile and must be dropped. */
export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError';
  constructor(
    readonly bytes: number,
    readonly limitBytes: number,
  ) {
    super(`a frame of ${bytes} bytes was announced, over the limit of ${limitBytes} bytes`);
  }
}

/** Cuts a byte stream into frames. Feed it chunks in order; it calls `onFrame` once per complete frame. */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #onFrame: (frame: Buffer) => void;
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Body length of the frame being read, once its header is in. */
  #expected: number | undefined;

  constructor(maxFrameBytes: number, onFrame: (frame: Buffer) => void) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#onFrame = onFrame;
  }

  /**
   * @throws {FrameTooLargeError} when a header announces more than the limit; the decoder is then
   *   unusable (the stream is out of step) and the caller must drop the stream.
   */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#expected === undefined) {
        if (this.#buffered < HEADER_BYTES) return;
        const length = this.#take(HEADER_BYTES).readUInt32BE(0);
        if (length > this.#maxFrameBytes) throw new FrameTooLargeError(length, this.#maxFrameBytes);
        this.#expected = length;
      }
      if (this.#buffered < this.#expected) return;
      const frame = this.#take(this.#expected);
      this.#expected = undefined;
      this.#onFrame(frame);
    }
  }

  /** Removes and returns the first `bytes` buffered bytes (the caller checked they are there). */
  #take(bytes: number): Buffer {
    const joined = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#buffered);
    const taken = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }
}

/** The header and body of one frame, ready to write. */
export function encodeFrame(text: string): [Buffer, Buffer] {
  const body = Buffer.from(text, 'utf8');
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  return [header, body];
}

export interface FramedConnectionOptions extends RpcConnectionOptions {
  /** Largest frame accepted from the peer, in bytes; a larger announced frame closes the connection. */
  maxFrameBytes: number;
  /**
   * Called once when the connection closes (after the stream is destroyed): `byPeer` when the
   * stream ended or failed under it, false when this end closed it (a frame that broke the
   * protocol, or `close()`).
   */
  onClosed?: (reason: string, byPeer: boolean) => void;
}

/**
 * An {@link RpcConnection} over a duplex byte stream with {@link FrameDecoder} framing. Every frame
 * is validated by the connection (JSON, envelope, method schemas); an oversized or malformed frame
 * closes it. Closing the connection destroys the stream; the stream ending closes the connection.
 */
export function connectionOverStream(stream: Duplex, options: FramedConnectionOptions): RpcConnection {
  let closedReason: string | undefined;
  // Assigned once below; `finish` reads it, and only runs after that.
  let connection: RpcConnection;
  const finish = (reason: string, byPeer: boolean) => {
    if (closedReason !== undefined) return;
    closedReason = reason;
    stream.destroy();
    // The stream went first: the connection learns it here (when it closed the stream, it knows).
    if (byPeer) connection.transportClosed(undefined, reason);
    options.onClosed?.(reason, byPeer);
  };
  connection = new RpcConnection(
    {
      send(text) {
        if (stream.destroyed || !stream.writable) return;
        const [header, body] = encodeFrame(text);
        // Two writes, one frame: nothing else writes to this stream from this process.
        stream.write(header);
        stream.write(body);
      },
      close(_code, reason) {
        finish(reason, false);
      },
    },
    options,
  );
  const decoder = new FrameDecoder(options.maxFrameBytes, (frame) => connection.receive(frame.toString('utf8')));
  stream.on('data', (chunk: Buffer) => {
    if (closedReason !== undefined) return;
    try {
      decoder.push(chunk);
    } catch (error) {
      // Out of step with the peer: nothing after this can be trusted to be a frame.
      connection.close(1009, errorMessage(error));
    }
  });
  stream.on('error', (error) => finish(`the pipe failed: ${error.message}`, true));
  stream.on('end', () => finish('the peer closed the pipe', true));
  stream.on('close', () => finish('the pipe closed', true));
  return connection;
}
