/**
 * The Chat Completions backend with the real `openai` SDK against a local server speaking the
 * protocol (JSON and SSE). Nothing here leaves 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError } from '../errors.js';
import {
  closedLoopbackPort,
  startFakeOpenAIServer,
  STRICT_ALLOWED_FIELDS,
  type FakeOpenAIServer,
  type FakeOpenAIServerOptions,
  type ReplyScript,
} from '../testing/fake-openai-server.js';
import { ModelCallError, type CompletionRequest } from './model-backend.js';
import {
  chatCompletionParams,
  createOpenAICompatibleBackend,
  isReasoningModel,
  OPENAI_DIALECT,
  type ChatDialect,
  type OpenAICompatibleOptions,
} from './openai-compatible-backend.js';
import { OPENAI_COMPATIBLE_PRESETS, createPresetBackend } from './openai-presets.js';
import { manualClock } from '../testing/manual-clock.js';

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function serve(script: ReplyScript, options?: FakeOpenAIServerOptions): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(script, options);
  servers.push(server);
  return server;
}

/** Retries without real waiting, unless a test asks for it. */
const fastRetries = { initialDelayMs: 1, maxDelayMs: 5 } as const;

function backendFor(server: FakeOpenAIServer, options: OpenAICompatibleOptions = {}) {
  return createOpenAICompatibleBackend({ baseURL: server.baseURL, apiKey: 'sk-test', ...fastRetries, ...options });
}

const ask = (model = 'gpt-4.1-mini', extra: Partial<CompletionRequest> = {}): CompletionRequest => ({
  model,
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Hi' }],
  ...extra,
});

async function failureOf(promise: Promise<unknown>): Promise<ModelCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelCallError);
  return error as ModelCallError;
}

const sse = (...events: unknown[]) => events.map((e) => `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`).join('');

describe('streaming', () => {
  it('assembles the text from the deltas and forwards each delta in order', async () => {
    const server = await serve(() => ({ text: 'Hello there, world', chunks: ['Hel', 'lo ', 'there, ', 'world'] }));
    const deltas: string[] = [];
    const response = await backendFor(server).complete(ask(), { onTextDelta: (d) => deltas.push(d) });
    expect(deltas).toEqual(['Hel', 'lo ', 'there, ', 'world']);
    expect(response.text).toBe('Hello there, world');
    expect(response.stopReason).toBe('stop');
    expect(response.model).toBe('gpt-4.1-mini');
    expect(server.requests[0]).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(server.requests[0]?.messages).toEqual([
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ]);
  });

  it('reads usage, cached tokens included, from the final usage chunk', async () => {
    const server = await serve(() => ({ text: 'ok', promptTokens: 1200, completionTokens: 30, cachedTokens: 1000 }));
    const response = await backendFor(server).complete(ask(), {});
    expect(response.usage).toEqual({ inputTokens: 1200, outputTokens: 30, cacheReadTokens: 1000 });
  });

  it("reports OpenRouter's usage.cost as reportedCostUsd", async () => {
    const server = await serve(() => ({ text: 'ok', promptTokens: 10, completionTokens: 2, cost: 0.00042 }));
    const backend = createPresetBackend('openrouter', { baseURL: server.baseURL, apiKey: 'sk-or-test' });
    const response = await backend.complete(ask('anthropic/claude-sonnet-4.5'), {});
    expect(response.usage).toEqual({ inputTokens: 10, outputTokens: 2, reportedCostUsd: 0.00042 });
  });

  it("reads DeepSeek's prompt_cache_hit_tokens as cache reads", async () => {
    const server = await serve(() => ({
      text: 'ok',
      promptTokens: 500,
      completionTokens: 5,
      usageExtra: { prompt_cache_hit_tokens: 384, prompt_cache_miss_tokens: 116 },
    }));
    const response = await createPresetBackend('deepseek', { baseURL: server.baseURL, apiKey: 'sk-ds' }).complete(ask('deepseek-chat'), {});
    expect(response.usage).toEqual({ inputTokens: 500, outputTokens: 5, cacheReadTokens: 384 });
  });

  it("reads Groq's x_groq.usage when stream_options was not sent", async () => {
    const chunk = (extra: object) => ({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'llama-3.3-70b-versatile', ...extra });
    const body = sse(
      chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' }, finish_reason: null }] }),
      chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], x_groq: { usage: { prompt_tokens: 40, completion_tokens: 3, total_tokens: 43 } } }),
      '[DONE]',
    );
    const server = await serve(() => ({ status: 200, rawBody: body, headers: { 'content-type': 'text/event-stream' } }));
    const response = await createPresetBackend('groq', { baseURL: server.baseURL, apiKey: 'gsk' }).complete(ask('llama-3.3-70b-versatile'), {});
    expect(response).toMatchObject({ text: 'Hi', usage: { inputTokens: 40, outputTokens: 3 } });
    expect(server.requests[0]).not.toHaveProperty('stream_options');
  });

  it('reports zero usage when a stream carries none', async () => {
    const server = await serve(() => ({ text: 'ok', streamUsage: 'never' }));
    const response = await backendFor(server).complete(ask(), {});
    expect(response.usage).toEqual({ inputTokens: 0, outputTokens: 0 });
  });

  it('fetches one JSON body when streaming is off, and calls onTextDelta once with the whole text', async () => {
    const server = await serve(() => ({ text: 'whole answer', promptTokens: 7, completionTokens: 2, cachedTokens: 4 }));
    const deltas: string[] = [];
    const response = await backendFor(server, { stream: false }).complete(ask(), { onTextDelta: (d) => deltas.push(d) });
    expect(response).toMatchObject({ text: 'whole answer', usage: { inputTokens: 7, outputTokens: 2, cacheReadTokens: 4 }, stopReason: 'stop' });
    expect(deltas).toEqual(['whole answer']);
    expect(server.requests[0]).not.toHaveProperty('stream');
    expect(server.requests[0]).not.toHaveProperty('stream_options');
  });
});

