/**
 * Where a run's settings come from, in order of precedence: flags, then environment variables,
 * then the config file, then defaults. Flags and variables are turned into the config file's shape
 * (one table below maps each to its key path), checked by the same schema, and merged key by key.
 */
import path from 'node:path';
import { DEFAULT_LIMITS } from '../../engine/run-budget.js';
import { DEFAULT_MODELS, isBackendName, type BackendSpec } from '../../models/create-backend.js';
import { UsageError } from '../cli-io.js';
import { ConfigError, loadConfig, validateConfig, type LoadedConfig } from './load-config.js';
import type { RlmConfig, RoleConfig } from './config-schema.js';

type ValueKind = 'string' | 'integer' | 'number';

/** One setting that a flag and/or an environment variable can give. */
export interface SettingSource {
  /** Key path in the config file, e.g. `['limits', 'maxIterations']`. */
  path: readonly [string, ...string[]];
  /** The flag's long name, without dashes. */
  flag?: string;
  env?: string;
  kind: ValueKind;
  /** For `--help` and the README. */
  description: string;
}

/** Every setting a flag or environment variable can give, and where it lands in the config shape. */
export const SETTING_SOURCES: readonly SettingSource[] = [
  { path: ['root', 'backend'], flag: 'backend', env: 'RLM_BACKEND', kind: 'string', description: 'backend of the root model' },
  { path: ['root', 'model'], flag: 'model', env: 'RLM_MODEL', kind: 'string', description: 'root model id' },
  { path: ['root', 'baseURL'], flag: 'base-url', env: 'RLM_BASE_URL', kind: 'string', description: "root backend's base URL" },
  {
    path: ['root', 'maxOutputTokens'],
    flag: 'max-output-tokens',
    env: 'RLM_MAX_OUTPUT_TOKENS',
    kind: 'integer',
    description: 'cap on tokens per root model call',
  },
  {
    path: ['sub', 'backend'],
    flag: 'sub-backend',
    env: 'RLM_SUB_BACKEND',
    kind: 'string',
    description: 'backend of the sub model (default: the root backend)',
  },
  { path: ['sub', 'model'], flag: 'sub-model', env: 'RLM_SUB_MODEL', kind: 'string', description: 'sub model id, for llm_query (default: the root model)' },
  { path: ['sub', 'baseURL'], flag: 'sub-base-url', env: 'RLM_SUB_BASE_URL', kind: 'string', description: "sub backend's base URL" },
  { path: ['language'], flag: 'language', env: 'RLM_LANGUAGE', kind: 'string', description: 'REPL language: javascript or python' },
  { path: ['limits', 'maxIterations'], flag: 'max-iterations', env: 'RLM_MAX_ITERATIONS', kind: 'integer', description: 'model turns, whole tree' },
  { path: ['limits', 'maxDepth'], flag: 'max-depth', env: 'RLM_MAX_DEPTH', kind: 'integer', description: 'deepest child RLM (0: rlm_query is llm_query)' },
  { path: ['limits', 'timeoutSeconds'], flag: 'timeout', env: 'RLM_TIMEOUT', kind: 'number', description: 'wall-clock limit of the run, seconds' },
  { path: ['limits', 'cellTimeoutSeconds'], flag: 'cell-timeout', env: 'RLM_CELL_TIMEOUT', kind: 'number', description: 'limit of one cell, seconds' },
  { path: ['limits', 'maxCostUsd'], flag: 'budget', env: 'RLM_BUDGET', kind: 'number', description: 'spending limit, USD' },
  { path: ['limits', 'maxTokens'], flag: 'max-tokens', env: 'RLM_MAX_TOKENS', kind: 'integer', description: 'input + output tokens, whole tree' },
  {
    path: ['limits', 'maxSandboxes'],
    flag: 'max-sandboxes',
    env: 'RLM_MAX_SANDBOXES',
    kind: 'integer',
    description: 'sandboxes alive at once, root included (default 4)',
  },
  { path: ['sandbox', 'runtime'], flag: 'runtime', env: 'RLM_SANDBOX_RUNTIME', kind: 'string', description: 'OCI runtime of the sandboxes, e.g. runsc' },
  {
    path: ['sandbox', 'memoryMb'],
    flag: 'memory-mb',
    env: 'RLM_SANDBOX_MEMORY_MB',
    kind: 'number',
    description: 'memory of each sandbox in MiB (default 1024)',
  },
  { path: ['logDir'], flag: 'log-dir', env: 'RLM_LOG_DIR', kind: 'string', description: 'directory for JSONL trajectories' },
];

/** The variable naming the config file, like `--config`. */
export const CONFIG_ENV = 'RLM_CONFIG';

export type ConfigLayer = Record<string, unknown>;

