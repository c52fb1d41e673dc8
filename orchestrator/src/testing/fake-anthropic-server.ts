/**
 * A local stand-in for Anthropic's Messages API, for tests that drive the real `@anthropic-ai/sdk`
 * over real HTTP without leaving 127.0.0.1.
 *
 * It answers `POST /v1/messages` from a script — one {@link FakeReply} per request, in order —
 * as JSON, or as server-sent events when the request asks for `stream: true`, and records every
 * request it receives (body and headers) so a test can assert on what was sent. A test that must
 * act once a request is in flight, or check that the client gave up on one, awaits
 * {@link FakeAnthropicServer.whenReceived} or {@link FakeAnthropicServer.whenAbandoned} instead of
 * waiting a fixed time.
 *
 * ```ts
 * await using server = await startFakeAnthropicServer();
 * server.enqueue({ type: 'http', status: 429, headers: { 'retry-after': '1' } }, { text: 'hello' });
 * const backend = createAnthropicBackend({ apiKey: 'test', baseURL: server.url });
 * // … call it, then:
 * expect(server.requests).toHaveLength(2);
 * ```
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { perRequest } from './per-request.js';

/** Token counts as the Messages API reports them. */
export interface FakeUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** A successful answer: a message with an optional thinking block, then one text block. */
export interface FakeMessageReply {
  type?: 'message';
  /** The answer's text; default `ok`. */
  text?: string;
  /**
   * How the text is cut into `text_delta` events when streaming; default: into words (each
   * with its trailing whitespace). Their concatenation replaces `text`.
   */
  textChunks?: readonly string[];
  /** A thinking block before the text, streamed as `thinking_delta` events. */
  thinking?: string;
  /** Default `{ input_tokens: 10, output_tokens: 5 }`. */
  usage?: FakeUsage;
  /** Default `end_turn`. */
  stopReason?: string;
  /** The model that answered; default the request's `model`. */
  model?: string;
  /** Milliseconds between two streamed events; default 0. */
  eventDelayMs?: number;
  /**
   * Stream this many text deltas, then send nothing more and hold the connection open until the
   * client goes away: for tests that abort or time out mid-stream. Streaming requests only.
   */
  stallAfterChunks?: number;
  /**
   * How a stream ends after the text deltas: normally (`message_delta`, `message_stop`); with an
   * `error` event (e.g. `{ type: 'overloaded_error', message: 'Overloaded' }`); with the socket
   * destroyed (`'reset'`); or with the response ended cleanly but early (`'truncate'`).
   * Ignored for JSON answers.
   */
  streamEnd?: 'complete' | 'reset' | 'truncate' | { errorType: string; message: string };
}

/** An HTTP error answer. */
export interface FakeHttpReply {
  type: 'http';
  status: number;
  headers?: Readonly<Record<string, string>>;
  /**
   * The body: an object is sent as JSON, a string as is. Default: the API's error shape,
   * `{ type: 'error', error: { type, message } }`, with the type the API uses for `status`.
   */
  body?: unknown;
}

/** Any bytes with any status and content type: malformed bodies and streams. */
export interface FakeRawReply {
  type: 'raw';
  body: string;
  /** Default 200. */
  status?: number;
  /** Default `text/event-stream`. */
  contentType?: string;
}

/** The connection is destroyed without an answer. */
export interface FakeResetReply {
  type: 'reset';
}

/** One scripted answer. Every kind may wait `delayMs` before answering. */
export type FakeReply = (FakeMessageReply | FakeHttpReply | FakeRawReply | FakeResetReply) & {
  /** Milliseconds to wait before sending anything (response headers included); default 0. */
  delayMs?: number;
};

/** A request the server received. */
export interface RecordedRequest {
  method: string;
  /** The path and query, e.g. `/v1/messages`. */
  path: string;
  /** Lower-case names, as Node reports them. */
  headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or `undefined` when it was not JSON. */
  body: unknown;
  rawBody: string;
}