describe('retries and errors', () => {
  it('waits what retry-after-ms asks on a 429 instead of its own backoff, then succeeds', async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 429, headers: { 'retry-after-ms': '300' }, body: { error: { message: 'Rate limit reached', type: 'rate_limit_error' } } }
        : 'recovered',
    );
    const time = manualClock();
    // Its own backoff would be 20 s.
    const response = await backendFor(server, { initialDelayMs: 20_000, maxDelayMs: 20_000, clock: time.clock }).complete(ask(), {});
    expect(response.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
    expect(time.delays).toEqual([300]);
  });

  it('reads retry-after in seconds and marks a final 429 retryable', async () => {
    const server = await serve(() => ({ status: 429, headers: { 'retry-after': '7' }, body: { error: { message: 'Slow down' } } }));
    const error = await failureOf(backendFor(server, { maxRetries: 0 }).complete(ask(), {}));
    expect(error.details).toMatchObject({ statusCode: 429, isRetryable: true, retryAfterMs: 7_000 });
  });

  it('retries a 500, then succeeds', async () => {
    const server = await serve((_, index) =>
      index === 0 ? { status: 500, body: { error: { message: 'The server had an error', type: 'server_error' } } } : 'fine',
    );
    const response = await backendFor(server).complete(ask(), {});
    expect(response.text).toBe('fine');
    expect(server.requests).toHaveLength(2);
  });

  it("surfaces a 401 at once with the provider's message, the backend and the model", async () => {
    const server = await serve(() => ({ status: 401, body: { error: { message: 'Incorrect API key provided: sk-wrong', type: 'invalid_request_error' } } }));
    const error = await failureOf(backendFor(server, { name: 'openai' }).complete(ask('gpt-5'), {}));
    expect(error.message).toBe('openai gpt-5: HTTP 401: Incorrect API key provided: sk-wrong; the provider refused the API key: check the apiKey option');
    expect(error).toMatchObject({ backend: 'openai', model: 'gpt-5', details: { statusCode: 401, isRetryable: false } });
    expect(server.requests).toHaveLength(1);
  });

  it.each([400, 403, 404])('does not retry HTTP %i', async (status) => {
    const server = await serve(() => ({ status, body: { error: { message: `no (${status})` } } }));
    const error = await failureOf(backendFor(server).complete(ask(), {}));
    expect(error.message).toContain(`HTTP ${status}: no (${status})`);
    expect(server.requests).toHaveLength(1);
  });

  it("quotes an error body that is not OpenAI's shape (vLLM's {message}, plain text)", async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 404, body: { object: 'error', message: 'The model `qwen9` does not exist.', type: 'NotFoundError', code: 404 } }
        : { status: 403, rawBody: 'Forbidden by proxy policy' },
    );
    const backend = backendFor(server, { name: 'vllm' });
    expect((await failureOf(backend.complete(ask('qwen9'), {}))).message).toMatch(/^vllm qwen9: HTTP 404: The model `qwen9` does not exist; /);
    expect((await failureOf(backend.complete(ask('qwen9'), {}))).message).toMatch(/^vllm qwen9: HTTP 403: Forbidden by proxy policy; /);
  });

  it('fails a response that does not come within timeoutMs, as retryable, naming the setting', async () => {
    // Longer than the test's own timeout: only timeoutMs can end this call.
    const server = await serve(() => ({ text: 'too late', delayMs: 60_000 }));
    const error = await failureOf(backendFor(server, { timeoutMs: 50, maxRetries: 0 }).complete(ask(), {}));
    expect(error.message).toBe("openai gpt-4.1-mini: no answer within timeoutMs (50 ms); raise the backend's timeoutMs for slow models");
    expect(error.details.isRetryable).toBe(true);
  });

  it('fails a stream that stalls past timeoutMs instead of returning the partial text, and closes the connection', async () => {
    const server = await serve(() => ({ text: 'one two three four five', stallAfterChunks: 2 }));
    const time = manualClock();
    const deltas: string[] = [];
    const onTextDelta = (delta: string) => {
      deltas.push(delta);
      if (deltas.length === 2) time.expireAttempt();
    };
    const error = await failureOf(backendFor(server, { timeoutMs: 30_000, maxRetries: 0, clock: time.clock }).complete(ask(), { onTextDelta }));
    expect(error.message).toMatch(/no answer within timeoutMs \(30000 ms\)/);
    expect(deltas).toEqual(['one ', 'two ']);
    await server.whenAbandoned(0);
  });

  it('reports a malformed stream event with the body it read, without retrying', async () => {
    const server = await serve(() => ({ malformed: '{"choices": [ this is not json' }));
    const error = await failureOf(backendFor(server).complete(ask(), {}));
    expect(error.message).toMatch(/^openai gpt-4\.1-mini: malformed response: /);
    expect(error.details.responseBody).toContain('this is not json');
    expect(error.details.isRetryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('reports a malformed JSON body when streaming is off', async () => {
    const server = await serve(() => ({ malformed: '<html>502 Bad Gateway</html>' }));
    const error = await failureOf(backendFor(server, { stream: false }).complete(ask(), {}));
    expect(error.message).toMatch(/malformed response/);
    expect(error.details.responseBody).toContain('502 Bad Gateway');
  });

  it('reports a chunk that does not fit the protocol, quoting it', async () => {
    const server = await serve(() => ({ status: 200, rawBody: sse({ choices: 'nope' }, '[DONE]'), headers: { 'content-type': 'text/event-stream' } }));
    const error = await failureOf(backendFor(server).complete(ask(), {}));
    expect(error.message).toMatch(/does not fit the Chat Completions protocol: choices/);
    expect(error.details.responseBody).toContain('"choices":"nope"');
  });

  it('explains a 200 that is not a stream at all (a wrong base URL serving a web page)', async () => {
    const server = await serve(() => ({ status: 200, rawBody: '<!doctype html><title>Welcome</title>', headers: { 'content-type': 'text/html' } }));
    const error = await failureOf(backendFor(server).complete(ask(), {}));
    expect(error.message).toMatch(/no stream events; check baseURL, or set stream: false/);
    expect(error.details.responseBody).toContain('<title>Welcome</title>');
  });

  it('retries a connection reset mid-stream and returns the retry’s whole answer', async () => {
    let partialShown = () => {};
    const resetWhen = new Promise<void>((resolve) => (partialShown = resolve));
    const server = await serve((_, index) =>
      index === 0 ? { text: 'partial answer that breaks', resetAfterChunks: 2, resetWhen } : { text: 'the full answer' },
    );
    const deltas: string[] = [];
    const onTextDelta = (delta: string) => {
      deltas.push(delta);
      if (deltas.length === 2) partialShown();
    };
    const response = await backendFor(server).complete(ask(), { onTextDelta });
    expect(response.text).toBe('the full answer');
    expect(server.requests).toHaveLength(2);
    // The broken attempt's text was shown as it came; the retry's follows it.
    expect(deltas.join('')).toBe('partial answer the full answer');
  });

  it('marks a connection reset retryable and says so when retries run out', async () => {
    const server = await serve(() => ({ reset: true }));
    const error = await failureOf(backendFor(server, { maxRetries: 1 }).complete(ask(), {}));
    expect(error.message).toMatch(/^openai gpt-4\.1-mini: the connection to http:\/\/127\.0\.0\.1:\d+\/v1 failed: .*ECONNRESET.*\(after 2 attempts\)$/);
    expect(error.details).toMatchObject({ isRetryable: true, attempts: 2 });
    expect(server.requests).toHaveLength(2);
  });

  it('retries an error event inside a stream when its code is retryable', async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 200, rawBody: sse({ error: { message: 'Upstream overloaded', code: 502 } }), headers: { 'content-type': 'text/event-stream' } }
        : 'second try',
    );
    const response = await backendFor(server).complete(ask(), {});
    expect(response.text).toBe('second try');
  });

  it('cancels a request in flight when the caller aborts, as AbortedError, and closes the connection', async () => {
    // Longer than the test's own timeout: only the abort can end this call.
    const server = await serve(() => ({ text: 'slow', delayMs: 60_000 }));
    const controller = new AbortController();
    const call = backendFor(server).complete(ask(), { signal: controller.signal });
    await server.whenReceived(0);
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(1);
    await server.whenAbandoned(0);
  });
});