/**
 * The flags' settings in the config shape.
 *
 * @throws {UsageError} a value is malformed; the message names the flag.
 */
export function layerFromFlags(values: Readonly<Record<string, unknown>>): RlmConfig {
  const layer: ConfigLayer = {};
  const origins = new Map<string, string>();
  for (const source of SETTING_SOURCES) {
    if (!source.flag) continue;
    const value = values[source.flag];
    if (typeof value !== 'string') continue;
    const name = `--${source.flag}`;
    setAt(layer, source.path, convert(value, source.kind, name));
    origins.set(source.path.join('.'), name);
  }
  return validateLayer(layer, origins);
}

/**
 * The environment's settings in the config shape; empty variables count as unset.
 *
 * @throws {ConfigError} a value is malformed; the message names the variable.
 */
export function layerFromEnv(env: NodeJS.ProcessEnv): RlmConfig {
  const layer: ConfigLayer = {};
  const origins = new Map<string, string>();
  for (const source of SETTING_SOURCES) {
    if (!source.env) continue;
    const value = env[source.env];
    if (value === undefined || value === '') continue;
    setAt(layer, source.path, convert(value, source.kind, source.env));
    origins.set(source.path.join('.'), source.env);
  }
  return validateLayer(layer, origins);
}

/** Merges layers key by key; a later layer wins. Records (prices) merge by model. */
export function mergeLayers(...layers: readonly (RlmConfig | undefined)[]): RlmConfig {
  const merged: ConfigLayer = {};
  for (const layer of layers) if (layer) deepAssign(merged, layer as ConfigLayer);
  return merged as RlmConfig;
}

/** A run's settings with every source applied. */
export interface ResolvedSettings {
  config: RlmConfig;
  /** The config file read, if any. */
  configFile: LoadedConfig | undefined;
  root: BackendSpec & Pick<RoleConfig, 'maxOutputTokens' | 'contextWindowTokens'>;
  sub: BackendSpec & Pick<RoleConfig, 'maxOutputTokens' | 'contextWindowTokens'>;
  /** Whether the sub role is the root's backend (then one backend instance serves both). */
  subSharesRootBackend: boolean;
}

/** The backend when no source names one. */
export const DEFAULT_BACKEND = 'anthropic';

/**
 * Reads the config file and applies flags > environment > config file > defaults.
 *
 * @throws {UsageError} a flag value is malformed.
 * @throws {ConfigError} the config file or an environment value is malformed.
 */
export async function resolveSettings(options: { flags: Readonly<Record<string, unknown>>; env: NodeJS.ProcessEnv; cwd: string }): Promise<ResolvedSettings> {
  const { flags, env, cwd } = options;
  const flagLayer = layerFromFlags(flags);
  const envLayer = layerFromEnv(env);
  const explicit = typeof flags.config === 'string' ? flags.config : env[CONFIG_ENV] || undefined;
  const configFile = await loadConfig({ cwd, explicit });
  const fileLayer = configFile ? relativeTo(configFile.config, path.dirname(configFile.path)) : undefined;
  const config = mergeLayers(fileLayer, envLayer, flagLayer);
  if (config.logDir) config.logDir = path.resolve(cwd, config.logDir);
  return { config, configFile, ...resolveRoles(config, env) };
}

/**
 * The two roles' backend specs. The sub role inherits the root's backend, base URL, key variable
 * and model unless it names its own backend; a sub role on another backend takes that backend's
 * defaults instead, so a key meant for one provider never goes to another.
 */
export function resolveRoles(config: RlmConfig, env: NodeJS.ProcessEnv): Pick<ResolvedSettings, 'root' | 'sub' | 'subSharesRootBackend'> {
  const rootRole = config.root ?? {};
  const subRole = config.sub ?? {};
  const rootBackend = rootRole.backend ?? DEFAULT_BACKEND;
  const root = roleSpec(rootBackend, rootRole, env);
  const subBackend = subRole.backend ?? rootBackend;
  const sameProvider = subBackend === rootBackend;
  const inherited: RoleConfig = sameProvider
    ? { ...withoutUndefined({ ...rootRole, maxOutputTokens: undefined, contextWindowTokens: undefined }), ...withoutUndefined(subRole) }
    : subRole;
  if (sameProvider && subRole.model === undefined) inherited.model = root.model;
  const sub = roleSpec(subBackend, inherited, env);
  const subSharesRootBackend =
    sameProvider &&
    sub.baseURL === root.baseURL &&
    sub.apiKeyEnv === root.apiKeyEnv &&
    sub.maxRetries === root.maxRetries &&
    sub.timeoutMs === root.timeoutMs &&
    sub.maxConcurrency === root.maxConcurrency;
  return { root, sub, subSharesRootBackend };
}

