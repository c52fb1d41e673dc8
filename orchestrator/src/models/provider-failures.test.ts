import { describe, expect, it } from 'vitest';
import { fixFor, kindOfHttpError, kindOfStreamError, type ProviderEndpoint } from './provider-failures.js';

describe('kindOfHttpError', () => {
  it.each([
    [401, {}, 'auth'],
    [403, {}, 'permission'],
    [402, {}, 'permission'],
    [404, {}, 'model_not_found'],
    [404, { reason: 'no route' }, 'model_not_found'],
    [400, { code: 'model_not_found', reason: 'whatever' }, 'model_not_found'],
    [403, { code: 'model_not_found' }, 'model_not_found'],
    [400, { reason: 'openai/gpt-9 is not a valid model ID' }, 'model_not_found'],
    [400, { reason: "model 'llama9' not found, try pulling it first" }, 'model_not_found'],
    [422, { reason: 'The model `qwen9` does not exist.' }, 'model_not_found'],
    [400, { reason: 'temperature is not supported with this model' }, 'invalid_request'],
    [400, { reason: 'max_tokens is too large for this model' }, 'invalid_request'],
    [413, {}, 'invalid_request'],
    [422, {}, 'invalid_request'],
    [429, {}, 'rate_limited'],
    [408, {}, 'timeout'],
    [409, {}, 'provider_error'],
    [500, {}, 'provider_error'],
    [529, {}, 'provider_error'],
  ] as const)('HTTP %i %j is %s', (status, info, kind) => {
    expect(kindOfHttpError(status, info)).toBe(kind);
  });
});

describe('kindOfStreamError', () => {
  it.each([
    ['authentication_error', 'auth'],
    ['permission_error', 'permission'],
    ['billing_error', 'permission'],
    ['not_found_error', 'model_not_found'],
    ['rate_limit_error', 'rate_limited'],
    ['timeout_error', 'timeout'],
    ['invalid_request_error', 'invalid_request'],
    ['request_too_large', 'invalid_request'],
    ['overloaded_error', 'provider_error'],
    ['api_error', 'provider_error'],
    ['some_future_error', 'provider_error'],
  ] as const)('%s is %s', (type, kind) => {
    expect(kindOfStreamError(type)).toBe(kind);
  });
});

describe('fixFor', () => {
  const endpoint: ProviderEndpoint = {
    backend: 'openai',
    baseUrl: 'https://api.openai.com/v1',
    baseUrlSource: { from: 'default' },
    apiKeySource: { from: 'env', variable: 'OPENAI_API_KEY' },
  };

  it('says a refused payment is about billing, not the model', () => {
    expect(fixFor('permission', endpoint, 'gpt-5', { status: 402 })).toBe(
      'the account of the API key (from OPENAI_API_KEY) cannot pay for this call: check its billing and credits with the provider',
    );
  });

  it('names no fix where the provider message says enough', () => {
    for (const kind of ['rate_limited', 'timeout', 'invalid_request', 'provider_error'] as const) expect(fixFor(kind, endpoint, 'gpt-5')).toBeUndefined();
  });

  it('asks for the variable that names a key when none was sent and none is known', () => {
    expect(fixFor('auth', { ...endpoint, apiKeySource: { from: 'none' } }, 'm')).toBe(
      'the server wants an API key and none was sent: name the variable holding it with apiKeyEnv (in the config file, or the backend option)',
    );
  });
});