describe('failures no retry can fix end the call at once, saying what to check', () => {
  const openaiError = (message: string, type: string, code: string | null = null) => ({ error: { message, type, param: null, code } });
  /** Counts the attempts that reach the network, passing them on to the real fetch. */
  const countingFetch = () => {
    const counter = {
      attempts: 0,
      fetch: ((input, init) => {
        counter.attempts += 1;
        return fetch(input, init);
      }) as typeof fetch,
    };
    return counter;
  };

  it("a refused key (401) is `auth`, fatal, tried once, and names the preset's key variable", async () => {
    const server = await serve(() => ({ status: 401, body: openaiError('No auth credentials found', 'invalid_request_error') }));
    // The default retries (4): a refused key must not use them.
    const backend = createPresetBackend('openrouter', { baseURL: server.baseURL, env: { OPENROUTER_API_KEY: 'sk-or-revoked' } });
    const error = await failureOf(backend.complete(ask('openai/gpt-5-mini'), {}));

    expect(error).toMatchObject({ kind: 'auth', fatal: true, backend: 'openrouter', baseUrl: server.baseURL, details: { statusCode: 401, attempts: 1 } });
    expect(error.message).toBe('openrouter openai/gpt-5-mini: HTTP 401: No auth credentials found; the provider refused the API key: check OPENROUTER_API_KEY');
    expect(server.requests).toHaveLength(1);
  });

  it('a refused key names the variable apiKeyEnv chose, the apiKey option, or the variable to set when no key was sent', async () => {
    const server = await serve(() => ({ status: 401, body: openaiError('Incorrect API key provided', 'invalid_request_error', 'invalid_api_key') }));
    const fromVariable = createOpenAICompatibleBackend({ baseURL: server.baseURL, apiKeyEnv: 'TEAM_OPENAI_KEY', env: { TEAM_OPENAI_KEY: 'sk-x' } });
    expect((await failureOf(fromVariable.complete(ask(), {}))).message).toMatch(/; the provider refused the API key: check TEAM_OPENAI_KEY$/);
    const fromOption = backendFor(server);
    expect((await failureOf(fromOption.complete(ask(), {}))).message).toMatch(/; the provider refused the API key: check the apiKey option$/);
    const none = createPresetBackend('vllm', { baseURL: server.baseURL, env: {} });
    const error = await failureOf(none.complete(ask('qwen3-8b'), {}));
    expect(error).toMatchObject({ kind: 'auth', fatal: true });
    expect(error.message).toMatch(/; the server wants an API key and none was sent: set VLLM_API_KEY$/);
    expect(server.requests).toHaveLength(3);
  });

  it('a forbidden model (403) is `permission`, fatal, tried once, and says the key may not use it', async () => {
    const server = await serve(() => ({ status: 403, body: openaiError('You are not allowed to sample from this model', 'invalid_request_error') }));
    const backend = createPresetBackend('openai', { baseURL: server.baseURL, env: { OPENAI_API_KEY: 'sk-proj-x' } });
    const error = await failureOf(backend.complete(ask('o3-pro'), {}));

    expect(error).toMatchObject({ kind: 'permission', fatal: true, baseUrl: server.baseURL, details: { statusCode: 403, attempts: 1 } });
    expect(error.message).toBe(
      'openai o3-pro: HTTP 403: You are not allowed to sample from this model; ' +
        `the API key (from OPENAI_API_KEY) may not use the model "o3-pro" or the endpoint ${server.baseURL}: ` +
        "check the key's access with the provider, or choose another model (--model or --sub-model, or model: in the config file)",
    );
    expect(server.requests).toHaveLength(1);
  });

  it("an unknown model (OpenAI's 404 model_not_found) is `model_not_found`, fatal, tried once, naming the model, the base URL and the settings", async () => {
    const server = await serve(() => ({
      status: 404,
      body: openaiError('The model `gpt-9` does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found'),
    }));
    const error = await failureOf(backendFor(server, { maxRetries: 4 }).complete(ask('gpt-9'), {}));

    expect(error).toMatchObject({ kind: 'model_not_found', fatal: true, model: 'gpt-9', baseUrl: server.baseURL, details: { statusCode: 404, attempts: 1 } });
    expect(error.message).toBe(
      'openai gpt-9: HTTP 404: The model `gpt-9` does not exist or you do not have access to it; ' +
        `${server.baseURL} does not know the model "gpt-9": check the model name (--model or --sub-model, or model: in the config file)`,
    );
    expect(server.requests).toHaveLength(1);
  });

  it("an unknown model reported with a 400 (OpenRouter's wording, a model_not_found code) is `model_not_found` too", async () => {
    const server = await serve((_, index) =>
      index === 0
        ? { status: 400, body: { error: { message: 'openai/gpt-9 is not a valid model ID', code: 400 } } }
        : { status: 400, body: openaiError('Unknown thing', 'invalid_request_error', 'model_not_found') },
    );
    const backend = backendFor(server);
    expect(await failureOf(backend.complete(ask('openai/gpt-9'), {}))).toMatchObject({ kind: 'model_not_found', fatal: true });
    expect(await failureOf(backend.complete(ask('openai/gpt-9'), {}))).toMatchObject({ kind: 'model_not_found', fatal: true });
    expect(server.requests).toHaveLength(2);
  });

  it('a 404 that names no model (a base URL missing part of its path) also points at the base URL', async () => {
    const server = await serve(() => ({ status: 404, rawBody: '404 page not found' }));
    const error = await failureOf(backendFor(server).complete(ask(), {}));
    expect(error.kind).toBe('model_not_found');
    expect(error.message).toMatch(/, or the base URL if the model name is right \(check --base-url /);
  });

  it('a refused connection is retried at most twice, even with more retries allowed, then is `unreachable` and fatal', async () => {
    const baseURL = `http://127.0.0.1:${await closedLoopbackPort()}/v1`;
    const counter = countingFetch();
    const time = manualClock();
    const backend = createPresetBackend('vllm', { baseURL, fetch: counter.fetch, maxRetries: 10, clock: time.clock });
    const error = await failureOf(backend.complete(ask('qwen3-8b'), {}));

    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: baseURL, details: { attempts: 3, isRetryable: false } });
    expect(error.message).toBe(
      `vllm qwen3-8b: cannot connect to ${baseURL} (connection refused) after 3 attempts: is the server running? ` +
        "check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)",
    );
    expect(counter.attempts).toBe(3);
    expect(time.delays).toHaveLength(2);
  });

  it('a refused connection with the default options fails after 3 attempts', async () => {
    const baseURL = `http://127.0.0.1:${await closedLoopbackPort()}/v1`;
    const counter = countingFetch();
    const error = await failureOf(createOpenAICompatibleBackend({ baseURL, apiKey: 'k', fetch: counter.fetch }).complete(ask(), {}));
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, details: { attempts: 3 } });
    expect(counter.attempts).toBe(3);
  });

  it('an unknown host is `unreachable`, fatal, tried once, and says to check the base URL', async () => {
    // Fails the way undici does for a name that does not resolve, so no DNS query leaves this machine.
    let attempts = 0;
    const unknownHost: typeof fetch = async () => {
      attempts += 1;
      throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
    };
    const backend = createPresetBackend('custom', { baseURL: 'http://llm.nowhere.invalid:8000/v1', fetch: unknownHost });
    const error = await failureOf(backend.complete(ask('mistral-small'), {}));

    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: 'http://llm.nowhere.invalid:8000/v1', details: { attempts: 1 } });
    expect(error.message).toBe(
      'custom mistral-small: cannot resolve the host of http://llm.nowhere.invalid:8000/v1 (unknown host, ENOTFOUND); ' +
        "check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)",
    );
    expect(attempts).toBe(1);
  });

  it("an unknown host at a preset's own URL says it is the default and to check this machine's network", async () => {
    const unknownHost: typeof fetch = async () => {
      throw new TypeError('fetch failed', { cause: { code: 'ENOTFOUND' } });
    };
    const backend = createPresetBackend('groq', { apiKey: 'k', fetch: unknownHost });
    const error = await failureOf(backend.complete(ask('llama-3.3-70b-versatile'), {}));
    expect(error.message).toBe(
      'groq llama-3.3-70b-versatile: cannot resolve the host of https://api.groq.com/openai/v1 (unknown host, ENOTFOUND); ' +
        "that is groq's default base URL: check this machine's network (DNS, proxy, firewall), or set another with --base-url",
    );
  });

  it.each([
    [429, 'rate_limited', 2],
    [500, 'provider_error', 2],
    [503, 'provider_error', 2],
    [408, 'timeout', 2],
    [400, 'invalid_request', 1],
    [413, 'invalid_request', 1],
    [422, 'invalid_request', 1],
  ] as const)('HTTP %i ends as `%s`, not fatal, after %i attempt(s)', async (status, kind, attempts) => {
    const server = await serve(() => ({ status, body: openaiError(`status ${status}`, 'some_error') }));
    const error = await failureOf(backendFor(server, { maxRetries: 1 }).complete(ask(), {}));
    expect(error).toMatchObject({ kind, fatal: false, baseUrl: server.baseURL, details: { statusCode: status, attempts } });
    expect(server.requests).toHaveLength(attempts);
  });

  it('a timeout is `timeout`, a dropped connection and a malformed answer `provider_error`; none is fatal', async () => {
    const server = await serve((_, index) =>
      index === 0 ? { text: 'a b c', stallAfterChunks: 1 } : index === 1 ? { reset: true } : { malformed: '{"choices": nope' },
    );
    const time = manualClock();
    const timedOut = await failureOf(backendFor(server, { maxRetries: 0, clock: time.clock }).complete(ask(), { onTextDelta: () => time.expireAttempt() }));
    expect(timedOut).toMatchObject({ kind: 'timeout', fatal: false, baseUrl: server.baseURL });
    expect(await failureOf(backendFor(server, { maxRetries: 0 }).complete(ask(), {}))).toMatchObject({ kind: 'provider_error', fatal: false });
    expect(await failureOf(backendFor(server, { maxRetries: 0 }).complete(ask(), {}))).toMatchObject({
      kind: 'provider_error',
      fatal: false,
      baseUrl: server.baseURL,
    });
  });
});

