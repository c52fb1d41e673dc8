/**
 * The engine end to end over HTTP: the real `openai` SDK against a local server speaking the Chat
 * Completions protocol, real sandboxes, sub-calls on another "provider".
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { RLM, createDockerClient, createOpenAICompatibleBackend } from 'rlm';
import { startFakeOpenAIServer, type FakeOpenAIServer } from './support/fake-openai-server.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';

const sandbox = { docker: createDockerClient(), image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS };
const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

const fence = (code: string) => `\`\`\`repl\n${code}\n\`\`\``;

describe('RLM over the OpenAI protocol', () => {
  it('answers a query over a document with sub-calls on a second server, never sending the context to the root', async () => {
    const document = Array.from({ length: 200 }, (_, i) => `line ${i}: ${i === 137 ? 'the vault code is 4711' : 'nothing here'}`).join('\n');
    const rootServer = await startFakeOpenAIServer((body, index) => {
      if (index === 0)
        return `I will split the document.\n${fence('const chunks = [];\nfor (let i = 0; i < context.length; i += 2000) chunks.push(context.slice(i, i + 2000));\nconst found = llm_query_batched(chunks.map((c) => "Find the vault code in:\\n" + c));\nprint(found.filter((f) => f !== "none").join("\\n"))')}`;
      const lastMessage = body.messages.at(-1)?.content ?? '';
      const code = /vault code is (\d+)/.exec(lastMessage)?.[1] ?? 'unknown';
      return { text: `The sub-model found it.\nFINAL(The vault code is ${code}.)`, promptTokens: 1200, completionTokens: 30, cachedTokens: 1000 };
    });
    const subServer = await startFakeOpenAIServer((body) => {
      const prompt = body.messages.at(-1)?.content ?? '';
      const match = /the vault code is \d+/.exec(prompt);
      return match ? match[0] : 'none';
    });
    servers.push(rootServer, subServer);

    const rlm = new RLM({
      root: { backend: createOpenAICompatibleBackend({ baseURL: rootServer.baseURL, apiKey: 'sk-test-root-key' }), model: 'gpt-5-mini' },
      sub: { backend: createOpenAICompatibleBackend({ name: 'vllm', baseURL: subServer.baseURL, requiresApiKey: false }), model: 'qwen3-8b' },
      sandbox,
    });
    const result = await rlm.completion({ context: document, query: 'What is the vault code?' });

    expect(result.answer).toBe('The vault code is 4711.');
    expect(result.success).toBe(true);
    expect(rootServer.requests).toHaveLength(2);
    expect(subServer.requests.length).toBe(Math.ceil(document.length / 2000));
    for (const request of rootServer.requests) {
      expect(JSON.stringify(request)).not.toContain('nothing here');
      expect(request.messages[0]?.role).toBe('system');
    }
    expect(result.usage['gpt-5-mini']).toMatchObject({ calls: 2, cacheReadTokens: 1000 });
    expect(result.usage['qwen3-8b']?.calls).toBe(subServer.requests.length);
    // gpt-5-mini has a list price; the local qwen3-8b has none, so the total is honestly unknown.
    expect(result.usage['gpt-5-mini']?.costUsd).toBeGreaterThan(0);
    expect(result.usage['qwen3-8b']?.costUsd).toBeNull();
    expect(result.costUsd).toBeNull();
  });

  it('turns a provider error on a sub-call into an error string and a 401 on the root into a failed run', async () => {
    const rootServer = await startFakeOpenAIServer(() => ({
      status: 401,
      body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } },
    }));
    servers.push(rootServer);
    const rlm = new RLM({
      root: { backend: createOpenAICompatibleBackend({ baseURL: rootServer.baseURL, apiKey: 'sk-wrong', maxRetries: 0 }), model: 'gpt-5' },
      sandbox,
      limits: { maxConsecutiveFailures: 1 },
    });
    const result = await rlm.completion({ context: 'x', query: 'q' });
    expect(result.success).toBe(false);
    expect(result.error?.message).toMatch(/HTTP 401.*Incorrect API key/);
  });
});
