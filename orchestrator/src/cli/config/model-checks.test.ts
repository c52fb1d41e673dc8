import { describe, expect, it } from 'vitest';
import { checkModels } from './model-checks.js';
import { resolveRoles } from './settings.js';
import type { RlmConfig } from './config-schema.js';

const check = (config: RlmConfig, env: NodeJS.ProcessEnv, claudeInstalled = false) =>
  checkModels({ config, ...resolveRoles(config, env) }, env, { claudeInstalled });

describe("rlm doctor's model checks", () => {
  it('lists the root, the sub and each named model with backend, model id, base URL and whether its key is set, never the key', () => {
    const env = { OPENAI_API_KEY: 'sk-do-not-print', GROQ_API_KEY: '' };
    const checks = check(
      {
        root: { backend: 'openai', model: 'gpt-5-mini' },
        models: {
          cheap: { model: 'gpt-5-nano' },
          fast: { backend: 'groq', model: 'llama-3.3-70b-versatile' },
          local: { backend: 'ollama', model: 'qwen3:8b' },
        },
      },
      env,
    );
    expect(checks).toEqual([
      { name: 'root model', status: 'ok', detail: 'openai gpt-5-mini at https://api.openai.com/v1; key OPENAI_API_KEY is set' },
      { name: 'sub model', status: 'ok', detail: 'openai gpt-5-mini at https://api.openai.com/v1; key OPENAI_API_KEY is set' },
      { name: 'model cheap', status: 'ok', detail: 'openai gpt-5-nano at https://api.openai.com/v1; key OPENAI_API_KEY is set' },
      {
        name: 'model fast',
        status: 'fail',
        detail: 'groq llama-3.3-70b-versatile at https://api.groq.com/openai/v1; key GROQ_API_KEY is not set',
        fix: 'export GROQ_API_KEY=<your key>, or name the variable that holds it with apiKeyEnv under models.fast in the config file',
      },
      { name: 'model local', status: 'ok', detail: 'ollama qwen3:8b at http://127.0.0.1:11434/v1; no key needed (OLLAMA_API_KEY is not set)' },
    ]);
    expect(JSON.stringify(checks)).not.toContain('sk-do-not-print');
  });

  it("warns, not fails, about the built-in default's missing key, since each run may choose its backend", () => {
    const [rootCheck, subCheck] = check({}, {});
    expect(rootCheck).toMatchObject({
      name: 'root model',
      status: 'warn',
      detail: 'anthropic claude-sonnet-5-5 at https://api.anthropic.com; key ANTHROPIC_API_KEY is not set',
    });
    expect(subCheck?.status).toBe('warn');
    expect(check({ root: { backend: 'anthropic' } }, {})[0]?.status).toBe('fail');
  });

  it('follows the key variable and base URL the settings name, and a base URL the backend cannot do without', () => {
    const [rootCheck] = check({ root: { backend: 'custom', baseURL: 'http://127.0.0.1:8000/v1', model: 'm', apiKeyEnv: 'MY_KEY' } }, { MY_KEY: 'x' });
    expect(rootCheck).toMatchObject({ status: 'ok', detail: 'custom m at http://127.0.0.1:8000/v1; key MY_KEY is set' });
    const vllm = check({ root: { backend: 'openai' }, models: { local: { backend: 'vllm', model: 'qwen3-8b' } } }, { OPENAI_API_KEY: 'k' })[2];
    expect(vllm).toMatchObject({
      name: 'model local',
      status: 'fail',
      detail: expect.stringMatching(/^vllm qwen3-8b: baseURL: the vllm preset needs the server's URL/),
      fix: 'set baseURL under models.local in the config file',
    });
  });

  it('checks that the claude command exists for a claude-cli model', () => {
    const config: RlmConfig = { root: { backend: 'claude-cli' } };
    expect(check(config, {}, true)[0]).toMatchObject({ status: 'ok', detail: 'claude-cli sonnet through the claude command (a Claude subscription; no key)' });
    expect(check(config, {}, false)[0]).toMatchObject({ status: 'fail', detail: 'claude-cli sonnet: the claude command is not installed' });
  });
});