describe('which request fields are sent', () => {
  const preset = (name: keyof typeof OPENAI_COMPATIBLE_PRESETS): ChatDialect => ({ ...OPENAI_COMPATIBLE_PRESETS[name].dialect });
  const capped = (model: string) => ask(model, { maxOutputTokens: 256 });

  it('knows the reasoning models by the last segment of their id', () => {
    for (const model of ['o1', 'o1-mini', 'o3', 'o3-pro', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5.1', 'openai/o3', '@openai/gpt-5-nano'])
      expect(isReasoningModel(model), model).toBe(true);
    for (const model of ['gpt-4o', 'gpt-4.1-mini', 'gpt-3.5-turbo', 'llama-3.3-70b-versatile', 'openai/gpt-oss-120b', 'deepseek-chat', 'omni-moderation', 'o'])
      expect(isReasoningModel(model), model).toBe(false);
  });

  // The decision table: dialect × model → the fields that go out.
  it.each([
    ['openai', 'gpt-5-mini', { max_completion_tokens: 256 }, ['max_tokens']],
    ['openai', 'gpt-4o', { max_completion_tokens: 256 }, ['max_tokens']],
    ['azure-openai', 'o3-mini', { max_completion_tokens: 256 }, ['max_tokens']],
    ['azure-openai', 'gpt-4o', { max_tokens: 256 }, ['max_completion_tokens']],
    ['openrouter', 'openai/o3', { max_tokens: 256 }, ['max_completion_tokens']],
    ['vllm', 'Qwen/Qwen3-8B', { max_tokens: 256 }, ['max_completion_tokens']],
    ['ollama', 'llama3.2', { max_tokens: 256 }, ['max_completion_tokens']],
    ['groq', 'llama-3.3-70b-versatile', { max_completion_tokens: 256 }, ['max_tokens', 'stream_options']],
    ['fireworks', 'accounts/fireworks/models/llama-v3p3-70b-instruct', { max_tokens: 256 }, ['stream_options']],
    ['custom', 'gpt-5', { max_completion_tokens: 256 }, ['max_tokens']],
    ['custom', 'mistral-small', { max_tokens: 256 }, ['max_completion_tokens']],
  ] as const)('%s with %s sends %o and not %o', (name, model, sent, notSent) => {
    const params = chatCompletionParams(capped(model), preset(name));
    expect(params).toMatchObject(sent);
    for (const field of notSent) expect(params).not.toHaveProperty(field);
  });

  it('lets tokenLimitParameter force the field', () => {
    expect(chatCompletionParams(capped('my-o3-deployment'), { ...preset('azure-openai'), tokenLimitParameter: 'max_completion_tokens' })).toMatchObject({
      max_completion_tokens: 256,
    });
    expect(chatCompletionParams(capped('gpt-5'), { ...preset('openai'), tokenLimitParameter: 'max_tokens' })).toMatchObject({ max_tokens: 256 });
  });

  it('sends no cap when neither the request nor defaultMaxOutputTokens sets one', () => {
    const params = chatCompletionParams(ask('gpt-4o'), preset('openai'));
    expect(params).not.toHaveProperty('max_tokens');
    expect(params).not.toHaveProperty('max_completion_tokens');
    expect(chatCompletionParams(ask('gpt-4o'), preset('openai'), { defaultMaxOutputTokens: 99 })).toMatchObject({ max_completion_tokens: 99 });
  });

  it('sends temperature only to models that take it', () => {
    expect(chatCompletionParams(ask('gpt-4o'), preset('openai'), { temperature: 0.2 })).toMatchObject({ temperature: 0.2 });
    expect(chatCompletionParams(ask('o3'), preset('openai'), { temperature: 0.2 })).not.toHaveProperty('temperature');
    expect(chatCompletionParams(ask('openai/gpt-5'), preset('openrouter'), { temperature: 0.2 })).not.toHaveProperty('temperature');
  });

  it('sends the reasoning effort in the shape each provider takes, and only where it is taken', () => {
    const effort = { reasoningEffort: 'low' } as const;
    expect(chatCompletionParams(ask('gpt-5'), preset('openai'), effort)).toMatchObject({ reasoning_effort: 'low' });
    expect(chatCompletionParams(ask('gpt-4o'), preset('openai'), effort)).not.toHaveProperty('reasoning_effort');
    expect(chatCompletionParams(ask('gemini-2.5-flash'), preset('gemini'), effort)).toMatchObject({ reasoning_effort: 'low' });
    const routed = chatCompletionParams(ask('anthropic/claude-sonnet-4.5'), preset('openrouter'), effort);
    expect(routed).toMatchObject({ reasoning: { effort: 'low' } });
    expect(routed).not.toHaveProperty('reasoning_effort');
    expect(chatCompletionParams(ask('openai/gpt-5'), preset('vercel'), effort)).toMatchObject({ reasoning: { effort: 'low' } });
  });

  it('refuses a reasoning effort for a provider that has none, when the backend is created', () => {
    expect(() => createPresetBackend('deepseek', { apiKey: 'k', reasoningEffort: 'high' })).toThrow(
      'deepseek: this provider takes no reasoning effort; remove reasoningEffort',
    );
  });

  it('never sends a strict server a field it rejects, on the presets that know it is strict', async () => {
    const server = await serve(() => 'ok', { strict: true });
    for (const name of ['groq', 'fireworks'] as const) {
      const backend = createPresetBackend(name, { baseURL: server.baseURL, apiKey: 'k', ...fastRetries });
      await expect(backend.complete(capped(OPENAI_COMPATIBLE_PRESETS[name].defaultModel ?? 'm'), {})).resolves.toMatchObject({ text: 'ok' });
    }
    // Any dialect can be told: stream_options off, and reasoning effort withheld from a non-reasoning model.
    const custom = createPresetBackend('custom', { baseURL: server.baseURL, streamOptions: false, ...fastRetries });
    await expect(custom.complete(capped('mistral-small'), {})).resolves.toMatchObject({ text: 'ok' });
    const openai = createOpenAICompatibleBackend({
      baseURL: server.baseURL,
      apiKey: 'k',
      streamOptions: false,
      reasoningEffort: 'high',
      temperature: 0.5,
      ...fastRetries,
    });
    await expect(openai.complete(capped('gpt-4o'), {})).resolves.toMatchObject({ text: 'ok' });
    for (const body of server.requests)
      expect(
        Object.keys(body).every((key) => STRICT_ALLOWED_FIELDS.includes(key)),
        JSON.stringify(body),
      ).toBe(true);
  });

  it("surfaces a strict server's rejection at once, naming the field", async () => {
    const server = await serve(() => 'ok', { strict: true });
    const error = await failureOf(createOpenAICompatibleBackend({ baseURL: server.baseURL, apiKey: 'k', ...fastRetries }).complete(ask('gpt-4o'), {}));
    expect(error.message).toBe("openai gpt-4o: HTTP 400: property 'stream_options' is unsupported");
    expect(server.requests).toHaveLength(1);
  });

  it('sends max_completion_tokens to a reasoning model and max_tokens to an older one, over the wire', async () => {
    const server = await serve(() => 'ok');
    const azureLike = backendFor(server, { tokenLimitParameter: 'auto' });
    await azureLike.complete(capped('o4-mini'), {});
    await azureLike.complete(capped('gpt-4o-mini'), {});
    expect(server.requests[0]).toMatchObject({ max_completion_tokens: 256 });
    expect(server.requests[0]).not.toHaveProperty('max_tokens');
    expect(server.requests[1]).toMatchObject({ max_tokens: 256 });
    expect(server.requests[1]).not.toHaveProperty('max_completion_tokens');
  });
});

describe('OPENAI_DIALECT', () => {
  it('is frozen, so no preset can change it by accident', () => {
    expect(Object.isFrozen(OPENAI_DIALECT)).toBe(true);
  });
});
