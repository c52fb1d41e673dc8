/**
 * A local server speaking OpenAI's Chat Completions protocol on 127.0.0.1, driven by a script, so
 * the real `openai` SDK can be tested without the internet. Records every request body.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  max_completion_tokens?: number;
  [key: string]: unknown;
}

/** What the script answers: a reply text (usage estimated), a full reply, or an HTTP error. */
export type ScriptedReply =
  | string
  | { text: string; promptTokens?: number; completionTokens?: number; cachedTokens?: number; cost?: number }
  | { status: number; body: unknown; headers?: Record<string, string> };

export interface FakeOpenAIServer {
  /** `http://127.0.0.1:<port>/v1` */
  baseURL: string;
  requests: ChatRequestBody[];
  close(): Promise<void>;
}

export async function startFakeOpenAIServer(script: (body: ChatRequestBody, index: number) => ScriptedReply | Promise<ScriptedReply>): Promise<FakeOpenAIServer> {
  const requests: ChatRequestBody[] = [];
  const server: Server = createServer(async (req, res) => {
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `no route ${req.method} ${req.url}` } }));
      return;
    }
    const body = JSON.parse(await readBody(req)) as ChatRequestBody;
    const index = requests.length;
    requests.push(body);
    let reply: ScriptedReply;
    try {
      reply = await script(body, index);
    } catch (error) {
      reply = { status: 500, body: { error: { message: (error as Error).message, type: 'server_error' } } };
    }
    if (typeof reply === 'object' && 'status' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers }).end(JSON.stringify(reply.body));
      return;
    }
    const full = typeof reply === 'string' ? { text: reply } : reply;
    const promptChars = body.messages.reduce((n, m) => n + m.content.length, 0);
    const usage = {
      prompt_tokens: full.promptTokens ?? Math.ceil(promptChars / 4),
      completion_tokens: full.completionTokens ?? Math.ceil(full.text.length / 4),
      total_tokens: 0,
      ...(full.cachedTokens === undefined ? {} : { prompt_tokens_details: { cached_tokens: full.cachedTokens } }),
      ...(full.cost === undefined ? {} : { cost: full.cost }),
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        id: `chatcmpl-${index}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: full.text }, finish_reason: 'stop' }],
        usage,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
