/**
 * A local server speaking OpenAI's Chat Completions protocol on 127.0.0.1 — JSON and SSE
 * streaming — driven by a script, so the real `openai` SDK can be tested without the internet.
 * Records every request (method, path with query, headers, body).
 *
 * The script answers each request with a reply text, a full completion (usage, cache tokens,
 * OpenRouter cost, explicit deltas, delays, a connection reset mid-stream), an HTTP response of
 * its choosing (status, headers, body), a malformed body, or a dropped connection. In strict
 * mode the server rejects request fields it does not know with a 400, as some providers do.
 * A test that must act once a request is in flight, or check that the client gave up on one,
 * awaits {@link FakeOpenAIServer.whenReceived} or {@link FakeOpenAIServer.whenAbandoned} instead
 * of waiting a fixed time.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { errorMessage } from '../errors.js';
import { perRequest } from './per-request.js';

/**
 * A port on 127.0.0.1 where nothing listens: bound, then closed, so a connection to it is refused
 * (ECONNREFUSED) without leaving this machine. For tests of a server that is not running.
 */
export async function closedLoopbackPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  max_tokens?: number;
  max_completion_tokens?: number;
  [key: string]: unknown;
}

export interface RecordedRequest {
  method: string;
  /** Path and query string, e.g. `/openai/deployments/d/chat/completions?api-version=2024-10-21`. */
  url: string;
  headers: IncomingHttpHeaders;
  body: ChatRequestBody;
}

/** A completion: streamed as SSE when the request asked for `stream: true`, else one JSON body. */
export interface ScriptedCompletion {
  text: string;
  /** The deltas to stream, in order; default: `text` split after each word. Joined, they should equal `text`. */
  chunks?: readonly string[];
  /** Default: a quarter of the prompt's characters. */
  promptTokens?: number;
  /** Default: a quarter of the text's characters. */
  completionTokens?: number;
  /** Reported as `prompt_tokens_details.cached_tokens`. */
  cachedTokens?: number;
  /** Reported as `usage.cost`, as OpenRouter does. */
  cost?: number;
  /** Extra fields merged into `usage` (e.g. DeepSeek's `prompt_cache_hit_tokens`). */
  usageExtra?: Record<string, unknown>;
  /**
   * When a stream carries usage: `requested` (default) only when `stream_options.include_usage`
   * asked for it, as OpenAI does; `always` in the last chunk regardless; `never`.
   */
  streamUsage?: 'requested' | 'always' | 'never';
  finishReason?: string;
  /** The model named in the answer; default the requested one. */
  model?: string;
  headers?: Record<string, string>;
  /** Milliseconds before the response headers. */
  delayMs?: number;
  /** Milliseconds between stream events. */
  chunkDelayMs?: number;
  /**
   * Stream this many content deltas, then reset the connection (streaming requests only). The
   * client may not have read the deltas by then, and a reset can discard what it has not read:
   * a test that needs them delivered passes `resetWhen`.
   */
  resetAfterChunks?: number;
  /** With `resetAfterChunks`: reset only once this settles, e.g. when the client has shown the deltas. */
  resetWhen?: PromiseLike<unknown>;
  /**
   * Stream this many content deltas, then send nothing more and hold the connection open until the
   * client goes away: for tests that abort or time out mid-stream. Streaming requests only.
   */
  stallAfterChunks?: number;
}

/** Any HTTP answer: `body` is sent as JSON, `rawBody` as is. */
export interface ScriptedHttpResponse {
  status: number;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

/** Status 200 and a body that is not JSON: the whole body, or one SSE `data:` line when streaming. */
export interface ScriptedMalformed {
  malformed: string;
  delayMs?: number;
}

/** Reset the connection without answering. */
export interface ScriptedReset {
  reset: true;
  delayMs?: number;
}

export type ScriptedReply = string | ScriptedCompletion | ScriptedHttpResponse | ScriptedMalformed | ScriptedReset;

export type ReplyScript = (body: ChatRequestBody, index: number, request: RecordedRequest) => ScriptedReply | Promise<ScriptedReply>;

export interface FakeOpenAIServerOptions {
  /**
   * Answer 400 to a request carrying a top-level field not in the list, as Groq and Fireworks have
   * done for `stream_options`. `true` allows {@link STRICT_ALLOWED_FIELDS}.
   */
  strict?: boolean | { allowedFields: readonly string[] };
}

/** The fields a strict server accepts by default: the core of the Chat Completions request. */
export const STRICT_ALLOWED_FIELDS: readonly string[] = ['model', 'messages', 'stream', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'stop'];

export interface FakeOpenAIServer {
  /** `http://127.0.0.1:<port>/v1` */
  baseURL: string;
  /** `http://127.0.0.1:<port>`, for clients that add their own path (Azure). */
  origin: string;
  /** Every request body, in arrival order (rejected and failed requests included). */
  requests: ChatRequestBody[];
  /** Every request with its method, URL and headers. */
  received: RecordedRequest[];
  /** Resolves with request `index` (0-based, in order of arrival) once it has arrived and been recorded. */
  whenReceived(index?: number): Promise<RecordedRequest>;
  /**
   * Resolves once the client closed the connection of request `index` before its answer was
   * complete (an abort, a timeout). Not when the server itself resets it or closes.
   */
  whenAbandoned(index?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFakeOpenAIServer(script: ReplyScript, options: FakeOpenAIServerOptions = {}): Promise<FakeOpenAIServer> {
  const requests: ChatRequestBody[] = [];
  const received: RecordedRequest[] = [];
  const allowed = options.strict === true ? STRICT_ALLOWED_FIELDS : options.strict ? options.strict.allowedFields : undefined;
  const arrivals = perRequest<RecordedRequest>();
  const abandonments = perRequest<void>();
  let closing = false;

  const server: Server = createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url?.split('?')[0]?.endsWith('/chat/completions')) {
      sendJson(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'invalid_request_error' } });
      return;
    }
    let body: ChatRequestBody;
    try {
      body = JSON.parse(await readBody(req)) as ChatRequestBody;
    } catch {
      sendJson(res, 400, { error: { message: 'the request body is not JSON', type: 'invalid_request_error' } });
      return;
    }
    const index = requests.length;
    const recorded: RecordedRequest = { method: req.method, url: req.url, headers: req.headers, body };
    requests.push(body);
    received.push(recorded);
    res.on('close', () => {
      if (!res.writableFinished && !hungUp.has(res) && !closing) abandonments.settle(index, undefined);
    });
    arrivals.settle(index, recorded);

