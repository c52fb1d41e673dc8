/**
 * What `rlm doctor` says about each configured model — the root, the sub model and every named
 * one: its backend, model id, base URL, whether its key's variable is set, and what the model table
 * knows of it (context window, output limit, price). Reads the environment, opens no connection,
 * and never prints a key: variables are named, never shown.
 */
import { DEFAULT_ANTHROPIC_BASE_URL, DEFAULT_ANTHROPIC_MAX_TOKENS } from '../../models/anthropic-backend.js';
import { errorMessage } from '../../errors.js';
import { MODEL_TABLE_AS_OF, lookupModel, type ModelFactSource, type ModelPrice } from '../../models/model-table.js';
import { OPENAI_COMPATIBLE_PRESETS, isPresetName, resolvePreset } from '../../models/openai-presets.js';
import { resolvePrice, type PriceSource } from '../../usage/pricing.js';
import type { DoctorCheck } from '../commands/doctor-command.js';
import type { ResolvedSettings, RoleSpec } from './settings.js';

/** What the model table and the settings say of one configured model (`model` of its doctor check, in `--json`). */
export interface ModelReport {
  /** The model id as configured. */
  id: string;
  /** The window the context guard uses, in tokens. */
  contextWindowTokens: number;
  /** `settings`: the role's contextWindowTokens; else where the model table found it. */
  contextWindowFrom: 'settings' | ModelFactSource;
  /** The most output tokens one call may ask for; absent when unknown. */
  outputLimitTokens?: number;
  /** The cap each call asks for: the role's maxOutputTokens, else the backend's default where it has one. */
  maxOutputTokens?: number;
  /** The price per million tokens costs are computed with; absent when unknown. */
  price?: ModelPrice;
  /** `override`: the settings' `prices:` or the named model's `price`. */
  priceFrom?: PriceSource;
  /** The provider reports each call's cost (OpenRouter, the Claude CLI): a budget needs no price. */
  reportsCost: boolean;
}

/**
 * One check per model: `root model`, `sub model`, then `model NAME` for each named model. A missing
 * key or base URL fails a model the settings name; for the built-in default (no backend or model
 * set anywhere) it is a warning, since each run may still choose with flags. Each check with a
 * model id carries its {@link ModelReport}; a model without a known price fails when the settings
 * set a budget in dollars (the run would refuse to start), and a per-call cap above the model's
 * output limit is a warning.
 */
export function checkModels(
  settings: Pick<ResolvedSettings, 'root' | 'sub' | 'models' | 'config' | 'prices'>,
  env: NodeJS.ProcessEnv,
  options: { claudeInstalled: boolean },
): DoctorCheck[] {
  const { config } = settings;
  const rootChosen = config.root?.backend !== undefined || config.root?.model !== undefined;
  const subChosen = rootChosen || config.sub?.backend !== undefined || config.sub?.model !== undefined;
  const withFacts = (check: DoctorCheck, at: string, spec: RoleSpec): DoctorCheck =>
    spec.model === undefined ? check : withModelReport(check, at, spec, settings.prices, config.limits?.maxCostUsd);
  return [
    withFacts(checkModel('root model', 'root', settings.root, env, { ...options, required: rootChosen }), 'root', settings.root),
    withFacts(checkModel('sub model', 'sub', settings.sub, env, { ...options, required: subChosen }), 'sub', settings.sub),
    ...Object.entries(settings.models).map(([name, spec]) =>
      withFacts(checkModel(`model ${name}`, `models.${name}`, spec, env, { ...options, required: true }), `models.${name}`, spec),
    ),
  ];
}

