/**
 * Where a run's settings come from, in order of precedence: flags, then environment variables,
 * then the config file, then defaults. Flags and variables are turned into the config file's shape
 * (one table below maps each to its key path), checked by the same schema, and merged key by key.
 */
import path from 'node:path';
import { DEFAULT_LIMITS } from '../../engine/run-budget.js';
import { suggestion } from '../../did-you-mean.js';
import { BACKEND_NAMES, DEFAULT_MODELS, isBackendName, type BackendSpec } from '../../models/create-backend.js';
import type { PriceOverrides } from '../../usage/pricing.js';
import { UsageError } from '../cli-io.js';
import { flagsOf, type SettingKind } from '../flags/cli-flags.js';
import { gotValue } from '../flags/parse-flags.js';
import { ConfigError, loadConfig, validateConfig, type LoadedConfig } from './load-config.js';
import { ModelName, type NamedModelConfig, type PriceConfig, type RlmConfig, type RoleConfig } from './config-schema.js';

/** One setting that a flag and/or an environment variable can give. */
export interface SettingSource {
  /** Key path in the config file, e.g. `['limits', 'maxIterations']`. */
  path: readonly [string, ...string[]];
  /** The flag's long name, without dashes. */
  flag: string;
  /** The flag may be given more than once (each adds an entry). */
  multiple: boolean;
  env?: string;
  /** `model-alias`: `NAME` or `NAME=[BACKEND:]MODEL`, one entry of `models` (see {@link parseModelAlias}). */
  kind: SettingKind;
}

/** Every setting a flag or environment variable can give, and where it lands in the config shape: the main command's flags that carry a `setting` (flags/cli-flags.ts). */
export const SETTING_SOURCES: readonly SettingSource[] = flagsOf('run').flatMap((flag) =>
  flag.setting
    ? [{ path: flag.setting.path, flag: flag.name, multiple: flag.multiple ?? false, kind: flag.setting.kind, ...(flag.env ? { env: flag.env } : {}) }]
    : [],
);

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
  const origins = new Map<string, Origin>();
  for (const source of SETTING_SOURCES) {
    const value = values[source.flag];
    const name = `--${source.flag}`;
    if (source.kind === 'model-alias') {
      const models: Record<string, NamedModelConfig> = {};
      for (const alias of typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v) => typeof v === 'string') : []) {
        const [modelName, entry] = parseModelAlias(alias);
        if (Object.hasOwn(models, modelName))
          throw new UsageError(`${name} ${alias}: the name ${JSON.stringify(modelName)} is given twice; give each name once`);
        models[modelName] = entry;
        origins.set(`${source.path.join('.')}.${modelName}`, { name: `${name} ${alias}` });
      }
      if (Object.keys(models).length > 0) setAt(layer, source.path, models);
      continue;
    }
    if (typeof value !== 'string') continue;
    setAt(layer, source.path, convert(value, source.kind, name));
    origins.set(source.path.join('.'), originOfValue(name, source.kind, value));
  }
  return validateLayer(layer, origins);
}

/**
 * One `--model-alias` value as a name and its `models` entry:
 *
 * - `NAME`: the model id NAME on the root's backend, base URL and key (`--model-alias gpt-5-nano`);
 * - `NAME=BACKEND:MODEL`: MODEL on BACKEND, inheriting the root's base URL and key only when
 *   BACKEND is the root's (`--model-alias cheap=openai:gpt-5-nano`); MODEL may hold colons
 *   (`local=ollama:qwen3:8b`);
 * - `NAME=MODEL` (no colon): MODEL on the root's backend.
 *
 * @throws {UsageError} the value is malformed or names an unknown backend; the message shows the
 *   value and the form that works.
 */
