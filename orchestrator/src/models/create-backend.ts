/**
 * One factory from a role's settings (the CLI's flags, environment and config file) to a backend:
 * `anthropic`, `claude-cli`, or any OpenAI-compatible preset.
 */
import { closest, suggestion } from '../did-you-mean.js';
import { InvalidOptionError } from '../errors.js';
import { createAnthropicBackend } from './anthropic-backend.js';
import { createClaudeCliBackend } from './claude-cli-backend.js';
import type { ModelBackend } from './model-backend.js';
import type { FetchFunction } from './openai-compatible-backend.js';
import { OPENAI_COMPATIBLE_PRESETS, PRESET_NAMES, createPresetBackend, isPresetName, type PresetName } from './openai-presets.js';
import type { ResilienceOptions } from './resilience.js';

/** Every backend name {@link createBackend} knows. */
export const BACKEND_NAMES: readonly string[] = ['anthropic', 'claude-cli', ...PRESET_NAMES];

/** A backend {@link createBackend} knows by name: `anthropic`, `claude-cli`, or an OpenAI-compatible preset ({@link PresetName}). */
export type BackendName = 'anthropic' | 'claude-cli' | PresetName;

/** The model used when a role names none, per backend; absent where only the user can know (vllm, azure-openai, custom…). */
export const DEFAULT_MODELS: Readonly<Partial<Record<BackendName, string>>> = Object.freeze({
  anthropic: 'claude-sonnet-5-5',
  'claude-cli': 'sonnet',
  ...Object.fromEntries(
    Object.entries(OPENAI_COMPATIBLE_PRESETS).flatMap(([name, preset]) =>
      'defaultModel' in preset && preset.defaultModel ? [[name, preset.defaultModel]] : [],
    ),
  ),
});

/** The environment variable each backend reads its key from by default (none for claude-cli). */
export const DEFAULT_KEY_VARIABLES: Readonly<Partial<Record<BackendName, string>>> = Object.freeze({
  anthropic: 'ANTHROPIC_API_KEY',
  ...Object.fromEntries(
    Object.entries(OPENAI_COMPATIBLE_PRESETS).flatMap(([name, preset]) => ('apiKeyEnv' in preset && preset.apiKeyEnv ? [[name, preset.apiKeyEnv]] : [])),
  ),
});

/** What one role asks for. */
export interface BackendSpec extends ResilienceOptions {
  /** `anthropic`, `claude-cli`, or a preset name (see {@link BACKEND_NAMES}). */
  backend: string;
  /** The model id; default {@link DEFAULT_MODELS}[backend]. */
  model?: string | undefined;
  /** Overrides the backend's base URL. */
  baseURL?: string | undefined;
  /** The NAME of the environment variable holding the key; default the backend's own. */
  apiKeyEnv?: string | undefined;
  /** Where keys are read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** The `fetch` HTTP backends send requests with (not `claude-cli`); default the global one. A seam for tests. */
  fetch?: FetchFunction | undefined;
}

/** What {@link createBackend} returns: the backend and the model id it resolved (the given one, or the backend's default). */
export interface CreatedBackend {
  /** The backend, ready for {@link ModelBackend.complete} calls; it holds no connection to close. */
  backend: ModelBackend;
  /** The model id to send: the one asked for, or the backend's default when none was. */
  model: string;
}

export function isBackendName(value: string): value is BackendName {
  return value === 'anthropic' || value === 'claude-cli' || isPresetName(value);
}

/**
 * Creates the backend a role asks for.
 *
 * @throws {InvalidOptionError} the backend name is unknown (the message lists the valid ones), or
 *   the backend has no default model and none was given.
 * @throws {RlmError} the key's variable is unset (one line naming it), or a backend option is invalid.
 * @throws {ModelCallError} `claude-cli` only: its command is not installed (`kind: 'unreachable'`).
 */
export function createBackend(spec: BackendSpec): CreatedBackend {
  const { backend: name, model: requested, baseURL, apiKeyEnv, env, fetch, ...resilience } = spec;
  if (!isBackendName(name)) {
    throw new InvalidOptionError(
      'backend',
      `unknown backend ${JSON.stringify(name)}${suggestion(name, BACKEND_NAMES)}; valid backends: ${BACKEND_NAMES.join(', ')}`,
    );
  }
  const model = requested ?? DEFAULT_MODELS[name];
  if (model === undefined) {
    throw new InvalidOptionError('model', `the ${name} backend has no default model; name one with --model (or model: in the config file)`);
  }
  const common = { ...definedOnly(resilience), ...(env ? { env } : {}), ...(apiKeyEnv ? { apiKeyEnv } : {}) };
  switch (name) {
    case 'anthropic':
      return { backend: createAnthropicBackend({ ...common, ...(baseURL ? { baseURL } : {}), ...(fetch ? { fetch } : {}) }), model };
    case 'claude-cli': {
      const { apiKeyEnv: _unused, ...rest } = common;
      return { backend: createClaudeCliBackend(rest), model };
    }
    default:
      return { backend: createPresetBackend(name, { ...common, ...(baseURL ? { baseURL } : {}), ...(fetch ? { fetch } : {}) }), model };
  }
}

// Where the config file's reader and the schema have always found them.
export { closest, suggestion };

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
