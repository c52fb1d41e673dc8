/**
 * A Server-Sent Events response on a Fastify reply: the reply streams a PassThrough that this
 * module writes frames into, with a comment line every `heartbeatMs` so that proxies and clients
 * keep an idle stream open. Going through `reply.send(stream)` rather than hijacking keeps Fastify's
 * hooks (request logging, the metrics' response listener) working. When the client goes away,
 * Fastify destroys the stream and `signal` aborts; when the server closes, `closing` ends it.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

export interface SseFrame {
  id?: string | number;
  event?: string;
  /** One line: JSON (which escapes newlines) or `[DONE]`. */
  data: string;
}

export interface SseStream {
  /** Aborts when the client went away, the server is closing, or `end` was called. */
  readonly signal: AbortSignal;
  /** Writes one event; resolves once the stream took it (waits while a slow client's buffer is full). Does nothing once closed. */
  send(frame: SseFrame): Promise<void>;
  /** A comment line (`: text`), ignored by clients. */
  comment(text: string): void;
  /** Ends the response. Safe to call twice. */
  end(): void;
}

export interface SseOptions {
  /** Milliseconds between heartbeat comments. */
  heartbeatMs: number;
  /** Aborts when the server is closing: the stream ends. Absent: the caller ends it. */
  closing?: AbortSignal;
  /** Written first (it also sends the headers at once); default a `retry:` hint. */
  preamble?: string;
}

/** Starts the event stream as the reply's body; the handler returns `reply` and writes frames from then on. */
export function startSse(reply: FastifyReply, options: SseOptions): SseStream {
  const stream = new PassThrough();
  const controller = new AbortController();
  const { signal } = controller;
  let ended = false;

  const finish = (): void => {
    clearInterval(heartbeat);
    options.closing?.removeEventListener('abort', end);
    controller.abort();
  };
  const end = (): void => {
    if (ended) return;
    ended = true;
    finish();
    stream.end();
  };
  stream.once('close', () => {
    ended = true;
    finish();
  });
  const heartbeat = setInterval(() => write(': keep-alive\n\n'), options.heartbeatMs);
  heartbeat.unref();
  options.closing?.addEventListener('abort', end, { once: true });

  function write(text: string): boolean {
    if (ended || stream.destroyed) return true;
    return stream.write(text);
  }

  reply
    .code(200)
    .header('content-type', 'text/event-stream; charset=utf-8')
    .header('cache-control', 'no-cache, no-store')
    .header('x-accel-buffering', 'no')
    .send(stream);
  write(options.preamble ?? 'retry: 3000\n\n');
  if (options.closing?.aborted) end();

  return {
    signal,
    async send(frame) {
      let text = '';
      if (frame.id !== undefined) text += `id: ${frame.id}\n`;
      if (frame.event !== undefined) text += `event: ${frame.event}\n`;
      text += `data: ${frame.data}\n\n`;
      if (write(text) || ended) return;
      try {
        await once(stream, 'drain', { signal });
      } catch {
        // Closed while waiting: nothing more to send.
      }
    },
    comment(text) {
      write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
    },
    end,
  };
}
