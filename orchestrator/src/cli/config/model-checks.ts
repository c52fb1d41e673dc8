/**
 * What `rlm doctor` says about each configured model — the root, the sub model and every named
 * one: its backend, model id, base URL, and whether its key's variable is set. Reads the
 * environment, opens no connection, and never prints a key: variables are named, never shown.
 */
import { DEFAULT_ANTHROPIC_BASE_URL } from '../../models/anthropic-backend.js';
import { errorMessage } from '../../errors.js';
import { OPENAI_COMPATIBLE_PRESETS, isPresetName, resolvePreset } from '../../models/openai-presets.js';
import type { DoctorCheck } from '../commands/doctor-command.js';
import type { ResolvedSettings, RoleSpec } from './settings.js';

/**
 * One check per model: `root model`, `sub model`, then `model NAME` for each named model. A missing
 * key or base URL fails a model the settings name; for the built-in default (no backend or model
 * set anywhere) it is a warning, since each run may still choose with flags.
 */
export function checkModels(
  settings: Pick<ResolvedSettings, 'root' | 'sub' | 'models' | 'config'>,
  env: NodeJS.ProcessEnv,
  options: { claudeInstalled: boolean },
): DoctorCheck[] {
  const { config } = settings;
  const rootChosen = config.root?.backend !== undefined || config.root?.model !== undefined;
  const subChosen = rootChosen || config.sub?.backend !== undefined || config.sub?.model !== undefined;
  return [
    checkModel('root model', 'root', settings.root, env, { ...options, required: rootChosen }),
    checkModel('sub model', 'sub', settings.sub, env, { ...options, required: subChosen }),
    ...Object.entries(settings.models).map(([name, spec]) => checkModel(`model ${name}`, `models.${name}`, spec, env, { ...options, required: true })),
  ];
}

function checkModel(name: string, at: string, spec: RoleSpec, env: NodeJS.ProcessEnv, options: { claudeInstalled: boolean; required: boolean }): DoctorCheck {
  const problem = options.required ? 'fail' : 'warn';
  const what = `${spec.backend} ${spec.model ?? '(no model)'}`;
  if (spec.backend === 'claude-cli') {
    return options.claudeInstalled
      ? { name, status: 'ok', detail: `${what} through the claude command (a Claude subscription; no key)` }
      : {
          name,
          status: problem,
          detail: `${what}: the claude command is not installed`,
          fix: 'install Claude Code (npm install -g @anthropic-ai/claude-code) and log in, or choose another backend',
        };
  }
  let baseURL: string;
  let keyVariable: string | undefined;
  let keyRequired: boolean;
  if (spec.backend === 'anthropic') {
    baseURL = spec.baseURL ?? (env.ANTHROPIC_BASE_URL || DEFAULT_ANTHROPIC_BASE_URL);
    keyVariable = spec.apiKeyEnv ?? 'ANTHROPIC_API_KEY';
    keyRequired = true;
  } else if (isPresetName(spec.backend)) {
    const preset = OPENAI_COMPATIBLE_PRESETS[spec.backend];
    try {
      // The key is checked by its variable below; a stand-in lets the base URL resolve without it.
      baseURL = resolvePreset(spec.backend, { env, apiKey: 'unused', ...(spec.baseURL ? { baseURL: spec.baseURL } : {}) }).baseURL;
    } catch (error) {
      return { name, status: problem, detail: `${what}: ${errorMessage(error)}`, fix: `set baseURL under ${at} in the config file` };
    }
    keyVariable = spec.apiKeyEnv ?? preset.apiKeyEnv;
    // A variable the settings name is expected to be set even where the server needs no key.
    keyRequired = preset.requiresApiKey || spec.apiKeyEnv !== undefined;
  } else {
    return { name, status: 'fail', detail: `${what}: unknown backend`, fix: `correct the backend under ${at}` };
  }
  if (spec.model === undefined) {
    return {
      name,
      status: problem,
      detail: `${spec.backend} at ${baseURL}: no model`,
      fix: `the ${spec.backend} backend has no default model; set model under ${at}`,
    };
  }
  const where = `${what} at ${baseURL}`;
  if (keyVariable === undefined) return { name, status: 'ok', detail: `${where}; no key needed` };
  if ((env[keyVariable] ?? '') !== '') return { name, status: 'ok', detail: `${where}; key ${keyVariable} is set` };
  if (!keyRequired) return { name, status: 'ok', detail: `${where}; no key needed (${keyVariable} is not set)` };
  return {
    name,
    status: problem,
    detail: `${where}; key ${keyVariable} is not set`,
    fix: `export ${keyVariable}=<your key>, or name the variable that holds it with apiKeyEnv under ${at} in the config file`,
  };
}
