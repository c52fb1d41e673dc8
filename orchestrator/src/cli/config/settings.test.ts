import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errorMessage } from '../../errors.js';
import { UsageError } from '../cli-io.js';
import { ConfigError, loadConfig, parseConfigText } from './load-config.js';
import { layerFromEnv, layerFromFlags, limitsOf, mergeLayers, resolveRoles, resolveSettings, sandboxOptionsOf } from './settings.js';

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
      'rlm.config.yaml: limits.maxIterations: must be greater than 0',
    );
    expect(message(() => parseConfigText('limits:\n  timeoutSeconds: soon\n', 'f.yml', 'yaml'))).toBe('f.yml: limits.timeoutSeconds: must be a number');
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
    expect(message(() => layerFromFlags({ 'max-depth': '-1' }))).toBe('--max-depth: must be 0 or more');
    expect(message(() => layerFromFlags({ budget: 'lots' }))).toBe('--budget: must be a number, got "lots"');
    expect(message(() => layerFromFlags({ language: 'cobol' }))).toBe('--language: must be javascript or python');
    expect(() => layerFromFlags({ budget: 'lots' })).toThrow(UsageError);
    expect(message(() => layerFromEnv({ RLM_TIMEOUT: 'soon' }))).toBe('RLM_TIMEOUT: must be a number, got "soon"');
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
    expect(message(() => layerFromFlags({ 'max-sandboxes': '0' }))).toBe('--max-sandboxes: must be greater than 0');
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