export interface FakeAnthropicServer extends AsyncDisposable {
  /** The base URL to give the SDK, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  readonly url: string;
  /** Every request received, in order of arrival (including ones to unknown paths). */
  readonly requests: RecordedRequest[];
  /** Scripts the answers to the next requests, in order. */
  enqueue(...replies: FakeReply[]): void;
  /** The answer when the script is empty; initially `{ text: 'ok' }`. */
  defaultReply: FakeReply;
  /** Resolves with request `index` (0-based, in order of arrival) once it has arrived. */
  whenReceived(index?: number): Promise<RecordedRequest>;
  /**
   * Resolves once the client closed the connection of request `index` before its answer was
   * complete (an abort, a timeout). Not when the server itself hangs up (`reset`) or closes.
   */
  whenAbandoned(index?: number): Promise<void>;
  /** Stops listening and destroys open connections. Safe to call twice. */
  close(): Promise<void>;
}

/** The error type the Messages API uses for each status. */
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  402: 'billing_error',
  403: 'permission_error',
  404: 'not_found_error',
  408: 'timeout_error',
  409: 'conflict_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  504: 'timeout_error',
  529: 'overloaded_error',
};

/** The Messages API's error body. */
export function anthropicErrorBody(type: string, message: string): { type: 'error'; error: { type: string; message: string } } {
  return { type: 'error', error: { type, message } };
}