/** The facts of `spec`'s model for its check, and what they make of the check's status. */
function withModelReport(check: DoctorCheck, at: string, spec: RoleSpec, prices: ResolvedSettings['prices'], budgetUsd: number | undefined): DoctorCheck {
  const report = modelReport(spec, prices);
  const problems: { status: 'warn' | 'fail'; fix: string }[] = [];
  if (!report.price && !report.reportsCost && budgetUsd !== undefined) {
    const where = at.startsWith('models.')
      ? `${at}.price in the config file (e.g. price: { input: 1, output: 4 })`
      : `prices: in the config file (e.g. prices: { ${JSON.stringify(report.id)}: { input: 1, output: 4 } })`;
    problems.push({
      status: 'fail',
      fix: `a run with a budget in dollars (limits.maxCostUsd: ${budgetUsd}) refuses to start without a price for ${report.id}: give it, in USD per million tokens, under ${where}`,
    });
  }
  if (report.outputLimitTokens !== undefined && report.maxOutputTokens !== undefined && report.maxOutputTokens > report.outputLimitTokens) {
    problems.push({
      status: 'warn',
      fix: `each call asks for ${formatTokens(report.maxOutputTokens)} output tokens, more than ${report.id} gives (${formatTokens(report.outputLimitTokens)}): set maxOutputTokens under ${at} to at most ${report.outputLimitTokens}`,
    });
  }
  const rank = { ok: 0, warn: 1, fail: 2 } as const;
  let status = check.status;
  for (const problem of problems) if (rank[problem.status] > rank[status]) status = problem.status;
  const fixes = [...(check.fix ? [check.fix] : []), ...problems.map((problem) => problem.fix)];
  return { ...check, status, ...(fixes.length > 0 ? { fix: fixes.join('; and ') } : {}), model: report };
}

/** What the settings and the model table say of `spec`'s model. */
export function modelReport(spec: RoleSpec, prices: ResolvedSettings['prices']): ModelReport {
  const id = spec.model ?? '';
  const facts = lookupModel(id);
  const priced = resolvePrice(id, prices);
  const cap = spec.maxOutputTokens ?? (spec.backend === 'anthropic' ? DEFAULT_ANTHROPIC_MAX_TOKENS : undefined);
  return {
    id,
    contextWindowTokens: spec.contextWindowTokens ?? facts.contextWindowTokens,
    contextWindowFrom: spec.contextWindowTokens === undefined ? facts.contextWindowFrom : 'settings',
    ...(facts.outputLimitTokens === undefined ? {} : { outputLimitTokens: facts.outputLimitTokens }),
    ...(cap === undefined ? {} : { maxOutputTokens: cap }),
    ...(priced ? { price: priced.price, priceFrom: priced.from } : {}),
    reportsCost: reportsCost(spec.backend),
  };
}

function reportsCost(backend: string): boolean {
  if (backend === 'claude-cli') return true;
  return isPresetName(backend) && OPENAI_COMPATIBLE_PRESETS[backend].dialect.reportsCost === true;
}

/**
 * One line of a {@link ModelReport}: `context 200,000 tokens; output ≤ 64,000 tokens (16,384 asked per
 * call); $3 in, $15 out, cache $0.3 read, $3.75 write per million tokens (rlm's table, 2026-11-21)`.
 */
export function describeModelReport(report: ModelReport): string {
  const windowFrom = {
    settings: ' (contextWindowTokens in the settings)',
    table: '',
    'genai-prices': ' (from @pydantic/genai-prices)',
    family: ' (as for its family)',
    default: ' (assumed: not a known model; set contextWindowTokens if it differs)',
  }[report.contextWindowFrom];
  const perCall = report.maxOutputTokens === undefined ? '' : ` (${formatTokens(report.maxOutputTokens)} asked per call)`;
  const output =
    report.outputLimitTokens === undefined ? `output limit unknown${perCall}` : `output ≤ ${formatTokens(report.outputLimitTokens)} tokens${perCall}`;
  let cost: string;
  if (report.reportsCost) {
    cost = 'cost reported by the provider for each call';
  } else if (report.price) {
    const { input, output: out, cacheRead, cacheWrite } = report.price;
    const cache = [cacheRead === undefined ? '' : `$${cacheRead} read`, cacheWrite === undefined ? '' : `$${cacheWrite} write`].filter(Boolean).join(', ');
    const from = { override: 'your prices', table: `rlm's table, ${MODEL_TABLE_AS_OF}`, 'genai-prices': '@pydantic/genai-prices' }[report.priceFrom ?? 'table'];
    cost = `$${input} in, $${out} out${cache ? `, cache ${cache}` : ''} per million tokens (${from})`;
  } else {
    cost = 'no known price: its costs are unknown and a budget in dollars (--budget) cannot be enforced';
  }
  return `context ${formatTokens(report.contextWindowTokens)} tokens${windowFrom}; ${output}; ${cost}`;
}

const formatTokens = (tokens: number) => tokens.toLocaleString('en-US');

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
