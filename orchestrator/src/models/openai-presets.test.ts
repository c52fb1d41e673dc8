/**
 * The presets: where each provider lives, which variable holds its key, its default model, and
 * that a backend built from one talks to its server as the provider expects. No test leaves
 * 127.0.0.1: presets are pointed at the fake server through `baseURL`, `OLLAMA_HOST` or Azure's endpoint.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError, RlmError, errorMessage } from '../errors.js';
import { closedLoopbackPort, startFakeOpenAIServer, type FakeOpenAIServer, type ReplyScript } from '../testing/fake-openai-server.js';
import { createOpenAICompatibleBackend } from './openai-compatible-backend.js';
import {
  DEFAULT_AZURE_API_VERSION,
  OPENAI_COMPATIBLE_PRESETS,
  PRESET_NAMES,
  createPresetBackend,
  ollamaHost,
  resolvePreset,
  type PresetName,
} from './openai-presets.js';

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function serve(script: ReplyScript = () => 'ok'): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(script);
  servers.push(server);
  return server;
}

const ask = (model: string) => ({ model, messages: [{ role: 'user' as const, content: 'Hi' }] });

/** What each preset resolves to with its key variable set: the table in openai-presets.ts. */
const EXPECTED: Record<Exclude<PresetName, 'vllm' | 'custom' | 'azure-openai'>, { baseURL: string; apiKeyEnv: string; defaultModel?: string }> = {
  openai: { baseURL: 'https://api.openai.com/v1', apiKeyEnv: 'OPENAI_API_KEY', defaultModel: 'gpt-5-mini' },
  openrouter: { baseURL: 'https://openrouter.ai/api/v1', apiKeyEnv: 'OPENROUTER_API_KEY', defaultModel: 'openai/gpt-5-mini' },
  huggingface: { baseURL: 'https://router.huggingface.co/v1', apiKeyEnv: 'HF_TOKEN', defaultModel: 'openai/gpt-oss-120b' },
  ollama: { baseURL: 'http://127.0.0.1:11434/v1', apiKeyEnv: 'OLLAMA_API_KEY', defaultModel: 'llama3.2' },
  gemini: { baseURL: 'https://generativelanguage.googleapis.com/v1beta/openai/', apiKeyEnv: 'GEMINI_API_KEY', defaultModel: 'gemini-2.5-flash' },
  vercel: { baseURL: 'https://ai-gateway.vercel.sh/v1', apiKeyEnv: 'AI_GATEWAY_API_KEY', defaultModel: 'openai/gpt-5-mini' },
  portkey: { baseURL: 'https://api.portkey.ai/v1', apiKeyEnv: 'PORTKEY_API_KEY' },
  groq: { baseURL: 'https://api.groq.com/openai/v1', apiKeyEnv: 'GROQ_API_KEY', defaultModel: 'llama-3.3-70b-versatile' },
  deepseek: { baseURL: 'https://api.deepseek.com/v1', apiKeyEnv: 'DEEPSEEK_API_KEY', defaultModel: 'deepseek-chat' },
  together: { baseURL: 'https://api.together.xyz/v1', apiKeyEnv: 'TOGETHER_API_KEY', defaultModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo' },
  fireworks: {
    baseURL: 'https://api.fireworks.ai/inference/v1',
    apiKeyEnv: 'FIREWORKS_API_KEY',
    defaultModel: 'accounts/fireworks/models/llama-v3p3-70b-instruct',
  },
};

describe('preset table', () => {
  it('has every provider the issue names', () => {
    expect([...PRESET_NAMES].sort()).toEqual(
      [
        'openai',
        'openrouter',
        'huggingface',
        'ollama',
        'vllm',
        'gemini',
        'azure-openai',
        'vercel',
        'portkey',
        'groq',
        'deepseek',
        'together',
        'fireworks',
        'custom',
      ].sort(),
    );
  });

  it.each(Object.entries(EXPECTED))('%s resolves its base URL, key variable and default model', (name, expected) => {
    const resolved = resolvePreset(name as PresetName, { env: { [expected.apiKeyEnv]: 'key-from-env' } });
    expect(resolved).toMatchObject({ preset: name, name, baseURL: expected.baseURL, apiKeyEnv: expected.apiKeyEnv, apiKey: 'key-from-env' });
    expect(resolved.defaultModel).toBe(expected.defaultModel);
  });

  it.each(Object.entries(EXPECTED))('%s sends its key from its variable to the server baseURL points at', async (name, expected) => {
    const server = await serve();
    const backend = createPresetBackend(name as PresetName, { baseURL: server.baseURL, env: { [expected.apiKeyEnv]: `key-for-${name}` } });
    const response = await backend.complete(ask(expected.defaultModel ?? 'some-model'), {});
    expect(response.text).toBe('ok');
    expect(backend.name).toBe(name);
    const headers = server.received[0]?.headers ?? {};
    if (name === 'portkey') expect(headers['x-portkey-api-key']).toBe('key-for-portkey');
    else expect(headers.authorization).toBe(`Bearer key-for-${name}`);
    expect(server.received[0]?.url).toBe('/v1/chat/completions');
  });

  it('takes an apiKey option over the variable, and apiKeyEnv to read another variable', () => {
    expect(resolvePreset('openai', { apiKey: 'given', env: { OPENAI_API_KEY: 'env' } }).apiKey).toBe('given');
    expect(resolvePreset('openai', { apiKeyEnv: 'WORK_OPENAI_KEY', env: { WORK_OPENAI_KEY: 'work' } })).toMatchObject({
      apiKey: 'work',
      apiKeyEnv: 'WORK_OPENAI_KEY',
    });
  });

  it('records where the key and the base URL came from, for the fixes error messages name', () => {
    expect(resolvePreset('openrouter', { env: { OPENROUTER_API_KEY: 'k' } })).toMatchObject({
      apiKeySource: { from: 'env', variable: 'OPENROUTER_API_KEY' },
      baseUrlSource: { from: 'default' },
    });
    expect(resolvePreset('openai', { apiKey: 'k', baseURL: 'http://127.0.0.1:1/v1' })).toMatchObject({
      apiKeySource: { from: 'option' },
      baseUrlSource: { from: 'option' },
    });
    expect(resolvePreset('vllm', { baseURL: 'http://127.0.0.1:1/v1', env: {} }).apiKeySource).toEqual({ from: 'none', variable: 'VLLM_API_KEY' });
    expect(resolvePreset('azure-openai', { apiKey: 'k', env: { AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com' } }).baseUrlSource).toEqual({
      from: 'env',
      variable: 'AZURE_OPENAI_ENDPOINT',
    });
  });

  it('lets baseURL override any preset URL', () => {
    expect(resolvePreset('openrouter', { apiKey: 'k', baseURL: 'https://proxy.example/openrouter/v1' }).baseURL).toBe('https://proxy.example/openrouter/v1');
  });

  it('rejects a baseURL that is not an http(s) URL', () => {
    expect(() => resolvePreset('custom', { baseURL: 'localhost:8000' })).toThrow(InvalidOptionError);
    expect(() => resolvePreset('custom', { baseURL: 'ftp://example.com' })).toThrow(/not an http\(s\) URL/);
  });
});

describe('missing keys', () => {
  it('says in one line which variable to set', () => {
    expect(() => createPresetBackend('openai', { env: {} })).toThrow(new InvalidOptionError('apiKey', 'openai has no API key; set OPENAI_API_KEY'));
    expect(() => createOpenAICompatibleBackend({ env: {} })).toThrow('apiKey: openai has no API key; set OPENAI_API_KEY');
  });

  it.each(PRESET_NAMES.filter((name) => OPENAI_COMPATIBLE_PRESETS[name].requiresApiKey))('%s names its own variable', (name) => {
    const variable = OPENAI_COMPATIBLE_PRESETS[name].apiKeyEnv;
    const options = name === 'azure-openai' ? { env: {}, azure: { endpoint: 'https://r.openai.azure.com' } } : { env: {} };
    let error: unknown;
    try {
      createPresetBackend(name, options);
    } catch (e) {
      error = e;
    }
    expect(RlmError.isInstance(error)).toBe(true);
    expect(errorMessage(error)).toBe(`apiKey: ${name} has no API key; set ${variable}`);
  });

  it('needs no key for ollama, vllm and custom, and sends a placeholder the servers ignore', async () => {
    const server = await serve();
    for (const name of ['vllm', 'custom'] as const) {
      await createPresetBackend(name, { baseURL: server.baseURL, env: {} }).complete(ask('m'), {});
    }
    expect(server.received.map((r) => r.headers.authorization)).toEqual(['Bearer no-key', 'Bearer no-key']);
  });

  it('does not send an OpenAI key found in the environment to a custom server', async () => {
    const server = await serve();
    await createPresetBackend('custom', { baseURL: server.baseURL, env: { OPENAI_API_KEY: 'sk-secret' } }).complete(ask('m'), {});
    expect(server.received[0]?.headers.authorization).toBe('Bearer no-key');
  });

  it('uses VLLM_API_KEY for a vLLM server started with --api-key', async () => {
    const server = await serve();
    await createPresetBackend('vllm', { baseURL: server.baseURL, env: { VLLM_API_KEY: 'vllm-token' } }).complete(ask('m'), {});
    expect(server.received[0]?.headers.authorization).toBe('Bearer vllm-token');
  });
});

describe('vllm and custom', () => {
  it.each(['vllm', 'custom'] as const)('%s without a base URL names --base-url and baseURL', (name) => {
    expect(() => createPresetBackend(name, { env: {} })).toThrow(InvalidOptionError);
    expect(() => createPresetBackend(name, { env: {} })).toThrow(
      `baseURL: the ${name} preset needs the server's URL; pass --base-url (CLI) or baseURL (library), e.g. http://127.0.0.1:8000/v1`,
    );
  });
});

describe('ollama', () => {
  it('talks to the server OLLAMA_HOST names', async () => {
    const server = await serve();
    const host = server.origin.replace('http://', '');
    const backend = createPresetBackend('ollama', { env: { OLLAMA_HOST: host } });
    await expect(backend.complete(ask('llama3.2'), {})).resolves.toMatchObject({ text: 'ok' });
    expect(server.received[0]?.url).toBe('/v1/chat/completions');
  });

  it.each([
    [undefined, 'http://127.0.0.1:11434'],
    ['', 'http://127.0.0.1:11434'],
    ['0.0.0.0', 'http://127.0.0.1:11434'],
    ['0.0.0.0:9999', 'http://127.0.0.1:9999'],
    ['gpu-box', 'http://gpu-box:11434'],
    ['gpu-box:8080', 'http://gpu-box:8080'],
    ['http://gpu-box:11434/', 'http://gpu-box:11434'],
    ['https://ollama.example.com', 'https://ollama.example.com'],
    ['https://proxy.example.com/ollama/', 'https://proxy.example.com/ollama'],
  ])('reads OLLAMA_HOST=%j as %s', (value, expected) => {
    expect(ollamaHost(value)).toBe(expected);
  });

  it('says to check OLLAMA_HOST, and whether Ollama runs, when nothing listens there', async () => {
    const host = `127.0.0.1:${await closedLoopbackPort()}`;
    const backend = createPresetBackend('ollama', { env: { OLLAMA_HOST: host }, maxRetries: 0 });
    const error = await backend.complete(ask('llama3.2'), {}).catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'unreachable', fatal: true, baseUrl: `http://${host}/v1` });
    expect(errorMessage(error)).toBe(
      `ollama llama3.2: cannot connect to http://${host}/v1 (connection refused) after 1 attempt: is the server running? check OLLAMA_HOST (or set --base-url)`,
    );
  });
});

describe('azure-openai', () => {
  it('sends to the deployment URL with api-version and the api-key header', async () => {
    const server = await serve();
    const backend = createPresetBackend('azure-openai', {
      env: { AZURE_OPENAI_ENDPOINT: `${server.origin}/`, AZURE_OPENAI_API_KEY: 'azure-key' },
      azure: { deployment: 'prod-gpt4o', apiVersion: '2025-01-01-preview' },
    });
    await expect(backend.complete({ ...ask('gpt-4o'), maxOutputTokens: 64 }, {})).resolves.toMatchObject({ text: 'ok' });
    const request = server.received[0];
    expect(request?.url).toBe('/openai/deployments/prod-gpt4o/chat/completions?api-version=2025-01-01-preview');
    expect(request?.headers['api-key']).toBe('azure-key');
    expect(request?.body).toMatchObject({ max_tokens: 64, stream: true, stream_options: { include_usage: true } });
  });

  it('names the deployment after the model when no deployment is given, with the default API version', async () => {
    const server = await serve();
    const backend = createPresetBackend('azure-openai', { apiKey: 'k', azure: { endpoint: server.origin }, env: {} });
    await backend.complete(ask('o4-mini'), {});
    expect(server.received[0]?.url).toBe(`/openai/deployments/o4-mini/chat/completions?api-version=${DEFAULT_AZURE_API_VERSION}`);
  });

  it('reads the API version from AZURE_OPENAI_API_VERSION and the default model from the deployment', () => {
    const resolved = resolvePreset('azure-openai', {
      env: { AZURE_OPENAI_ENDPOINT: 'https://r.openai.azure.com', AZURE_OPENAI_API_KEY: 'k', AZURE_OPENAI_API_VERSION: '2024-12-01-preview' },
      azure: { deployment: 'd1' },
    });
    expect(resolved).toMatchObject({
      baseURL: 'https://r.openai.azure.com/openai',
      defaultModel: 'd1',
      azure: { apiVersion: '2024-12-01-preview', deployment: 'd1' },
    });
  });

  it('without an endpoint, names AZURE_OPENAI_ENDPOINT', () => {
    expect(() => createPresetBackend('azure-openai', { apiKey: 'k', env: {} })).toThrow(/set AZURE_OPENAI_ENDPOINT/);
  });
});

describe('portkey', () => {
  it('sends its key as x-portkey-api-key with the routing headers, and the upstream key as the bearer token', async () => {
    const server = await serve();
    const backend = createPresetBackend('portkey', {
      baseURL: server.baseURL,
      env: { PORTKEY_API_KEY: 'pk-test', PORTKEY_CONFIG: 'pc-routing' },
      portkey: { provider: 'openai', providerApiKey: 'sk-upstream' },
    });
    await backend.complete(ask('gpt-4o'), {});
    expect(server.received[0]?.headers).toMatchObject({
      'x-portkey-api-key': 'pk-test',
      'x-portkey-provider': 'openai',
      'x-portkey-config': 'pc-routing',
      authorization: 'Bearer sk-upstream',
    });
  });
});

describe('options', () => {
  it('sends defaultHeaders with every request, over the preset’s own', async () => {
    const server = await serve();
    await createPresetBackend('openrouter', { baseURL: server.baseURL, apiKey: 'k', defaultHeaders: { 'X-Title': 'my-app' } }).complete(
      ask('openai/gpt-5-mini'),
      {},
    );
    expect(server.received[0]?.headers['x-title']).toBe('my-app');
  });

  it('names errors after the name option', async () => {
    const server = await serve(() => ({ status: 400, body: { error: { message: 'bad' } } }));
    const backend = createPresetBackend('vllm', { name: 'sub-vllm', baseURL: server.baseURL });
    await expect(backend.complete(ask('qwen3-8b'), {})).rejects.toThrow('sub-vllm qwen3-8b: HTTP 400: bad');
  });

  it('passes resilience options to the retry policy', async () => {
    const server = await serve(() => ({ status: 503, body: { error: { message: 'busy' } } }));
    const backend = createPresetBackend('together', { baseURL: server.baseURL, apiKey: 'k', maxRetries: 2, initialDelayMs: 1 });
    await expect(backend.complete(ask('m'), {})).rejects.toThrow(/HTTP 503: busy \(after 3 attempts\)/);
    expect(server.requests).toHaveLength(3);
  });

  it('checks resilience options when the backend is created', () => {
    expect(() => createPresetBackend('custom', { baseURL: 'http://127.0.0.1:1/v1', maxConcurrency: 0 })).toThrow(InvalidOptionError);
  });
});