/** Starts a server on 127.0.0.1 on a free port. */
export async function startFakeAnthropicServer(): Promise<FakeAnthropicServer> {
  const script: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const arrivals = perRequest<RecordedRequest>();
  const abandonments = perRequest<void>();
  /** Responses the server cut off on purpose: their close is not the client's doing. */
  const hungUp = new WeakSet<ServerResponse>();
  let closing = false;
  let messageCount = 0;

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      // A bug in the fake itself: make it loud in the test that hit it.
      if (!response.headersSent) response.writeHead(599, { 'content-type': 'text/plain' });
      response.end(`fake-anthropic-server: ${error instanceof Error ? error.stack : String(error)}`);
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const rawBody = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch {
      body = undefined;
    }
    const recorded: RecordedRequest = { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body, rawBody };
    const index = requests.push(recorded) - 1;
    // The client may go away while we wait or stream (abort, timeout); stop writing then.
    const gone = new AbortController();
    response.on('close', () => {
      gone.abort();
      if (!response.writableFinished && !hungUp.has(response) && !closing) abandonments.settle(index, undefined);
    });
    arrivals.settle(index, recorded);

    if (request.method !== 'POST' || (request.url ?? '').split('?')[0] !== '/v1/messages') {
      sendJson(response, 404, anthropicErrorBody('not_found_error', `fake-anthropic-server: no route ${request.method} ${request.url}`));
      return;
    }

    const reply = script.shift() ?? api.defaultReply;
    if (reply.delayMs) await pause(reply.delayMs, gone.signal);
    if (gone.signal.aborted) return;

    switch (reply.type) {
      case 'http': {
        const status = reply.status;
        const payload = reply.body === undefined ? anthropicErrorBody(ERROR_TYPES[status] ?? 'api_error', `fake error ${status}`) : reply.body;
        const text = typeof payload === 'string' ? payload : JSON.stringify(payload);
        response.writeHead(status, {
          'content-type': typeof payload === 'string' ? 'text/plain' : 'application/json',
          'request-id': `req_fake_${requests.length}`,
          ...reply.headers,
        });
        response.end(text);
        return;
      }
      case 'raw':
        response.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'text/event-stream' });
        response.end(reply.body);
        return;
      case 'reset':
        hungUp.add(response);
        request.socket.destroy();
        return;
      default: {
        messageCount += 1;
        const requested = isRecord(body) ? body : {};
        const model = reply.model ?? (typeof requested.model === 'string' ? requested.model : 'claude-fake');
        const id = `msg_fake_${messageCount}`;
        if (requested.stream === true) await stream(response, request, reply, model, id, gone.signal);
        else sendJson(response, 200, messageJson(reply, model, id));
      }
    }
  }

  async function stream(
    response: ServerResponse,
    request: IncomingMessage,
    reply: FakeMessageReply,
    model: string,
    id: string,
    gone: AbortSignal,
  ): Promise<void> {
    const usage = reply.usage ?? { input_tokens: 10, output_tokens: 5 };
    const chunks = reply.textChunks ?? splitWords(reply.text ?? 'ok');
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': `req_fake_${requests.length}` });
    response.flushHeaders();
    const send = async (event: string, data: unknown) => {
      if (gone.aborted) return;
      response.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (reply.eventDelayMs) await pause(reply.eventDelayMs, gone);
    };

    await send('message_start', {
      type: 'message_start',
      message: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        // As the API does: the input counts are final here, the output count is not.
        usage: { ...cacheFields(usage), input_tokens: usage.input_tokens, output_tokens: Math.min(1, usage.output_tokens) },
      },
    });
    await send('ping', { type: 'ping' });
    let index = 0;
    if (reply.thinking !== undefined) {
      await send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } });
      for (const piece of splitWords(reply.thinking)) {
        await send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: piece } });
      }
      await send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: 'fake-signature' } });
      await send('content_block_stop', { type: 'content_block_stop', index });
      index += 1;
    }
    await send('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '', citations: null } });
    for (const [sent, piece] of chunks.entries()) {
      if (sent === reply.stallAfterChunks) return; // the response stays open until the client leaves
      await send('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    }
    if (gone.aborted || reply.stallAfterChunks !== undefined) return;

    const end = reply.streamEnd ?? 'complete';
    if (end === 'reset') {
      hungUp.add(response);
      request.socket.destroy();
      return;
    }
    if (end === 'truncate') {
      response.end();
      return;
    }
    if (typeof end === 'object') {
      await send('error', anthropicErrorBody(end.errorType, end.message));
      response.end();
      return;
    }
    await send('content_block_stop', { type: 'content_block_stop', index });
    await send('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: reply.stopReason ?? 'end_turn', stop_sequence: null },
      // Cumulative totals, the final output count among them.
      usage: { ...cacheFields(usage), input_tokens: usage.input_tokens, output_tokens: usage.output_tokens },
    });
    await send('message_stop', { type: 'message_stop' });
    response.end();
  }

  const api: FakeAnthropicServer = {
    url: '',
    requests,
    defaultReply: { text: 'ok' },
    enqueue: (...replies) => {
      script.push(...replies);
    },
    whenReceived: (index = 0) => arrivals.wait(index),
    whenAbandoned: (index = 0) => abandonments.wait(index),
    close: async () => {
      if (!server.listening) return;
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    [Symbol.asyncDispose]: () => api.close(),
  };

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return Object.assign(api, { url: `http://127.0.0.1:${port}` });
}

function messageJson(reply: FakeMessageReply, model: string, id: string): unknown {
  const usage = reply.usage ?? { input_tokens: 10, output_tokens: 5 };
  const text = reply.textChunks ? reply.textChunks.join('') : (reply.text ?? 'ok');
  return {
    id,
    type: 'message',
    role: 'assistant',
    model,
    content: [
      ...(reply.thinking === undefined ? [] : [{ type: 'thinking', thinking: reply.thinking, signature: 'fake-signature' }]),
      { type: 'text', text, citations: null },
    ],
    stop_reason: reply.stopReason ?? 'end_turn',
    stop_sequence: null,
    usage: { ...cacheFields(usage), input_tokens: usage.input_tokens, output_tokens: usage.output_tokens },
  };
}

function cacheFields(usage: FakeUsage): Partial<FakeUsage> {
  return {
    cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
  };
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** Words with their trailing whitespace, so the pieces concatenate back to `text`. */
function splitWords(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [''];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Resolves after `ms`, or at once when `signal` fires. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
