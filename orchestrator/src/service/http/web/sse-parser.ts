/**
 * A Server-Sent Events parser for the web page's script, which reads `/v1/runs/:id/events` with
 * `fetch` (EventSource cannot send an Authorization header, and the token must never travel in a
 * URL). It follows the WHATWG "event stream interpretation": lines end in CRLF, LF or CR (also
 * across chunk boundaries); `:` starts a comment; `data` lines join with LF; an `id` holding NUL is
 * ignored; `retry` takes digits only; an event is dispatched at a blank line and only when it has
 * data; an event left unterminated when the stream ends is dropped.
 *
 * Pure (no DOM, no Node): runs in the browser bundle and in unit tests.
 */

/** One dispatched event. `id` is the last event id in force (the stream's, not only this event's). */
export interface SseEvent {
  /** `message` when the stream named none. */
  event: string;
  data: string;
  id: string;
}

export interface SseParserHandlers {
  onEvent: (event: SseEvent) => void;
  /** A `retry` field: the reconnection delay the server asks for, in milliseconds. */
  onRetry?: (ms: number) => void;
}

/** Feeds text in with {@link push}; calls `onEvent` for each complete event, in order. */
export class SseParser {
  /** The last event id the stream set; send it back as `Last-Event-ID` to resume. */
  lastEventId = '';
  #buffer = '';
  /** The previous chunk ended in CR: a LF starting the next one belongs to that line end. */
  #pendingCr = false;
  #data: string[] = [];
  #event = '';
  #idInEvent: string | null = null;
  readonly #handlers: SseParserHandlers;

  constructor(handlers: SseParserHandlers) {
    this.#handlers = handlers;
  }

  /** Parses a chunk of decoded text (any split: mid-line, mid-CRLF). */
  push(chunk: string): void {
    let text = chunk;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.#buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.#buffer.indexOf('\r', start);
      const lf = this.#buffer.indexOf('\n', start);
      let end: number;
      if (cr === -1 && lf === -1) break;
      if (cr === -1) end = lf;
      else if (lf === -1) end = cr;
      else end = Math.min(cr, lf);
      const line = this.#buffer.slice(start, end);
      if (this.#buffer[end] === '\r') {
        if (end + 1 === this.#buffer.length) {
          // A CR at the end of what we have: a following LF (in the next chunk) is part of it.
          this.#pendingCr = true;
          start = end + 1;
        } else start = this.#buffer[end + 1] === '\n' ? end + 2 : end + 1;
      } else start = end + 1;
      this.#line(line);
    }
    this.#buffer = this.#buffer.slice(start);
  }

  /** The stream ended: an unterminated event is dropped, as the standard says. */
  end(): void {
    this.#buffer = '';
    this.#pendingCr = false;
    this.#reset();
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#event = value;
        break;
      case 'data':
        this.#data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.#idInEvent = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.#handlers.onRetry?.(Number(value));
        break;
      default:
        // Unknown fields are ignored.
        break;
    }
  }

  #dispatch(): void {
    // The id sticks even when the event itself is empty (no data): the standard sets it first.
    if (this.#idInEvent !== null) this.lastEventId = this.#idInEvent;
    if (this.#data.length > 0) this.#handlers.onEvent({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.lastEventId });
    this.#reset();
  }

  #reset(): void {
    this.#data = [];
    this.#event = '';
    this.#idInEvent = null;
  }
}

/**
 * Reads an event stream (a fetch response's body) to its end, calling `onEvent` for each event.
 * Resolves when the stream ends; rejects when reading fails (the connection dropped) or `signal`
 * aborts (the reader is cancelled then). Decodes UTF-8, dropping a leading BOM.
 */
export async function readSseStream(body: ReadableStream<Uint8Array>, parser: SseParser, signal?: AbortSignal): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const onAbort = () => {
    reader.cancel(signal?.reason).catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    for (;;) {
      const { done, value } = await reader.read();
      signal?.throwIfAborted();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
    parser.end();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    reader.releaseLock();
  }
}
