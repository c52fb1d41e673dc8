/**
 * The engine's model roles from resolved settings: the root, the sub model and every named model
 * (`models:` in the config file, `--model-alias`). Roles that reach the same provider the same way
 * share one backend instance, so they share its client and its cap on requests in flight.
 */
import type { ModelRole, RlmOptions } from '../../engine/rlm-options.js';
import { InvalidOptionError } from '../../errors.js';
import { createBackend, type CreatedBackend } from '../../models/create-backend.js';
import type { ResolvedSettings, RoleSpec } from './settings.js';

/**
 * Creates the backends and returns the roles for {@link RlmOptions}; `models` is absent when no
 * model is named.
 *
 * @throws {RlmError} a backend cannot be created (unknown name, missing key or base URL: one line
 *   naming it); for a named model the message starts with `model "NAME":`.
 * @throws {ModelCallError} `claude-cli` only: its command is not installed.
 */
export function createModelRoles(settings: Pick<ResolvedSettings, 'root' | 'sub' | 'models'>): Pick<RlmOptions, 'root' | 'sub' | 'models'> {
  const backends = new Map<string, CreatedBackend>();
  const roleOf = (spec: RoleSpec, label?: string): ModelRole => {
    const key = connectionKey(spec);
    let created = backends.get(key);
    if (!created) {
      try {
        created = createBackend(spec);
      } catch (error) {
        throw label === undefined ? error : namedModelError(label, error);
      }
      backends.set(key, created);
    }
    return {
      backend: created.backend,
      // The settings fill in each backend's default model; createBackend's is the same one.
      model: spec.model ?? created.model,
      ...(spec.maxOutputTokens === undefined ? {} : { maxOutputTokens: spec.maxOutputTokens }),
      ...(spec.contextWindowTokens === undefined ? {} : { contextWindowTokens: spec.contextWindowTokens }),
    };
  };
  const root = roleOf(settings.root);
  const sub = roleOf(settings.sub);
  const names = Object.keys(settings.models);
  if (names.length === 0) return { root, sub };
  const models: Record<string, ModelRole> = {};
  for (const name of names) models[name] = roleOf(settings.models[name] as RoleSpec, name);
  return { root, sub, models };
}

/** Which settings make a distinct client: the backend and how it is reached (not the model or its limits). */
function connectionKey(spec: RoleSpec): string {
  return JSON.stringify([spec.backend, spec.baseURL, spec.apiKeyEnv, spec.maxRetries, spec.timeoutMs, spec.maxConcurrency]);
}

/** A named model's backend error, saying which model and where its settings go. */
function namedModelError(name: string, error: unknown): unknown {
  if (!InvalidOptionError.isInstance(error)) return error;
  const where = error.option === 'baseURL' ? `; a named model's base URL is models.${name}.baseURL in the config file` : '';
  return new InvalidOptionError(`model ${JSON.stringify(name)}`, `${error.message}${where}`, { cause: error });
}
