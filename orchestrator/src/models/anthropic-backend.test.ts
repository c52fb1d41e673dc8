import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortedError, InvalidOptionError, RlmError } from '../errors.js';
import { startFakeAnthropicServer, type FakeAnthropicServer } from '../testing/fake-anthropic-server.js';
import { closedLoopbackPort } from '../testing/fake-openai-server.js';
import { costOf } from '../usage/pricing.js';
import { createAnthropicBackend, type AnthropicBackendOptions } from './anthropic-backend.js';
import { ModelCallError, type CompletionRequest } from './model-backend.js';
import { manualClock } from '../testing/manual-clock.js';

// Not claude-sonnet-4-5: the SDK warns on every call to a model near its end of life.
const MODEL = 'claude-sonnet-4-6';

let server: FakeAnthropicServer;
beforeEach(async () => {
  server = await startFakeAnthropicServer();
});
afterEach(async () => {
  await server.close();
});

/** A backend on the fake server; small delays so retries are quick. */
function backend(options: AnthropicBackendOptions = {}) {
  return createAnthropicBackend({ apiKey: 'sk-test', baseURL: server.url, env: {}, initialDelayMs: 5, ...options });
}

const conversation: CompletionRequest = {
  model: MODEL,
  system: 'You are a REPL agent.',
  messages: [
    { role: 'user', content: 'Count the lines.' },
    { role: 'assistant', content: 'Running code.' },
    { role: 'user', content: 'Output: 42' },
  ],
};

/** The body of the `index`-th request, as JSON. */
function sentBody(index = 0): Record<string, unknown> {
  const request = server.requests[index];
  if (!request) throw new Error(`no request ${index}; ${server.requests.length} received`);
  return request.body as Record<string, unknown>;
}

async function failure(promise: Promise<unknown>): Promise<ModelCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelCallError);
  return error as ModelCallError;
}

describe('createAnthropicBackend: streaming', () => {
  it('streams the answer: deltas reach onTextDelta in order and assemble into the text', async () => {
    server.enqueue({ textChunks: ['The ', 'answer ', 'is ', '42.'], stopReason: 'end_turn' });
    const deltas: string[] = [];
    const response = await backend().complete(conversation, { onTextDelta: (text) => deltas.push(text) });

    expect(deltas).toEqual(['The ', 'answer ', 'is ', '42.']);
    expect(response.text).toBe('The answer is 42.');
    expect(response.model).toBe(MODEL);
    expect(response.stopReason).toBe('end_turn');
    const request = server.requests[0];
    expect(request?.path).toBe('/v1/messages');
    expect(sentBody().stream).toBe(true);
    expect(request?.headers['anthropic-version']).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(request?.headers.authorization ?? request?.headers['x-api-key']).toContain('sk-test');
  });

  it('sends max_tokens from the request, else from the maxTokens option', async () => {
    await backend({ maxTokens: 2_000 }).complete({ ...conversation, maxOutputTokens: 300 }, {});
    await backend({ maxTokens: 2_000 }).complete(conversation, {});
    await backend().complete(conversation, {});
    expect([sentBody(0).max_tokens, sentBody(1).max_tokens, sentBody(2).max_tokens]).toEqual([300, 2_000, 16_384]);
  });
});

describe('createAnthropicBackend: prompt caching', () => {
  it('sends the system prompt as `system` and marks it and the last user message as cache breakpoints', async () => {
    await backend().complete(conversation, {});
    const body = sentBody();

    expect(body.system).toEqual([{ type: 'text', text: 'You are a REPL agent.', cache_control: { type: 'ephemeral' } }]);
    expect(body.messages).toEqual([
      { role: 'user', content: 'Count the lines.' },
      { role: 'assistant', content: 'Running code.' },
      { role: 'user', content: [{ type: 'text', text: 'Output: 42', cache_control: { type: 'ephemeral' } }] },
    ]);
  });

  it('marks the last user message even when an assistant prefill follows it', async () => {
    await backend().complete(
      {
        model: MODEL,
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: '{' },
        ],
      },
      {},
    );
    expect(sentBody().messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'Hi', cache_control: { type: 'ephemeral' } }] },
      { role: 'assistant', content: '{' },
    ]);
    expect(sentBody()).not.toHaveProperty('system');
  });

  it('sends no cache_control at all when promptCaching is false', async () => {
    await backend({ promptCaching: false }).complete(conversation, {});
    const body = sentBody();

    expect(body.system).toBe('You are a REPL agent.');
    expect(body.messages).toEqual(conversation.messages);
    expect(server.requests[0]?.rawBody).not.toContain('cache_control');
  });

  it('reports cache reads and writes in usage, counts them in inputTokens, and takes the final output count from message_delta', async () => {
    server.enqueue({
      text: 'done',
      usage: { input_tokens: 100, cache_creation_input_tokens: 2_000, cache_read_input_tokens: 5_000, output_tokens: 50 },
    });
    const { usage, model } = await backend().complete({ ...conversation, model: 'claude-sonnet-4-5' }, {});

    expect(usage).toEqual({ inputTokens: 7_100, outputTokens: 50, cacheReadTokens: 5_000, cacheWriteTokens: 2_000 });
    // claude-sonnet-4-5: $3/M input, $3.75/M cache write, $0.30/M cache read, $15/M output.
    const expected = (100 * 3 + 2_000 * 3.75 + 5_000 * 0.3 + 50 * 15) / 1_000_000;
    expect(costOf(model, usage)).toBeCloseTo(expected, 12);
  });
});

