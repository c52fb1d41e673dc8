import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../errors.js';
import { UsageError } from '../cli-io.js';
import { ConfigError, loadConfig, parseConfigText } from './load-config.js';
import { layerFromEnv, layerFromFlags, limitsOf, mergeLayers, parseModelAlias, pricesOf, resolveRoles, resolveSettings, sandboxOptionsOf } from './settings.js';

const message = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    return errorMessage(error);
  }
  throw new Error('expected a throw');
};

describe('the config file', () => {
  it('parses YAML and JSON into the same settings', () => {
    const yaml = parseConfigText('root:\n  backend: anthropic\n  model: claude-sonnet-4-5\nlimits:\n  maxIterations: 10\n', 'rlm.config.yaml', 'yaml');
    const json = parseConfigText('{"root":{"backend":"anthropic","model":"claude-sonnet-4-5"},"limits":{"maxIterations":10}}', 'rlm.config.json', 'json');
    expect(yaml).toEqual(json);
    expect(parseConfigText('', 'rlm.config.yaml', 'yaml')).toEqual({});
  });

  it('names the file and key path of an unknown key, with a suggestion', () => {
    expect(message(() => parseConfigText('root:\n  modle: x\n', 'rlm.config.yaml', 'yaml'))).toBe(
      'rlm.config.yaml: root.modle: unknown key (did you mean "model"?)',
    );
    expect(message(() => parseConfigText('limitz: {}\n', 'rlm.config.yaml', 'yaml'))).toBe('rlm.config.yaml: limitz: unknown key (did you mean "limits"?)');
    expect(message(() => parseConfigText('sandbox:\n  zzz: 1\n', 'c.yaml', 'yaml'))).toMatch(/^c\.yaml: sandbox\.zzz: unknown key \(allowed: memoryMb, cpus/);
  });

  it('names the file and key path of a bad value', () => {
    expect(message(() => parseConfigText('limits:\n  maxIterations: 0\n', 'rlm.config.yaml', 'yaml'))).toBe(
      'rlm.config.yaml: limits.maxIterations: must be a whole number greater than 0',
    );
    expect(message(() => parseConfigText('limits:\n  timeoutSeconds: soon\n', 'f.yml', 'yaml'))).toBe(
      'f.yml: limits.timeoutSeconds: must be a number greater than 0',
    );
    expect(message(() => parseConfigText('root:\n  backend: opnai\n', 'f.yml', 'yaml'))).toMatch(
      /^f\.yml: root\.backend: unknown backend "opnai" \(did you mean "openai"\?\); valid backends: anthropic, claude-cli, openai/,
    );
    expect(message(() => parseConfigText('language: rust\n', 'f.yml', 'yaml'))).toBe('f.yml: language: must be javascript or python');
    expect(message(() => parseConfigText('- a\n- b\n', 'f.yml', 'yaml'))).toBe('f.yml: the file must hold a mapping of settings (key: value)');
  });

  it('refuses a key where the variable name belongs, without printing it', () => {
    const text = message(() => parseConfigText('root:\n  apiKeyEnv: sk-ant-api03-secret\n', 'f.yml', 'yaml'));
    expect(text).toBe('f.yml: root.apiKeyEnv: must be the NAME of an environment variable (e.g. MY_PROVIDER_KEY), never the key itself');
    expect(text).not.toContain('secret');
  });

  it('reports YAML syntax errors with the line, and broken JSON', () => {
    expect(message(() => parseConfigText('root:\n  model: [unclosed\n', 'f.yml', 'yaml'))).toMatch(/^f\.yml: line \d+, column \d+: /);
    expect(message(() => parseConfigText('root:\n  model: a\n  model: b\n', 'f.yml', 'yaml'))).toMatch(/^f\.yml: line 3.*(unique|duplicate)/i);
    expect(message(() => parseConfigText('{ nope', 'rlm.config.json', 'json'))).toMatch(/^rlm\.config\.json: not valid JSON/);
  });

  it('is found in the working directory, or named explicitly; two candidates are an error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-config-'));
    expect(await loadConfig({ cwd: dir })).toBeUndefined();
    await writeFile(path.join(dir, 'rlm.config.yml'), 'logDir: logs\n');
    expect(await loadConfig({ cwd: dir })).toMatchObject({ file: 'rlm.config.yml', config: { logDir: 'logs' } });
    await writeFile(path.join(dir, 'rlm.config.json'), '{}');
    await expect(loadConfig({ cwd: dir })).rejects.toThrow(/rlm\.config\.yml and rlm\.config\.json are both in/);
    await expect(loadConfig({ cwd: dir, explicit: 'missing.yaml' })).rejects.toThrow(
      'missing.yaml: cannot read the config file (ENOENT); check the --config path',
    );
    await expect(loadConfig({ cwd: dir, explicit: 'missing.yaml' })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('precedence', () => {
  it('is flags, then environment, then config file, then defaults', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-config-'));
    await writeFile(
      path.join(dir, 'rlm.config.yaml'),
      'root:\n  backend: openai\n  model: from-config\nlimits:\n  maxIterations: 7\n  maxDepth: 2\nlogDir: logs\n',
    );
    const resolve = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv) => resolveSettings({ flags, env, cwd: dir });

    const config = await resolve({}, {});
    expect(config.root).toMatchObject({ backend: 'openai', model: 'from-config' });
    expect(limitsOf(config.config)).toMatchObject({ maxIterations: 7, maxDepth: 2, cellTimeoutMs: 120_000 });
    expect(config.config.logDir).toBe(path.join(dir, 'logs'));

    const env = await resolve({}, { RLM_MODEL: 'from-env', RLM_MAX_ITERATIONS: '9', RLM_LOG_DIR: '/tmp/env-logs' });
    expect(env.root.model).toBe('from-env');
    expect(limitsOf(env.config)).toMatchObject({ maxIterations: 9, maxDepth: 2 });
    expect(env.config.logDir).toBe('/tmp/env-logs');

    const flags = await resolve({ model: 'from-flag', 'max-iterations': '11', timeout: '1.5' }, { RLM_MODEL: 'from-env', RLM_MAX_ITERATIONS: '9' });
    expect(flags.root).toMatchObject({ backend: 'openai', model: 'from-flag' });
    expect(limitsOf(flags.config)).toMatchObject({ maxIterations: 11, timeoutMs: 1500 });
  });

  it('takes defaults when nothing is set: anthropic with its default model, the sub role the same', () => {
    const roles = resolveRoles({}, {});
    expect(roles.root).toMatchObject({ backend: 'anthropic', model: 'claude-sonnet-5-5' });
    expect(roles.sub).toMatchObject({ backend: 'anthropic', model: 'claude-sonnet-5-5' });
    expect(roles.subSharesRootBackend).toBe(true);
  });

  it('lets the sub role inherit the root provider, or stand on its own provider without its base URL or key', () => {
    const same = resolveRoles({ root: { backend: 'openai', baseURL: 'http://127.0.0.1:1/v1', apiKeyEnv: 'K' }, sub: { model: 'small' } }, {});
    expect(same.sub).toMatchObject({ backend: 'openai', model: 'small', baseURL: 'http://127.0.0.1:1/v1', apiKeyEnv: 'K' });
    expect(same.subSharesRootBackend).toBe(true);
    const other = resolveRoles(
      { root: { backend: 'anthropic', apiKeyEnv: 'K' }, sub: { backend: 'vllm', baseURL: 'http://127.0.0.1:8000/v1', model: 'qwen3-8b' } },
      {},
    );
    expect(other.sub).toMatchObject({ backend: 'vllm', model: 'qwen3-8b', baseURL: 'http://127.0.0.1:8000/v1' });
    expect(other.sub.apiKeyEnv).toBeUndefined();
    expect(other.subSharesRootBackend).toBe(false);
    const groq = resolveRoles({ sub: { backend: 'groq' } }, {});
    expect(groq.sub.model).toBe('llama-3.3-70b-versatile');
  });

  it('merges layers key by key', () => {
    expect(mergeLayers({ root: { backend: 'openai', model: 'a' }, limits: { maxDepth: 2 } }, { root: { model: 'b' } })).toEqual({
      root: { backend: 'openai', model: 'b' },
      limits: { maxDepth: 2 },
    });
  });

  it('names the flag or variable of a malformed value', () => {
    expect(message(() => layerFromFlags({ 'max-depth': '-1' }))).toBe('--max-depth must be a whole number, 0 or more (got -1)');
    expect(message(() => layerFromFlags({ budget: 'lots' }))).toBe('--budget must be a number (got "lots")');
    expect(message(() => layerFromFlags({ language: 'cobol' }))).toBe('--language must be javascript or python');
    expect(() => layerFromFlags({ budget: 'lots' })).toThrow(UsageError);
    expect(message(() => layerFromEnv({ RLM_TIMEOUT: 'soon' }))).toBe('RLM_TIMEOUT must be a number (got "soon")');
    expect(() => layerFromEnv({ RLM_TIMEOUT: 'soon' })).toThrow(ConfigError);
    // An empty variable is unset.
    expect(layerFromEnv({ RLM_MODEL: '' })).toEqual({});
  });

  it('takes maxSandboxes from --max-sandboxes, RLM_MAX_SANDBOXES or the config file, and prompt caps in MiB from the config file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-config-'));
    await writeFile(path.join(dir, 'rlm.config.yaml'), 'limits:\n  maxSandboxes: 3\n  maxSubcallPromptMbPerCell: 1.5\n  maxSubcallPromptMbPerRun: 100\n');
    const resolve = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv) => resolveSettings({ flags, env, cwd: dir });
    expect(limitsOf((await resolve({}, {})).config)).toMatchObject({
      maxSandboxes: 3,
      maxSubcallPromptBytesPerCell: 1.5 * 1024 * 1024,
      maxSubcallPromptBytesPerRun: 100 * 1024 * 1024,
    });
    expect(limitsOf((await resolve({}, { RLM_MAX_SANDBOXES: '6' })).config).maxSandboxes).toBe(6);
    expect(limitsOf((await resolve({ 'max-sandboxes': '2' }, { RLM_MAX_SANDBOXES: '6' })).config).maxSandboxes).toBe(2);
    expect(limitsOf({})).toMatchObject({ maxSandboxes: 4, maxSubcallPromptBytesPerCell: 64 * 1024 * 1024, maxSubcallPromptBytesPerRun: 512 * 1024 * 1024 });
    expect(message(() => layerFromFlags({ 'max-sandboxes': '0' }))).toBe('--max-sandboxes must be a whole number greater than 0 (got 0)');
  });

  it('turns seconds into milliseconds and MiB into bytes', () => {
    expect(limitsOf({ limits: { timeoutSeconds: 2, cellTimeoutSeconds: 0.5, maxCostUsd: 1 } })).toMatchObject({
      timeoutMs: 2000,
      cellTimeoutMs: 500,
      maxCostUsd: 1,
    });
    expect(sandboxOptionsOf({ sandbox: { memoryMb: 512, cpus: 2, runtime: 'runsc' } })).toEqual({
      runtime: 'runsc',
      limits: { memoryBytes: 512 * 1024 * 1024, cpus: 2 },
    });
    expect(sandboxOptionsOf({})).toEqual({});
  });
});