function roleSpec(backend: string, role: RoleConfig, env: NodeJS.ProcessEnv): ResolvedSettings['root'] {
  return withoutUndefined({
    backend,
    model: role.model ?? (isBackendName(backend) ? DEFAULT_MODELS[backend] : undefined),
    baseURL: role.baseURL,
    apiKeyEnv: role.apiKeyEnv,
    maxRetries: role.maxRetries,
    timeoutMs: role.requestTimeoutSeconds === undefined ? undefined : Math.round(role.requestTimeoutSeconds * 1000),
    maxConcurrency: role.maxConcurrency,
    maxOutputTokens: role.maxOutputTokens,
    contextWindowTokens: role.contextWindowTokens,
    env,
  }) as ResolvedSettings['root'];
}

/** The engine's limits from the merged settings (seconds become milliseconds, MiB bytes). */
export function limitsOf(config: RlmConfig) {
  const limits = config.limits ?? {};
  return withoutUndefined({
    maxIterations: limits.maxIterations ?? DEFAULT_LIMITS.maxIterations,
    maxDepth: limits.maxDepth ?? DEFAULT_LIMITS.maxDepth,
    timeoutMs: limits.timeoutSeconds === undefined ? undefined : Math.round(limits.timeoutSeconds * 1000),
    cellTimeoutMs: limits.cellTimeoutSeconds === undefined ? DEFAULT_LIMITS.cellTimeoutMs : Math.round(limits.cellTimeoutSeconds * 1000),
    maxCostUsd: limits.maxCostUsd,
    maxTokens: limits.maxTokens,
    maxConsecutiveFailures: limits.maxConsecutiveFailures ?? DEFAULT_LIMITS.maxConsecutiveFailures,
    subcallConcurrency: limits.subcallConcurrency ?? DEFAULT_LIMITS.subcallConcurrency,
    maxSandboxes: limits.maxSandboxes ?? DEFAULT_LIMITS.maxSandboxes,
    maxSubcallPromptBytesPerCell: mibToBytes(limits.maxSubcallPromptMbPerCell) ?? DEFAULT_LIMITS.maxSubcallPromptBytesPerCell,
    maxSubcallPromptBytesPerRun: mibToBytes(limits.maxSubcallPromptMbPerRun) ?? DEFAULT_LIMITS.maxSubcallPromptBytesPerRun,
  });
}

function mibToBytes(value: number | undefined): number | undefined {
  return value === undefined ? undefined : Math.max(1, Math.round(value * 1024 * 1024));
}

/** The sandbox options from the merged settings (MiB become bytes). */
export function sandboxOptionsOf(config: RlmConfig) {
  const sandbox = config.sandbox ?? {};
  const mib = (value: number | undefined) => (value === undefined ? undefined : Math.round(value * 1024 * 1024));
  const limits = withoutUndefined({ memoryBytes: mib(sandbox.memoryMb), cpus: sandbox.cpus, pids: sandbox.pids, tmpfsBytes: mib(sandbox.tmpfsMb) });
  return withoutUndefined({ runtime: sandbox.runtime, image: sandbox.image, limits: Object.keys(limits).length > 0 ? limits : undefined });
}

// ---------------------------------------------------------------------------------------------

function convert(value: string, kind: ValueKind, name: string): string | number {
  if (kind === 'string') return value;
  const number = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw settingError(name, `must be a ${kind === 'integer' ? 'whole number' : 'number'}, got ${JSON.stringify(value)}`);
  }
  return number;
}

/** A malformed flag (exit 2 with the `--help` hint) or variable (exit 2, no hint). */
function settingError(name: string, message: string): UsageError {
  return name.startsWith('--') ? new UsageError(`${name}: ${message}`) : new ConfigError(`${name}: ${message}`);
}

function validateLayer(layer: ConfigLayer, origins: ReadonlyMap<string, string>): RlmConfig {
  try {
    return validateConfig(layer, '');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // validateConfig says `: key.path: message`; name the flag or variable instead of the key path.
    const match = /^: ([\w.]+): (.*)$/.exec(error.message);
    const origin = match ? origins.get(match[1] ?? '') : undefined;
    throw settingError(origin ?? 'settings', match?.[2] ?? error.message);
  }
}

function setAt(target: ConfigLayer, keys: readonly string[], value: unknown): void {
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next === 'object' && next !== null) node = next as ConfigLayer;
    else node = node[key] = {};
  }
  node[keys[keys.length - 1] as string] = value;
}

function deepAssign(target: ConfigLayer, source: ConfigLayer): void {
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) deepAssign(existing, value);
    else target[key] = isPlainObject(value) ? structuredClone(value) : value;
  }
}

function isPlainObject(value: unknown): value is ConfigLayer {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function relativeTo(config: RlmConfig, dir: string): RlmConfig {
  return config.logDir ? { ...config, logDir: path.resolve(dir, config.logDir) } : config;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
