import { describe, expect, it } from 'vitest';
import { MODEL_TABLE_AS_OF } from '../../models/model-table.js';
import { checkModels, describeModelReport } from './model-checks.js';
import { pricesOf, resolveRoles } from './settings.js';
import type { RlmConfig } from './config-schema.js';

const check = (config: RlmConfig, env: NodeJS.ProcessEnv, claudeInstalled = false) => {
  const roles = resolveRoles(config, env);
  return checkModels({ config, ...roles, prices: pricesOf(config, roles.models, 'rlm.config.yaml') }, env, { claudeInstalled });
};

/** The checks without their model reports (tested apart). */
const withoutReports = (checks: ReturnType<typeof check>) => checks.map(({ model: _model, ...rest }) => rest);

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
    expect(withoutReports(checks)).toEqual([
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
  it("reports each model's context window, output limit and price from the model table", () => {
    const checks = check(
      {
        root: { backend: 'anthropic', model: 'claude-sonnet-4-5-20250929' },
        sub: { model: 'claude-haiku-4-5', maxOutputTokens: 2_048 },
        models: { big: { backend: 'openai', model: 'gpt-4.1', contextWindowTokens: 500_000 } },
      },
      { ANTHROPIC_API_KEY: 'k', OPENAI_API_KEY: 'k' },
    );
    expect(checks.map((c) => c.model)).toEqual([
      {
        id: 'claude-sonnet-4-5-20250929',
        contextWindowTokens: 200_000,
        contextWindowFrom: 'table',
        outputLimitTokens: 64_000,
        maxOutputTokens: 16_384,
        price: { input: 3, output: 15, cacheRead: 0.3, cacheWrite: 3.75 },
        priceFrom: 'table',
        reportsCost: false,
      },
      expect.objectContaining({
        id: 'claude-haiku-4-5',
        outputLimitTokens: 64_000,
        maxOutputTokens: 2_048,
        price: expect.objectContaining({ input: 1, output: 5 }),
      }),
      expect.objectContaining({ id: 'gpt-4.1', contextWindowTokens: 500_000, contextWindowFrom: 'settings', outputLimitTokens: 32_768 }),
    ]);
    expect(checks.every((c) => c.status === 'ok')).toBe(true);
    expect(describeModelReport(checks[0]?.model ?? expect.fail('no report'))).toBe(
      `context 200,000 tokens; output ≤ 64,000 tokens (16,384 asked per call); $3 in, $15 out, cache $0.3 read, $3.75 write per million tokens (rlm's table, ${MODEL_TABLE_AS_OF})`,
    );
  });

  it('says a model without a known price makes a budget unenforceable, and fails it when the settings set one', () => {
    const env = { OPENAI_API_KEY: 'k' };
    const config: RlmConfig = { root: { backend: 'openai', model: 'gpt-5-mini' }, models: { mine: { backend: 'ollama', model: 'my-local-llama' } } };
    const [, , unbudgeted] = check(config, env);
    expect(unbudgeted).toMatchObject({ name: 'model mine', status: 'ok', model: { id: 'my-local-llama', contextWindowFrom: 'default', reportsCost: false } });
    expect(unbudgeted?.model?.price).toBeUndefined();
    expect(describeModelReport(unbudgeted?.model ?? expect.fail('no report'))).toBe(
      'context 128,000 tokens (assumed: not a known model; set contextWindowTokens if it differs); output limit unknown; ' +
        'no known price: its costs are unknown and a budget in dollars (--budget) cannot be enforced',
    );

    const [root, , budgeted] = check({ ...config, limits: { maxCostUsd: 2 } }, env);
    expect(root?.status).toBe('ok');
    expect(budgeted).toMatchObject({
      status: 'fail',
      fix: 'a run with a budget in dollars (limits.maxCostUsd: 2) refuses to start without a price for my-local-llama: give it, in USD per million tokens, under models.mine.price in the config file (e.g. price: { input: 1, output: 4 })',
    });

    // A price in the settings, or a provider that reports each call's cost, makes the budget enforceable.
    const priced = check({ ...config, limits: { maxCostUsd: 2 }, prices: { 'my-local-llama': { input: 0, output: 0 } } }, env)[2];
    expect(priced).toMatchObject({ status: 'ok', model: { price: { input: 0, output: 0 }, priceFrom: 'override' } });
    expect(describeModelReport(priced?.model ?? expect.fail('no report'))).toMatch(/\$0 in, \$0 out per million tokens \(your prices\)$/);
    const routed = check({ root: { backend: 'openrouter', model: 'someone/unknown-model' }, limits: { maxCostUsd: 2 } }, { OPENROUTER_API_KEY: 'k' })[0];
    expect(routed).toMatchObject({ status: 'ok', model: { reportsCost: true } });
    expect(describeModelReport(routed?.model ?? expect.fail('no report'))).toMatch(/; cost reported by the provider for each call$/);
  });

  it("prices a model missing from rlm's table from the maintained data, and says so", () => {
    const [root] = check({ root: { backend: 'openai', model: 'o3-deep-research' } }, { OPENAI_API_KEY: 'k' });
    expect(root?.model).toMatchObject({ priceFrom: 'genai-prices', contextWindowFrom: 'genai-prices' });
    expect(describeModelReport(root?.model ?? expect.fail('no report'))).toMatch(
      /\(from @pydantic\/genai-prices\);.* per million tokens \(@pydantic\/genai-prices\)$/,
    );
  });

  it("warns when each call asks for more output tokens than the model gives, the Anthropic backend's default included", () => {
    const [root] = check({ root: { backend: 'anthropic', model: 'claude-3-haiku-20240307' } }, { ANTHROPIC_API_KEY: 'k' });
    expect(root).toMatchObject({
      status: 'warn',
      model: { outputLimitTokens: 4_096, maxOutputTokens: 16_384 },
      fix: 'each call asks for 16,384 output tokens, more than claude-3-haiku-20240307 gives (4,096): set maxOutputTokens under root to at most 4096',
    });
    expect(check({ root: { backend: 'anthropic', model: 'claude-3-haiku', maxOutputTokens: 4_096 } }, { ANTHROPIC_API_KEY: 'k' })[0]?.status).toBe('ok');
  });
});
