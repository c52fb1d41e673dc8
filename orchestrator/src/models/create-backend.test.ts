import { describe, expect, it } from 'vitest';
import { FAKE_CLAUDE_BIN_DIR } from '../testing/fake-claude-cli/index.js';
import { BACKEND_NAMES, closest, createBackend } from './create-backend.js';

describe('createBackend', () => {
  it('creates every kind of backend from a role spec, with the default model when none is named', () => {
    expect(createBackend({ backend: 'anthropic', env: { ANTHROPIC_API_KEY: 'k' } })).toMatchObject({
      backend: { name: 'anthropic' },
      model: 'claude-sonnet-5-5',
    });
    expect(createBackend({ backend: 'openai', model: 'gpt-5', env: { OPENAI_API_KEY: 'k' } })).toMatchObject({ backend: { name: 'openai' }, model: 'gpt-5' });
    expect(createBackend({ backend: 'vllm', model: 'qwen3-8b', baseURL: 'http://127.0.0.1:8000/v1', env: {} })).toMatchObject({
      backend: { name: 'vllm' },
      model: 'qwen3-8b',
    });
    expect(createBackend({ backend: 'claude-cli', env: { PATH: FAKE_CLAUDE_BIN_DIR } })).toMatchObject({ backend: { name: 'claude-cli' }, model: 'sonnet' });
  });

  it('reads the key from the variable the spec names', () => {
    expect(() => createBackend({ backend: 'openai', apiKeyEnv: 'MY_KEY', env: { OPENAI_API_KEY: 'k' } })).toThrow('set MY_KEY');
    expect(createBackend({ backend: 'openai', apiKeyEnv: 'MY_KEY', env: { MY_KEY: 'k' } }).backend.name).toBe('openai');
  });

  it('says in one line which variable to set when the key is missing', () => {
    expect(() => createBackend({ backend: 'anthropic', env: {} })).toThrow(/^apiKey: anthropic has no API key; set ANTHROPIC_API_KEY$/);
    expect(() => createBackend({ backend: 'groq', env: {} })).toThrow(/GROQ_API_KEY/);
    expect(() => createBackend({ backend: 'claude-cli', env: { PATH: '/nonexistent' } })).toThrow(/claude/);
  });

  it('lists the valid backends for an unknown name, and asks for a model where there is no default', () => {
    expect(() => createBackend({ backend: 'opnai' })).toThrow(
      `backend: unknown backend "opnai" (did you mean "openai"?); valid backends: ${BACKEND_NAMES.join(', ')}`,
    );
    expect(() => createBackend({ backend: 'vllm', baseURL: 'http://127.0.0.1:8000/v1', env: {} })).toThrow(
      /the vllm backend has no default model; name one with --model/,
    );
  });

  it('suggests only near names', () => {
    expect(closest('modle', ['model', 'backend'])).toBe('model');
    expect(closest('zzz', ['model', 'backend'])).toBeUndefined();
  });
});