export function parseModelAlias(value: string): [name: string, entry: NamedModelConfig] {
  const flag = `--model-alias ${value}`;
  const equals = value.indexOf('=');
  const name = equals === -1 ? value : value.slice(0, equals);
  const checked = ModelName.safeParse(name);
  if (!checked.success) {
    throw new UsageError(`${flag}: ${checked.error.issues[0]?.message ?? 'bad name'}; write NAME or NAME=BACKEND:MODEL (e.g. cheap=openai:gpt-5-nano)`);
  }
  if (equals === -1) {
    // `openai:gpt-5-nano` alone is a backend and model without a name, not a model id.
    const colon = name.indexOf(':');
    if (colon > 0 && BACKEND_NAMES.includes(name.slice(0, colon))) {
      throw new UsageError(`${flag}: give the name cells will use: NAME=${name} (e.g. ${name.slice(colon + 1) || 'cheap'}=${name})`);
    }
    return [name, { model: name }];
  }
  const target = value.slice(equals + 1);
  const colon = target.indexOf(':');
  if (colon === -1) {
    if (target === '') throw new UsageError(`${flag}: no model after "="; write NAME=BACKEND:MODEL (e.g. ${name}=openai:gpt-5-nano) or NAME=MODEL`);
    return [name, { model: target }];
  }
  const backend = target.slice(0, colon);
  const model = target.slice(colon + 1);
  if (!BACKEND_NAMES.includes(backend)) {
    throw new UsageError(
      `${flag}: unknown backend ${JSON.stringify(backend)}${suggestion(backend, BACKEND_NAMES)}; write NAME=BACKEND:MODEL with a backend of: ${BACKEND_NAMES.join(', ')}`,
    );
  }
  if (model === '')
    throw new UsageError(
      `${flag}: no model after "${backend}:"; write NAME=BACKEND:MODEL (e.g. ${name}=${backend}:${DEFAULT_MODELS[backend as keyof typeof DEFAULT_MODELS] ?? 'my-model'})`,
    );
  return [name, { backend, model }];
}

/**
 * The environment's settings in the config shape; empty variables count as unset.
 *
 * @throws {ConfigError} a value is malformed; the message names the variable.
 */
export function layerFromEnv(env: NodeJS.ProcessEnv): RlmConfig {
  const layer: ConfigLayer = {};
  const origins = new Map<string, Origin>();
  for (const source of SETTING_SOURCES) {
    if (!source.env) continue;
    const value = env[source.env];
    if (value === undefined || value === '') continue;
    setAt(layer, source.path, convert(value, source.kind, source.env));
    origins.set(source.path.join('.'), originOfValue(source.env, source.kind, value));
  }
  return validateLayer(layer, origins);
}

/**
 * Merges layers key by key; a later layer wins. Records merge by key: prices by model, named
 * models by name — but a named model is replaced whole, since its settings (a price, a base URL)
 * belong to the model it named and must not leak onto another.
 */
export function mergeLayers(...layers: readonly (RlmConfig | undefined)[]): RlmConfig {
  const merged: ConfigLayer = {};
  for (const layer of layers) {
    if (!layer) continue;
    const { models, ...rest } = layer;
    deepAssign(merged, rest as ConfigLayer);
    if (models) merged.models = { ...(merged.models as ConfigLayer | undefined), ...structuredClone(models) };
  }
  return merged as RlmConfig;
}

/** One model role as settings give it: the backend to create and the model's own limits. */
export type RoleSpec = BackendSpec & Pick<RoleConfig, 'maxOutputTokens' | 'contextWindowTokens'>;

/** A run's settings with every source applied. */
export interface ResolvedSettings {
  config: RlmConfig;
  /** The config file read, if any. */
  configFile: LoadedConfig | undefined;
  root: RoleSpec;
  sub: RoleSpec;
  /** Whether the sub role is the root's backend (then one backend instance serves both). */
  subSharesRootBackend: boolean;
  /** The models cells may name (`models:` and `--model-alias`), by name; each has its model id. */
  models: Readonly<Record<string, RoleSpec & { model: string }>>;
  /** `prices:` with each named model's `price` under its model id; undefined when there is none. */
  prices: PriceOverrides | undefined;
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
  const roles = resolveRoles(config, env);
  return { config, configFile, ...roles, prices: pricesOf(config, roles.models, configFile?.file ?? 'settings') };
}

/**
 * The roles' backend specs. The sub role and each named model inherit the root's backend, base
 * URL, key variable, retries, timeout and concurrency unless they name a backend of their own; one
 * on another backend takes that backend's defaults instead, so a key meant for one provider never
 * goes to another. What belongs to a model (its output cap and context window) is never inherited.
 * The sub role's model defaults to the root's; a named model's to its name.
 */
export function resolveRoles(config: RlmConfig, env: NodeJS.ProcessEnv): Pick<ResolvedSettings, 'root' | 'sub' | 'subSharesRootBackend' | 'models'> {
  const rootRole = config.root ?? {};
  const subRole = config.sub ?? {};
  const rootBackend = rootRole.backend ?? DEFAULT_BACKEND;
  const root = roleSpec(rootBackend, rootRole, env);
  const inherit = (role: RoleConfig, model: string | undefined): [string, RoleConfig] => {
    const backend = role.backend ?? rootBackend;
    if (backend !== rootBackend) return [backend, role];
    const { model: _model, maxOutputTokens: _cap, contextWindowTokens: _window, ...connection } = rootRole;
    return [backend, { ...withoutUndefined(connection), ...withoutUndefined(role), ...(role.model === undefined && model !== undefined ? { model } : {}) }];
  };
  const subBackend = subRole.backend ?? rootBackend;
  const sameProvider = subBackend === rootBackend;
  const sub = roleSpec(...inherit(subRole, root.model), env);
  const subSharesRootBackend =
    sameProvider &&
    sub.baseURL === root.baseURL &&
    sub.apiKeyEnv === root.apiKeyEnv &&
    sub.maxRetries === root.maxRetries &&
    sub.timeoutMs === root.timeoutMs &&
    sub.maxConcurrency === root.maxConcurrency;
  const models: Record<string, RoleSpec & { model: string }> = {};
  for (const [name, { price: _price, ...role }] of Object.entries(config.models ?? {})) {
    const [backend, inherited] = inherit(role, undefined);
    models[name] = roleSpec(backend, { ...inherited, model: role.model ?? name }, env) as RoleSpec & { model: string };
  }
  return { root, sub, subSharesRootBackend, models };
}