    const unknown = allowed ? Object.keys(body).filter((key) => !allowed.includes(key)) : [];
    if (unknown.length > 0) {
      sendJson(res, 400, { error: { message: `property '${unknown[0]}' is unsupported`, type: 'invalid_request_error', param: unknown[0] } });
      return;
    }

    let reply: ScriptedReply;
    try {
      reply = await script(body, index, recorded);
    } catch (error) {
      reply = { status: 500, body: { error: { message: errorMessage(error), type: 'server_error' } } };
    }
    try {
      await answer(req, res, body, index, reply);
    } catch {
      res.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const origin = `http://127.0.0.1:${port}`;
  return {
    baseURL: `${origin}/v1`,
    origin,
    requests,
    received,
    whenReceived: (index = 0) => arrivals.wait(index),
    whenAbandoned: (index = 0) => abandonments.wait(index),
    close: () =>
      new Promise((resolve) => {
        closing = true;
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Responses the server cut off on purpose: their close is not the client's doing. */
const hungUp = new WeakSet<ServerResponse>();

async function answer(req: IncomingMessage, res: ServerResponse, body: ChatRequestBody, index: number, reply: ScriptedReply): Promise<void> {
  if (typeof reply === 'object' && reply.delayMs) await sleep(reply.delayMs, res);
  if (res.destroyed) return;

  if (typeof reply === 'object' && 'reset' in reply) {
    hungUp.add(res);
    req.socket.resetAndDestroy();
    return;
  }
  if (typeof reply === 'object' && 'status' in reply) {
    const payload = reply.rawBody ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    res.writeHead(reply.status, { 'content-type': reply.rawBody === undefined ? 'application/json' : 'text/plain', ...reply.headers }).end(payload);
    return;
  }
  if (typeof reply === 'object' && 'malformed' in reply) {
    if (body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: ${reply.malformed}\n\n`);
    } else {
      res.writeHead(200, { 'content-type': 'application/json' }).end(reply.malformed);
    }
    return;
  }

  const completion: ScriptedCompletion = typeof reply === 'string' ? { text: reply } : reply;
  const id = `chatcmpl-${index}`;
  const created = Math.floor(Date.now() / 1000);
  const model = completion.model ?? body.model;
  const usage = usageOf(body, completion);
  const finishReason = completion.finishReason ?? 'stop';

  if (!body.stream) {
    res.writeHead(200, { 'content-type': 'application/json', ...completion.headers }).end(
      JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: completion.text }, finish_reason: finishReason }],
        usage,
      }),
    );
    return;
  }

  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({ id, object: 'chat.completion.chunk', created, model, choices, ...extra });
  const deltas = completion.chunks ?? completion.text.match(/\S+\s*|\s+/g) ?? [];
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...completion.headers });
  const send = async (event: unknown) => {
    if (completion.chunkDelayMs) await sleep(completion.chunkDelayMs, res);
    if (res.destroyed) return false;
    res.write(`data: ${JSON.stringify(event)}\n\n`);
    return true;
  };

  if (!(await send(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }])))) return;
  for (const [n, delta] of deltas.entries()) {
    if (completion.resetAfterChunks !== undefined && n >= completion.resetAfterChunks) {
      await completion.resetWhen;
      hungUp.add(res);
      req.socket.resetAndDestroy();
      return;
    }
    if (n === completion.stallAfterChunks) return; // the response stays open until the client leaves
    if (!(await send(chunk([{ index: 0, delta: { content: delta }, finish_reason: null }])))) return;
  }
  if (completion.stallAfterChunks !== undefined) return;
  const streamUsage = completion.streamUsage ?? 'requested';
  const includeUsage = streamUsage === 'always' || (streamUsage === 'requested' && body.stream_options?.include_usage === true);
  if (!(await send(chunk([{ index: 0, delta: {}, finish_reason: finishReason }])))) return;
  if (includeUsage && !(await send(chunk([], { usage })))) return;
  res.end('data: [DONE]\n\n');
}

function usageOf(body: ChatRequestBody, completion: ScriptedCompletion): Record<string, unknown> {
  const promptChars = body.messages.reduce((n, m) => n + (typeof m.content === 'string' ? m.content.length : 0), 0);
  const promptTokens = completion.promptTokens ?? Math.ceil(promptChars / 4);
  const completionTokens = completion.completionTokens ?? Math.ceil(completion.text.length / 4);
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    ...(completion.cachedTokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: completion.cachedTokens } }),
    ...(completion.cost === undefined ? {} : { cost: completion.cost }),
    ...completion.usageExtra,
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** Waits `ms`, or less if the client goes away first. */
function sleep(ms: number, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      res.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    res.once('close', done);
  });
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
