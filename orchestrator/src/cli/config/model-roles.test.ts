import { describe, expect, it } from 'vitest';
import { errorMessage, InvalidOptionError } from '../../errors.js';
import { createModelRoles } from './model-roles.js';
import { resolveRoles } from './settings.js';

const env = { ROOT_KEY: 'sk-root', OTHER_KEY: 'sk-other' };
const root = { backend: 'openai', baseURL: 'http://127.0.0.1:9/v1', apiKeyEnv: 'ROOT_KEY' };

describe('createModelRoles', () => {
  it('gives the engine every named model under the name cells use, with its model id and limits', () => {
    const roles = createModelRoles(
      resolveRoles(
        {
          root: { ...root, model: 'gpt-5-mini' },
          models: { cheap: { model: 'gpt-5-nano', maxOutputTokens: 64, contextWindowTokens: 4000 }, child: { model: 'gpt-5' } },
        },
        env,
      ),
    );
    expect(roles.root.model).toBe('gpt-5-mini');
    expect(roles.sub?.model).toBe('gpt-5-mini');
    expect(Object.keys(roles.models ?? {})).toEqual(['cheap', 'child']);
    expect(roles.models?.cheap).toMatchObject({ model: 'gpt-5-nano', maxOutputTokens: 64, contextWindowTokens: 4000 });
    expect(roles.models?.child?.model).toBe('gpt-5');
  });

  it('shares one backend between roles reached the same way, and makes one per other connection', () => {
    const roles = createModelRoles(
      resolveRoles(
        {
          root: { ...root, model: 'gpt-5-mini' },
          models: { cheap: { model: 'gpt-5-nano' }, far: { model: 'x', baseURL: 'http://127.0.0.1:8/v1' }, keyed: { model: 'y', apiKeyEnv: 'OTHER_KEY' } },
        },
        env,
      ),
    );
    expect(roles.sub?.backend).toBe(roles.root.backend);
    expect(roles.models?.cheap?.backend).toBe(roles.root.backend);
    expect(roles.models?.far?.backend).not.toBe(roles.root.backend);
    expect(roles.models?.keyed?.backend).not.toBe(roles.root.backend);
  });

  it('leaves models out when none is named', () => {
    expect(createModelRoles(resolveRoles({ root: { ...root, model: 'm' } }, env))).not.toHaveProperty('models');
  });

  it('says which named model cannot be created, and why', () => {
    const missingKey = () => createModelRoles(resolveRoles({ root: { ...root, model: 'm' }, models: { cheap: { backend: 'groq', model: 'llama' } } }, env));
    expect(missingKey).toThrow(InvalidOptionError);
    expect(errorMessage(catching(missingKey))).toBe('model "cheap": apiKey: groq has no API key; set GROQ_API_KEY');
    const noUrl = () => createModelRoles(resolveRoles({ root: { ...root, model: 'm' }, models: { local: { backend: 'vllm', model: 'qwen3-8b' } } }, env));
    expect(errorMessage(catching(noUrl))).toMatch(
      /^model "local": baseURL: the vllm preset needs the server's URL.*; a named model's base URL is models\.local\.baseURL in the config file$/,
    );
  });
});

function catching(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