/**
 * `prices:` with each named model's `price` added under its model id.
 *
 * @throws {ConfigError} two entries give one model id different prices; the message names both key
 *   paths in `source`.
 */
export function pricesOf(config: RlmConfig, models: ResolvedSettings['models'], source: string): PriceOverrides | undefined {
  const prices: Record<string, PriceConfig> = { ...config.prices };
  const givenBy = new Map<string, string>(Object.keys(prices).map((id) => [id, `prices.${id}`]));
  for (const [name, entry] of Object.entries(config.models ?? {})) {
    const model = models[name]?.model;
    if (!entry.price || model === undefined) continue;
    const at = `models.${name}.price`;
    const earlier = prices[model];
    if (earlier && !samePrice(earlier, entry.price)) {
      throw new ConfigError(
        `${source}: ${at}: ${givenBy.get(model)} already gives model ${JSON.stringify(model)} another price; give each model id one price (remove one of them)`,
      );
    }
    prices[model] = entry.price;
    givenBy.set(model, at);
  }
  return Object.keys(prices).length > 0 ? prices : undefined;
}

function samePrice(a: PriceConfig, b: PriceConfig): boolean {
  return a.input === b.input && a.output === b.output && a.cacheRead === b.cacheRead && a.cacheWrite === b.cacheWrite;
}

function roleSpec(backend: string, role: RoleConfig, env: NodeJS.ProcessEnv): RoleSpec {
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
  }) as RoleSpec;
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

/** Which flag or variable gave a key of a layer, and the value as given (for a number's error). */
interface Origin {
  name: string;
  given?: string;
}

/** A number's value is shown in its error; a text's is not (it could be a secret pasted in the wrong place). */
function originOfValue(name: string, kind: SettingKind, value: string): Origin {
  return kind === 'integer' || kind === 'number' ? { name, given: value } : { name };
}

function convert(value: string, kind: SettingKind, name: string): string | number {
  if (kind === 'string' || kind === 'model-alias') return value;
  const number = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(number)) {
    throw settingError(name, `must be a ${kind === 'integer' ? 'whole number' : 'number'}`, value);
  }
  return number;
}

/**
 * A malformed flag (exit 2 with the `--help` hint) or variable (exit 2, no hint):
 * `--budget must be a number greater than 0 (got -1)`, `--backend: unknown backend "x"…`.
 */
function settingError(name: string, message: string, given?: string): UsageError {
  const text = `${name}${message.startsWith('must ') ? ' ' : ': '}${message}${given === undefined ? '' : ` (got ${gotValue(given)})`}`;
  return name.startsWith('--') ? new UsageError(text) : new ConfigError(text);
}

function validateLayer(layer: ConfigLayer, origins: ReadonlyMap<string, Origin>): RlmConfig {
  try {
    return validateConfig(layer, '');
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    // validateConfig says `: key.path: message`; name the flag or variable instead of the key path
    // (of a named model's key, the --model-alias value that gave the model).
    const match = /^: (\S+): (.*)$/.exec(error.message);
    const origin = match ? originOf(origins, match[1] ?? '') : undefined;
    throw settingError(origin?.name ?? 'settings', match?.[2] ?? error.message, origin?.given);
  }
}

function originOf(origins: ReadonlyMap<string, Origin>, keyPath: string): Origin | undefined {
  for (let at = keyPath; at !== ''; at = at.includes('.') ? at.slice(0, at.lastIndexOf('.')) : '') {
    const origin = origins.get(at);
    if (origin) return origin;
  }
  return undefined;
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
  let resolved = config.logDir ? { ...config, logDir: path.resolve(dir, config.logDir) } : config;
  if (resolved.serve?.dataDir) resolved = { ...resolved, serve: { ...resolved.serve, dataDir: path.resolve(dir, resolved.serve.dataDir) } };
  return resolved;
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