describe('named models (models: and --model-alias)', () => {
  const openaiRoot = {
    backend: 'openai',
    baseURL: 'http://127.0.0.1:1/v1',
    apiKeyEnv: 'ROOT_KEY',
    maxRetries: 2,
    maxOutputTokens: 999,
    contextWindowTokens: 5000,
  };

  it('parses a models: map, an empty entry meaning that model id with the root settings', () => {
    const config = parseConfigText(
      'models:\n  cheap:\n    backend: openai\n    model: gpt-5-nano\n    price: { input: 0.05, output: 0.4 }\n  gpt-5-mini:\n',
      'rlm.config.yaml',
      'yaml',
    );
    expect(config.models).toEqual({ cheap: { backend: 'openai', model: 'gpt-5-nano', price: { input: 0.05, output: 0.4 } }, 'gpt-5-mini': {} });
    const roles = resolveRoles({ root: openaiRoot, ...config }, {});
    expect(roles.models['gpt-5-mini']).toMatchObject({ backend: 'openai', model: 'gpt-5-mini' });
  });

  it("inherits the root's backend and connection where a field is missing, never its model, output cap or context window", () => {
    const roles = resolveRoles({ root: openaiRoot, models: { cheap: { model: 'gpt-5-nano', maxOutputTokens: 100 }, 'gpt-5': {} } }, {});
    expect(roles.models.cheap).toEqual({
      backend: 'openai',
      model: 'gpt-5-nano',
      baseURL: 'http://127.0.0.1:1/v1',
      apiKeyEnv: 'ROOT_KEY',
      maxRetries: 2,
      maxOutputTokens: 100,
      env: {},
    });
    expect(roles.models['gpt-5']).toEqual({
      backend: 'openai',
      model: 'gpt-5',
      baseURL: 'http://127.0.0.1:1/v1',
      apiKeyEnv: 'ROOT_KEY',
      maxRetries: 2,
      env: {},
    });
    // Its own fields win over the root's.
    const own = resolveRoles({ root: openaiRoot, models: { far: { baseURL: 'http://127.0.0.1:2/v1', apiKeyEnv: 'FAR_KEY' } } }, {});
    expect(own.models.far).toMatchObject({ backend: 'openai', model: 'far', baseURL: 'http://127.0.0.1:2/v1', apiKeyEnv: 'FAR_KEY' });
  });

  it("takes another backend's own defaults, never the root's base URL or key", () => {
    const roles = resolveRoles({ root: openaiRoot, models: { local: { backend: 'ollama', model: 'qwen3:8b' } } }, {});
    expect(roles.models.local).toEqual({ backend: 'ollama', model: 'qwen3:8b', env: {} });
  });

  it('puts each named price under its model id, beside prices:, and refuses two prices for one id', () => {
    const config = { prices: { 'qwen3-8b': { input: 0, output: 0 } }, models: { cheap: { model: 'gpt-5-nano', price: { input: 0.05, output: 0.4 } } } };
    expect(pricesOf(config, resolveRoles(config, {}).models, 'f.yml')).toEqual({
      'qwen3-8b': { input: 0, output: 0 },
      'gpt-5-nano': { input: 0.05, output: 0.4 },
    });
    const same = { models: { a: { model: 'm', price: { input: 1, output: 2 } }, b: { model: 'm', price: { input: 1, output: 2 } } } };
    expect(pricesOf(same, resolveRoles(same, {}).models, 'f.yml')).toEqual({ m: { input: 1, output: 2 } });
    const clash = { prices: { m: { input: 1, output: 2 } }, models: { a: { model: 'm', price: { input: 3, output: 4 } } } };
    expect(message(() => pricesOf(clash, resolveRoles(clash, {}).models, 'f.yml'))).toBe(
      'f.yml: models.a.price: prices.m already gives model "m" another price; give each model id one price (remove one of them)',
    );
    expect(pricesOf({}, {}, 'f.yml')).toBeUndefined();
  });

  it('names the file, the key path and the fix of a bad entry', () => {
    const bad = (yaml: string) => message(() => parseConfigText(yaml, 'rlm.config.yaml', 'yaml'));
    expect(bad('models:\n  cheap:\n    baseUrl: http://x\n')).toBe('rlm.config.yaml: models.cheap.baseUrl: unknown key (did you mean "baseURL"?)');
    expect(bad('models:\n  cheap:\n    contextWindow: 5\n')).toBe(
      'rlm.config.yaml: models.cheap.contextWindow: unknown key (did you mean "contextWindowTokens"?)',
    );
    expect(bad('models:\n  cheap:\n    backend: opnai\n')).toMatch(
      /^rlm\.config\.yaml: models\.cheap\.backend: unknown backend "opnai" \(did you mean "openai"\?\); valid backends: /,
    );
    expect(bad('models:\n  cheap:\n    price: { input: 1 }\n')).toBe('rlm.config.yaml: models.cheap.price.output: is required: USD per million tokens');
    expect(bad('models:\n  cheap:\n    price: { input: lots, output: 1 }\n')).toBe(
      'rlm.config.yaml: models.cheap.price.input: must be a number (USD per million tokens)',
    );
    expect(bad('models:\n  cheap: 3\n')).toBe('rlm.config.yaml: models.cheap: must be a mapping of settings');
    expect(bad('models: [a, b]\n')).toBe('rlm.config.yaml: models: must be a mapping of settings');
    expect(bad('models:\n  "a b": {}\n')).toBe('rlm.config.yaml: models."a b": a model name must not be empty or hold spaces or "="');
    expect(bad('models:\n  gpt-4.1:\n    maxOutputTokens: 0\n')).toBe(
      'rlm.config.yaml: models."gpt-4.1".maxOutputTokens: must be a whole number greater than 0',
    );
    const secret = bad('models:\n  cheap:\n    apiKeyEnv: sk-proj-secret\n');
    expect(secret).toMatch(/^rlm\.config\.yaml: models\.cheap\.apiKeyEnv: must be the NAME of an environment variable/);
    expect(secret).not.toContain('secret');
  });

  it('reads --model-alias NAME, NAME=BACKEND:MODEL and NAME=MODEL', () => {
    expect(parseModelAlias('gpt-5-nano')).toEqual(['gpt-5-nano', { model: 'gpt-5-nano' }]);
    expect(parseModelAlias('cheap=openai:gpt-5-nano')).toEqual(['cheap', { backend: 'openai', model: 'gpt-5-nano' }]);
    expect(parseModelAlias('local=ollama:qwen3:8b')).toEqual(['local', { backend: 'ollama', model: 'qwen3:8b' }]);
    expect(parseModelAlias('cheap=gpt-5-nano')).toEqual(['cheap', { model: 'gpt-5-nano' }]);
    expect(layerFromFlags({ 'model-alias': ['gpt-5-nano', 'cheap=openai:gpt-5-nano'] })).toEqual({
      models: { 'gpt-5-nano': { model: 'gpt-5-nano' }, cheap: { backend: 'openai', model: 'gpt-5-nano' } },
    });
  });

  it('refuses a malformed --model-alias as a usage error that shows the form that works', () => {
    expect(message(() => parseModelAlias('cheap=opnai:gpt-5-nano'))).toMatch(
      /^--model-alias cheap=opnai:gpt-5-nano: unknown backend "opnai" \(did you mean "openai"\?\); write NAME=BACKEND:MODEL with a backend of: anthropic, /,
    );
    expect(message(() => parseModelAlias('openai:gpt-5-nano'))).toBe(
      '--model-alias openai:gpt-5-nano: give the name cells will use: NAME=openai:gpt-5-nano (e.g. gpt-5-nano=openai:gpt-5-nano)',
    );
    expect(message(() => parseModelAlias('=openai:gpt-5'))).toMatch(
      /^--model-alias =openai:gpt-5: a model name must not be empty .*write NAME or NAME=BACKEND:MODEL/,
    );
    expect(message(() => parseModelAlias('cheap='))).toMatch(/^--model-alias cheap=: no model after "="/);
    expect(message(() => parseModelAlias('cheap=openai:'))).toBe(
      '--model-alias cheap=openai:: no model after "openai:"; write NAME=BACKEND:MODEL (e.g. cheap=openai:gpt-5-mini)',
    );
    expect(message(() => layerFromFlags({ 'model-alias': ['a=x', 'a=y'] }))).toBe('--model-alias a=y: the name "a" is given twice; give each name once');
    expect(() => parseModelAlias('cheap=opnai:x')).toThrow(UsageError);
    expect(() => parseModelAlias('cheap=opnai:x')).not.toThrow(ConfigError);
  });

  it("lets a flag replace the config file's entry of the same name whole, and keeps the others", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-config-'));
    await writeFile(
      path.join(dir, 'rlm.config.yaml'),
      [
        'root: { backend: openai, model: gpt-5-mini }',
        'models:',
        '  cheap: { backend: openai, model: gpt-4.1-nano, maxOutputTokens: 50, price: { input: 0.1, output: 0.4 } }',
        '  child: { model: gpt-5 }',
        '',
      ].join('\n'),
    );
    const fromFile = await resolveSettings({ flags: {}, env: {}, cwd: dir });
    expect(fromFile.models.cheap).toMatchObject({ model: 'gpt-4.1-nano', maxOutputTokens: 50 });
    expect(fromFile.prices).toEqual({ 'gpt-4.1-nano': { input: 0.1, output: 0.4 } });

    const flagged = await resolveSettings({ flags: { 'model-alias': ['cheap=openai:gpt-5-nano'] }, env: {}, cwd: dir });
    expect(flagged.models.cheap).toEqual({ backend: 'openai', model: 'gpt-5-nano', env: {} });
    expect(flagged.models.child).toMatchObject({ backend: 'openai', model: 'gpt-5' });
    // The file's price was for the model it named, not for the flag's.
    expect(flagged.prices).toBeUndefined();
  });

  it('refuses two prices for one model id in the config file naming the file', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-config-'));
    await writeFile(
      path.join(dir, 'rlm.config.yaml'),
      'models:\n  a: { model: m, price: { input: 1, output: 2 } }\n  b: { model: m, price: { input: 1, output: 3 } }\n',
    );
    await expect(resolveSettings({ flags: {}, env: {}, cwd: dir })).rejects.toThrow(
      'rlm.config.yaml: models.b.price: models.a.price already gives model "m" another price; give each model id one price (remove one of them)',
    );
  });
});