describe('createAnthropicBackend: retries', () => {
  it('waits what retry-after asks on a 429 instead of its own backoff, then succeeds', async () => {
    server.enqueue({ type: 'http', status: 429, headers: { 'retry-after': '1' } }, { text: 'after the wait' });
    const time = manualClock();
    const response = await backend({ initialDelayMs: 1, clock: time.clock }).complete(conversation, {});

    expect(response.text).toBe('after the wait');
    expect(server.requests).toHaveLength(2);
    // Our own backoff would have been 1 ms; the header asked for 1 s.
    expect(time.delays).toEqual([1_000]);
  });

  it('retries a 500, then succeeds', async () => {
    server.enqueue({ type: 'http', status: 500 }, { text: 'recovered' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('retries a 529 overloaded_error, then succeeds', async () => {
    server.enqueue({ type: 'http', status: 529, body: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } }, { text: 'recovered' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('retries an overloaded_error event in the middle of the stream, then succeeds', async () => {
    server.enqueue({ text: 'partial', streamEnd: { errorType: 'overloaded_error', message: 'Overloaded' } }, { text: 'whole answer' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('whole answer');
    expect(server.requests).toHaveLength(2);
  });

  it('retries a connection reset before any answer, then succeeds', async () => {
    server.enqueue({ type: 'reset' }, { text: 'recovered' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('names a connection failure as such when the retries run out', async () => {
    server.enqueue({ type: 'reset' }, { type: 'reset' });
    const error = await failure(backend({ maxRetries: 1 }).complete(conversation, {}));
    expect(error.message).toMatch(new RegExp(`^anthropic ${MODEL}: connection failed: .+ \\(after 2 attempts\\)$`));
    expect(error.details.isRetryable).toBe(true);
  });

  it('retries a stream cut off mid-answer, then succeeds', async () => {
    server.enqueue({ text: 'half an', streamEnd: 'reset' }, { text: 'half an answer, then whole' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('half an answer, then whole');
    expect(server.requests).toHaveLength(2);
  });

  it('retries a stream that ends cleanly before message_stop, then succeeds', async () => {
    server.enqueue({ text: 'half an', streamEnd: 'truncate' }, { text: 'whole' });
    const response = await backend().complete(conversation, {});
    expect(response.text).toBe('whole');
    expect(server.requests).toHaveLength(2);
  });

  it('obeys x-should-retry: false on a status it would otherwise retry', async () => {
    server.enqueue({ type: 'http', status: 503, headers: { 'x-should-retry': 'false' } });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.details).toMatchObject({ statusCode: 503, isRetryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it('gives up after maxRetries and says how many attempts were made', async () => {
    server.enqueue({ type: 'http', status: 503 }, { type: 'http', status: 503 }, { type: 'http', status: 503 });
    const error = await failure(backend({ maxRetries: 2 }).complete(conversation, {}));
    expect(error.message).toMatch(/HTTP 503.*after 3 attempts/);
    expect(server.requests).toHaveLength(3);
  });
});

describe('createAnthropicBackend: failures that surface at once', () => {
  it('fails a 401 at once with the provider message, the backend name and the model', async () => {
    server.enqueue({ type: 'http', status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } } });
    const error = await failure(backend().complete(conversation, {}));

    expect(error.message).toBe(
      `anthropic ${MODEL}: HTTP 401 authentication_error: invalid x-api-key; the provider refused the API key: check the apiKey option`,
    );
    expect(error.backend).toBe('anthropic');
    expect(error.model).toBe(MODEL);
    expect(error.details).toMatchObject({ statusCode: 401, isRetryable: false });
    expect(server.requests).toHaveLength(1);
  });

  it.each([400, 403, 404])('fails a %i at once, one request made', async (status) => {
    server.enqueue({ type: 'http', status });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toContain(`HTTP ${status}`);
    expect(error.details.statusCode).toBe(status);
    expect(server.requests).toHaveLength(1);
  });

  it('quotes an error body that is not JSON once, after the status', async () => {
    server.enqueue({ type: 'http', status: 400, body: 'upstream said no' });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toBe(`anthropic ${MODEL}: HTTP 400: upstream said no`);
    expect(error.details.responseBody).toBe('upstream said no');
  });

  it('fails at once on a non-retryable error event in the stream, with the provider message', async () => {
    server.enqueue({ text: 'partial', streamEnd: { errorType: 'invalid_request_error', message: 'prompt is too long' } });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toBe(`anthropic ${MODEL}: invalid_request_error during the stream: prompt is too long`);
    expect(error.details.isRetryable).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('fails a malformed stream event without retrying, quoting the raw event', async () => {
    server.enqueue({ type: 'raw', body: 'event: message_start\ndata: {"type":"message_start","message":{oops\n\n' });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toMatch(/malformed response: an event is not JSON/);
    expect(error.details.responseBody).toBe('{"type":"message_start","message":{oops');
    expect(server.requests).toHaveLength(1);
  });

  it('fails an event that does not match the API shape, naming the field', async () => {
    server.enqueue({ type: 'raw', body: 'event: message_start\ndata: {"type":"message_start","message":{"usage":{}}}\n\n' });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toMatch(/message_start event does not match the API: message\.model/);
    expect(server.requests).toHaveLength(1);
  });

  it('fails a stream that never reports output_tokens, naming the missing count', async () => {
    const event = (name: string, data: unknown) => `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
    server.enqueue({
      type: 'raw',
      body:
        event('message_start', { type: 'message_start', message: { model: MODEL, usage: { input_tokens: 5 } } }) +
        event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: {} }) +
        event('message_stop', { type: 'message_stop' }),
    });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toMatch(/streamed message is incomplete: usage\.output_tokens: no output_tokens/);
    expect(server.requests).toHaveLength(1);
  });

  it('fails a body that is not an event stream, quoting it', async () => {
    server.enqueue({ type: 'raw', contentType: 'text/html', body: '<html>Bad gateway config</html>' });
    const error = await failure(backend().complete(conversation, {}));
    expect(error.message).toMatch(/expected an event stream, got text\/html/);
    expect(error.details.responseBody).toBe('<html>Bad gateway config</html>');
    expect(server.requests).toHaveLength(1);
  });

  it('fails a response that does not come within timeoutMs, as retryable, naming timeoutMs', async () => {
    // Longer than the test's own timeout: only timeoutMs can end this call.
    server.enqueue({ text: 'too late', delayMs: 60_000 });
    const error = await failure(backend({ timeoutMs: 50, maxRetries: 0 }).complete(conversation, {}));
    expect(error.message).toBe(`anthropic ${MODEL}: no answer within timeoutMs (50 ms); raise the backend's timeoutMs for slow models`);
    expect(error.details.isRetryable).toBe(true);
  });

  it('fails a stream that stalls past timeoutMs instead of returning the partial text, and closes the connection', async () => {
    server.enqueue({ textChunks: ['one ', 'two ', 'three'], stallAfterChunks: 1 });
    const time = manualClock();
    const deltas: string[] = [];
    const call = backend({ timeoutMs: 30_000, maxRetries: 0, clock: time.clock }).complete(conversation, {
      onTextDelta: (text) => {
        deltas.push(text);
        time.expireAttempt();
      },
    });

    const error = await failure(call);
    expect(error.message).toMatch(/no answer within timeoutMs \(30000 ms\)/);
    expect(deltas).toEqual(['one ']);
    await server.whenAbandoned(0);
  });
});

describe('createAnthropicBackend: failures no retry can fix end the call at once, saying what to check', () => {
  /** The backend as a user sets it up: the key from its variable, the default retries (4), no test backoff. */
  const asConfigured = (options: AnthropicBackendOptions = {}) =>
    createAnthropicBackend({ baseURL: server.url, env: { ANTHROPIC_API_KEY: 'sk-ant-revoked' }, ...options });

  it('a refused key (401) is `auth`, fatal, tried once, and names the variable the key came from', async () => {
    // Even when the API asks for a retry: a key it refused will be refused again.
    server.enqueue({
      type: 'http',
      status: 401,
      headers: { 'x-should-retry': 'true' },
      body: { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' } },
    });
    const error = await failure(asConfigured().complete(conversation, {}));

    expect(error).toMatchObject({ kind: 'auth', fatal: true, backend: 'anthropic', model: MODEL, baseUrl: server.url });
    expect(error.message).toBe(
      `anthropic ${MODEL}: HTTP 401 authentication_error: invalid x-api-key; the provider refused the API key: check ANTHROPIC_API_KEY`,
    );
    expect(error.details).toMatchObject({ statusCode: 401, isRetryable: false, attempts: 1 });
    expect(server.requests).toHaveLength(1);
  });

  it('a refused key names the variable apiKeyEnv chose', async () => {
    server.enqueue({ type: 'http', status: 401 });
    const error = await failure(asConfigured({ apiKeyEnv: 'WORK_ANTHROPIC_KEY', env: { WORK_ANTHROPIC_KEY: 'sk-ant-x' } }).complete(conversation, {}));
    expect(error.kind).toBe('auth');
    expect(error.message).toMatch(/; the provider refused the API key: check WORK_ANTHROPIC_KEY$/);
    expect(server.requests).toHaveLength(1);
  });

  it('a forbidden model (403) is `permission`, fatal, tried once, and says the key may not use it', async () => {
    server.enqueue({
      type: 'http',
      status: 403,
      body: { type: 'error', error: { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' } },
    });
    const error = await failure(asConfigured().complete(conversation, {}));

    expect(error).toMatchObject({ kind: 'permission', fatal: true, baseUrl: server.url });
    expect(error.message).toBe(
      `anthropic ${MODEL}: HTTP 403 permission_error: Your API key does not have permission to use the specified resource; ` +
        `the API key (from ANTHROPIC_API_KEY) may not use the model "${MODEL}" or the endpoint ${server.url}: ` +
        "check the key's access with the provider, or choose another model (--model or --sub-model, or model: in the config file)",
    );
    expect(server.requests).toHaveLength(1);
  });

  it('an unknown model (404 not_found_error) is `model_not_found`, fatal, tried once, naming the model, the base URL and the settings', async () => {
    server.enqueue({ type: 'http', status: 404, body: { type: 'error', error: { type: 'not_found_error', message: 'model: claude-nope-9' } } });
    const error = await failure(asConfigured().complete({ ...conversation, model: 'claude-nope-9' }, {}));

    expect(error).toMatchObject({ kind: 'model_not_found', fatal: true, model: 'claude-nope-9', baseUrl: server.url });
    expect(error.message).toBe(
      `anthropic claude-nope-9: HTTP 404 not_found_error: model: claude-nope-9; ${server.url} does not know the model "claude-nope-9": ` +
        'check the model name (--model or --sub-model, or model: in the config file)',
    );
    expect(server.requests).toHaveLength(1);
  });

  it('a 404 that names no model also points at the base URL, which may lack part of its path', async () => {
    server.enqueue({ type: 'http', status: 404, body: { type: 'error', error: { type: 'not_found_error', message: 'Not Found' } } });
    const error = await failure(asConfigured().complete(conversation, {}));
    expect(error.kind).toBe('model_not_found');
    expect(error.message).toMatch(/check the model name \(.*\), or the base URL if the model name is right \(check --base-url /);
  });

  it('an unknown model reported inside the stream is `model_not_found` too, not retried', async () => {
    server.enqueue({ text: 'x', streamEnd: { errorType: 'not_found_error', message: 'model: claude-nope-9' } });
    const error = await failure(asConfigured().complete(conversation, {}));
    expect(error).toMatchObject({ kind: 'model_not_found', fatal: true, baseUrl: server.url });
    expect(server.requests).toHaveLength(1);
  });

  it('a refused connection is retried at most twice, even with more retries allowed, then is `unreachable` and fatal', async () => {
    const port = await closedLoopbackPort();
    const baseURL = `http://127.0.0.1:${port}`;
    let attempts = 0;
    const counting: typeof fetch = (input, init) => {
      attempts += 1;
      return fetch(input, init);
    };
    const time = manualClock();
    const error = await failure(asConfigured({ baseURL, fetch: counting, maxRetries: 10, clock: time.clock }).complete(conversation, {}));

    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: baseURL, details: { attempts: 3, isRetryable: false } });
    expect(error.message).toBe(
      `anthropic ${MODEL}: cannot connect to ${baseURL} (connection refused) after 3 attempts: is the server running? ` +
        "check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)",
    );
    expect(attempts).toBe(3);
    expect(time.delays).toHaveLength(2);
  });

  it('a base URL from ANTHROPIC_BASE_URL is named as such when nothing listens there', async () => {
    const baseURL = `http://127.0.0.1:${await closedLoopbackPort()}`;
    const error = await failure(
      createAnthropicBackend({ env: { ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: baseURL }, maxRetries: 0 }).complete(conversation, {}),
    );
    expect(error.kind).toBe('unreachable');
    expect(error.message).toBe(
      `anthropic ${MODEL}: cannot connect to ${baseURL} (connection refused) after 1 attempt: is the server running? check ANTHROPIC_BASE_URL (or set --base-url)`,
    );
  });

  it('an unknown host is `unreachable`, fatal, tried once, and says to check the base URL', async () => {
    // Fails the way undici does for a name that does not resolve, so no DNS query leaves this machine.
    let attempts = 0;
    const unknownHost: typeof fetch = async () => {
      attempts += 1;
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('getaddrinfo ENOTFOUND api.nowhere.invalid'), {
          code: 'ENOTFOUND',
          syscall: 'getaddrinfo',
          hostname: 'api.nowhere.invalid',
        }),
      });
    };
    const error = await failure(asConfigured({ baseURL: 'https://api.nowhere.invalid', fetch: unknownHost }).complete(conversation, {}));

    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: 'https://api.nowhere.invalid', details: { attempts: 1 } });
    expect(error.message).toBe(
      `anthropic ${MODEL}: cannot resolve the host of https://api.nowhere.invalid (unknown host, ENOTFOUND); ` +
        "check --base-url (--sub-base-url for the sub model; baseURL in the config file or the backend's options)",
    );
    expect(attempts).toBe(1);
  });

  it.each([
    [429, 'rate_limited'],
    [529, 'provider_error'],
    [500, 'provider_error'],
    [400, 'invalid_request'],
    [413, 'invalid_request'],
  ] as const)('HTTP %i ends as `%s`, not fatal', async (status, kind) => {
    const retried = status === 429 || status >= 500;
    server.enqueue({ type: 'http', status }, { type: 'http', status });
    const error = await failure(backend({ maxRetries: 1 }).complete(conversation, {}));
    expect(error).toMatchObject({ kind, fatal: false, baseUrl: server.url, details: { statusCode: status, attempts: retried ? 2 : 1 } });
    expect(server.requests).toHaveLength(retried ? 2 : 1);
  });

  it('a timeout is `timeout`, a dropped connection and a malformed answer `provider_error`; none is fatal', async () => {
    const time = manualClock();
    server.enqueue({ textChunks: ['a ', 'b'], stallAfterChunks: 1 });
    const timedOut = await failure(backend({ maxRetries: 0, clock: time.clock }).complete(conversation, { onTextDelta: () => time.expireAttempt() }));
    expect(timedOut).toMatchObject({ kind: 'timeout', fatal: false, baseUrl: server.url });

    server.enqueue({ type: 'reset' });
    expect(await failure(backend({ maxRetries: 0 }).complete(conversation, {}))).toMatchObject({ kind: 'provider_error', fatal: false });

    server.enqueue({ type: 'raw', contentType: 'text/html', body: '<html>gateway</html>' });
    expect(await failure(backend({ maxRetries: 0 }).complete(conversation, {}))).toMatchObject({
      kind: 'provider_error',
      fatal: false,
      baseUrl: server.url,
    });
  });
});

describe('createAnthropicBackend: abort', () => {
  it('cancels the request mid-stream when the caller aborts, as AbortedError, and closes the connection', async () => {
    // The server sends one delta, then holds the stream open: only the abort can end this call.
    server.enqueue({ textChunks: ['one ', 'two ', 'three ', 'four'], stallAfterChunks: 1 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const call = backend().complete(conversation, {
      signal: controller.signal,
      onTextDelta: (text) => {
        deltas.push(text);
        controller.abort();
      },
    });

    await expect(call).rejects.toBeInstanceOf(AbortedError);
    expect(deltas).toEqual(['one ']);
    expect(server.requests).toHaveLength(1);
    await server.whenAbandoned(0);
  });
});

describe('createAnthropicBackend: extended thinking', () => {
  it('sends thinking with its budget and leaves the thinking out of the text and the deltas', async () => {
    server.enqueue({ thinking: 'Let me count the lines carefully.', text: 'There are 42.' });
    const deltas: string[] = [];
    const response = await backend({ thinking: { budgetTokens: 2_048 }, maxTokens: 8_000 }).complete(conversation, {
      onTextDelta: (text) => deltas.push(text),
    });

    expect(sentBody().thinking).toEqual({ type: 'enabled', budget_tokens: 2_048 });
    expect(sentBody().max_tokens).toBe(8_000);
    expect(response.text).toBe('There are 42.');
    expect(deltas.join('')).toBe('There are 42.');
  });

  it('raises max_tokens above the budget when the cap would not exceed it', async () => {
    await backend({ thinking: { budgetTokens: 4_000 } }).complete({ ...conversation, maxOutputTokens: 1_000 }, {});
    expect(sentBody().max_tokens).toBe(5_000);
  });

  it('rejects a budget below the API minimum when the backend is created', () => {
    expect(() => backend({ thinking: { budgetTokens: 100 } })).toThrow(InvalidOptionError);
    expect(() => backend({ thinking: { budgetTokens: 100 } })).toThrow(/thinking\.budgetTokens: .*at least 1024/);
  });
});

describe('createAnthropicBackend: API key', () => {
  it('fails with one line naming ANTHROPIC_API_KEY when no key is given and the variable is unset', () => {
    const create = () => createAnthropicBackend({ env: {} });
    expect(create).toThrow(RlmError);
    expect(create).toThrow(/^apiKey: anthropic has no API key; set ANTHROPIC_API_KEY$/);
  });

  it('reads the key from the variable apiKeyEnv names', async () => {
    const named = createAnthropicBackend({ env: { MY_KEY: 'sk-from-env' }, apiKeyEnv: 'MY_KEY', baseURL: server.url });
    await named.complete(conversation, {});
    const headers = server.requests[0]?.headers;
    expect(headers?.authorization ?? headers?.['x-api-key']).toContain('sk-from-env');
    expect(() => createAnthropicBackend({ env: {}, apiKeyEnv: 'MY_KEY' })).toThrow('apiKey: anthropic has no API key; set MY_KEY');
  });
});

describe('fake Anthropic server', () => {
  it('answers a non-streaming request with a JSON message, for clients that do not stream', async () => {
    const { default: Anthropic } = await import('@anthropic-ai/sdk');
    const client = new Anthropic({ apiKey: 'sk-test', baseURL: server.url, maxRetries: 0 });
    server.enqueue({ text: 'plain JSON', thinking: 'hmm', usage: { input_tokens: 3, output_tokens: 2, cache_read_input_tokens: 7 } });
    const message = await client.messages.create({ model: MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });

    expect(message.content.map((block) => block.type)).toEqual(['thinking', 'text']);
    expect(message.content[1]).toMatchObject({ type: 'text', text: 'plain JSON' });
    expect(message.usage).toMatchObject({ input_tokens: 3, output_tokens: 2, cache_read_input_tokens: 7 });
  });

  it('reports the request the client abandoned, not the one it was answered', async () => {
    server.enqueue({ text: 'answered' }, { text: 'never sent', delayMs: 60_000 });
    await backend().complete(conversation, {});
    let firstAbandoned = false;
    void server.whenAbandoned(0).then(() => (firstAbandoned = true));

    const controller = new AbortController();
    const call = backend().complete(conversation, { signal: controller.signal });
    await server.whenReceived(1);
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(AbortedError);
    await server.whenAbandoned(1);
    expect(firstAbandoned).toBe(false);
  });

  it('answers an unknown path with a 404 in the API error shape and records it', async () => {
    const response = await fetch(`${server.url}/v1/complete`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    expect(server.requests[0]).toMatchObject({ method: 'POST', path: '/v1/complete', body: {} });
  });
});

describe('the SDK deprecation warning', () => {
  it('appears once per retiring model and process, not on every call', async () => {
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => void warnings.push(args.join(' '));
    try {
      // claude-sonnet-4-5-20250929 is in the SDK's list of retiring models (end of life 2026-11-30).
      const request = { ...conversation, model: 'claude-sonnet-4-5-20250929' };
      for (let i = 0; i < 3; i++) await backend().complete(request, {});
    } finally {
      console.warn = original;
    }
    expect(warnings.filter((w) => w.includes('claude-sonnet-4-5-20250929') && w.includes('deprecated'))).toHaveLength(1);
    expect(server.requests).toHaveLength(3);
  });
});
