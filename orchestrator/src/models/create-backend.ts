/**
 * One factory from a role's settings (the CLI's flags, environment and config file) to a backend:
 * `anthropic`, `claude-cli`, or any OpenAI-compatible preset.
 */
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
  backend: ModelBackend;
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

/** ` (did you mean "x"?)` when one of `candidates` is close to `value`, else the empty string. */
export function suggestion(value: string, candidates: readonly string[]): string {
  const close = closest(value, candidates);
  return close ? ` (did you mean ${JSON.stringify(close)}?)` : '';
}

/** The candidate nearest to `value` by edit distance, when it is near enough to be a typo. */
export function closest(value: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(value.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(value.length, best.length) / 3)) ? best : undefined;
}

/** Edit distance counting a swap of two neighbours as one edit (optimal string alignment), so `modle` is one from `model`. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
