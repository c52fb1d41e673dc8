/**
 * Presets for the providers that speak OpenAI's Chat Completions API: where each one lives, which
 * environment variable holds its key, a default model, and the request fields it takes.
 *
 * | preset | base URL | key variable (required?) | default model |
 * |---|---|---|---|
 * | `openai` | `https://api.openai.com/v1` | `OPENAI_API_KEY` (yes) | `gpt-5-mini` |
 * | `openrouter` | `https://openrouter.ai/api/v1` | `OPENROUTER_API_KEY` (yes) | `openai/gpt-5-mini` |
 * | `huggingface` | `https://router.huggingface.co/v1` | `HF_TOKEN` (yes) | `openai/gpt-oss-120b` |
 * | `ollama` | `$OLLAMA_HOST/v1`, default `http://127.0.0.1:11434/v1` | `OLLAMA_API_KEY` (no) | `llama3.2` |
 * | `vllm` | none: pass `baseURL` / `--base-url` | `VLLM_API_KEY` (no) | none: the model the server serves |
 * | `gemini` | `https://generativelanguage.googleapis.com/v1beta/openai/` | `GEMINI_API_KEY` (yes) | `gemini-2.5-flash` |
 * | `azure-openai` | `$AZURE_OPENAI_ENDPOINT/openai` (the SDK's `AzureOpenAI`) | `AZURE_OPENAI_API_KEY` (yes) | the deployment |
 * | `vercel` | `https://ai-gateway.vercel.sh/v1` | `AI_GATEWAY_API_KEY` (yes) | `openai/gpt-5-mini` |
 * | `portkey` | `https://api.portkey.ai/v1` | `PORTKEY_API_KEY` (yes), sent as `x-portkey-api-key` | none: your workspace's routing |
 * | `groq` | `https://api.groq.com/openai/v1` | `GROQ_API_KEY` (yes) | `llama-3.3-70b-versatile` |
 * | `deepseek` | `https://api.deepseek.com/v1` | `DEEPSEEK_API_KEY` (yes) | `deepseek-chat` |
 * | `together` | `https://api.together.xyz/v1` | `TOGETHER_API_KEY` (yes) | `meta-llama/Llama-3.3-70B-Instruct-Turbo` |
 * | `fireworks` | `https://api.fireworks.ai/inference/v1` | `FIREWORKS_API_KEY` (yes) | `accounts/fireworks/models/llama-v3p3-70b-instruct` |
 * | `custom` | none: pass `baseURL` / `--base-url` | none unless `apiKeyEnv` names one (no) | none |
 *
 * More variables: `azure-openai` reads its API version from `AZURE_OPENAI_API_VERSION` or
 * `OPENAI_API_VERSION` (default {@link DEFAULT_AZURE_API_VERSION}); `portkey` reads
 * `PORTKEY_PROVIDER`, `PORTKEY_VIRTUAL_KEY` and `PORTKEY_CONFIG` for its routing headers.
 * `baseURL` always overrides a preset's URL.
 *
 * Usage: where a provider does not take `stream_options` (`groq`, `fireworks`), usage is read
 * from whatever the stream carries (Groq's `x_groq.usage`, Fireworks' final chunk); a stream that
 * carries none reports zero tokens, so costs computed from it are understated.
 */
import { AzureOpenAI } from 'openai';
import OpenAI from 'openai';
import { InvalidOptionError } from '../errors.js';
import type { ModelBackend } from './model-backend.js';
import {
  ChatCompletionsBackend,
  OPENAI_DIALECT,
  apiKeySourceOf,
  dialectOf,
  resilienceOptionsOf,
  resolveApiKey,
  sdkClientOptions,
  type ChatDialect,
  type FetchFunction,
  type GenerationSettings,
} from './openai-compatible-backend.js';
import type { ApiKeySource, BaseUrlSource } from './provider-failures.js';
import { ResilientCaller, type ResilienceOptions, type ResilienceSeams } from './resilience.js';

export interface OpenAICompatiblePreset {
  /** The API's base URL; absent where the caller gives it (`vllm`, `custom`) or it is derived (`ollama`, `azure-openai`). */
  readonly baseURL?: string;
  /** The environment variable holding the key. */
  readonly apiKeyEnv?: string;
  readonly requiresApiKey: boolean;
  /** A model to use when the caller names none; absent where only the caller can know. */
  readonly defaultModel?: string;
  /** The request fields the provider takes. */
  readonly dialect: Readonly<ChatDialect>;
}

/** Chat Completions servers that take the classic `max_tokens` and a top-level `reasoning_effort`. */
const COMPATIBLE: Readonly<ChatDialect> = {
  tokenLimitParameter: 'max_tokens',
  reasoningEffortParameter: 'reasoning_effort',
  streamOptions: true,
  stream: true,
};

/** The API version used for Azure when none is configured: the GA version that streams usage and serves reasoning models. */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

const PRESETS = {
  // Every chat model takes max_completion_tokens; reasoning models reject max_tokens, temperature and
  // (outside reasoning models) reasoning_effort.
  openai: {
    baseURL: 'https://api.openai.com/v1',
    apiKeyEnv: 'OPENAI_API_KEY',
    requiresApiKey: true,
    defaultModel: 'gpt-5-mini',
    dialect: { ...OPENAI_DIALECT, tokenLimitParameter: 'max_completion_tokens' },
  },
  // OpenRouter normalises max_tokens and `reasoning: { effort }` for every upstream and reports `usage.cost`.
  openrouter: {
    baseURL: 'https://openrouter.ai/api/v1',
    apiKeyEnv: 'OPENROUTER_API_KEY',
    requiresApiKey: true,
    defaultModel: 'openai/gpt-5-mini',
    dialect: { ...COMPATIBLE, reasoningEffortParameter: 'reasoning-object', reportsCost: true },
  },
  huggingface: {
    baseURL: 'https://router.huggingface.co/v1',
    apiKeyEnv: 'HF_TOKEN',
    requiresApiKey: true,
    defaultModel: 'openai/gpt-oss-120b',
    dialect: COMPATIBLE,
  },
  ollama: { apiKeyEnv: 'OLLAMA_API_KEY', requiresApiKey: false, defaultModel: 'llama3.2', dialect: COMPATIBLE },
  vllm: { apiKeyEnv: 'VLLM_API_KEY', requiresApiKey: false, dialect: COMPATIBLE },
  gemini: {
    baseURL: 'https://generativelanguage.googleapis.com/v1beta/openai/',
    apiKeyEnv: 'GEMINI_API_KEY',
    requiresApiKey: true,
    defaultModel: 'gemini-2.5-flash',
    dialect: COMPATIBLE,
  },
  // A deployment name need not reveal its model: force tokenLimitParameter for a reasoning model behind an opaque name.
  'azure-openai': { apiKeyEnv: 'AZURE_OPENAI_API_KEY', requiresApiKey: true, dialect: OPENAI_DIALECT },
  vercel: {
    baseURL: 'https://ai-gateway.vercel.sh/v1',
    apiKeyEnv: 'AI_GATEWAY_API_KEY',
    requiresApiKey: true,
    defaultModel: 'openai/gpt-5-mini',
    dialect: { ...COMPATIBLE, reasoningEffortParameter: 'reasoning-object' },
  },
  portkey: { baseURL: 'https://api.portkey.ai/v1', apiKeyEnv: 'PORTKEY_API_KEY', requiresApiKey: true, dialect: OPENAI_DIALECT },
  // Groq answers 400 to fields it does not know, stream_options among them; it reports streamed usage in x_groq.usage.
  groq: {
    baseURL: 'https://api.groq.com/openai/v1',
    apiKeyEnv: 'GROQ_API_KEY',
    requiresApiKey: true,
    defaultModel: 'llama-3.3-70b-versatile',
    dialect: { ...COMPATIBLE, tokenLimitParameter: 'max_completion_tokens', streamOptions: false },
  },
  // DeepSeek has no reasoning-effort setting (deepseek-reasoner always reasons) and reports cache hits as prompt_cache_hit_tokens.
  deepseek: {
    baseURL: 'https://api.deepseek.com/v1',
    apiKeyEnv: 'DEEPSEEK_API_KEY',
    requiresApiKey: true,
    defaultModel: 'deepseek-chat',
    dialect: { ...COMPATIBLE, reasoningEffortParameter: 'unsupported' },
  },
  together: {
    baseURL: 'https://api.together.xyz/v1',
    apiKeyEnv: 'TOGETHER_API_KEY',
    requiresApiKey: true,
    defaultModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    dialect: COMPATIBLE,
  },
  // Fireworks has rejected stream_options ("Extra inputs are not permitted") and sends usage in its last chunk unasked.
  fireworks: {
    baseURL: 'https://api.fireworks.ai/inference/v1',
    apiKeyEnv: 'FIREWORKS_API_KEY',
    requiresApiKey: true,
    defaultModel: 'accounts/fireworks/models/llama-v3p3-70b-instruct',
    dialect: { ...COMPATIBLE, streamOptions: false },
  },
  // Any server: no key variable is read unless named, so no key meant for one provider is sent to another.
  custom: { requiresApiKey: false, dialect: { ...COMPATIBLE, tokenLimitParameter: 'auto' } },
} as const satisfies Record<string, OpenAICompatiblePreset>;

/** The name of an OpenAI-compatible preset; see {@link PRESET_NAMES}. */
export type PresetName = keyof typeof PRESETS;

/** Every preset by name; the table at the top of this module says what each holds. */
export const OPENAI_COMPATIBLE_PRESETS: { readonly [Name in PresetName]: OpenAICompatiblePreset } = PRESETS;

/** The names of the OpenAI-compatible presets {@link createPresetBackend} knows (`openai`, `openrouter`, `azure-openai`…). */
export const PRESET_NAMES = Object.keys(OPENAI_COMPATIBLE_PRESETS) as PresetName[];

export function isPresetName(value: string): value is PresetName {
  return Object.hasOwn(OPENAI_COMPATIBLE_PRESETS, value);
}

/** Options of {@link createPresetBackend}: the preset, and anything of {@link OpenAICompatibleOptions} to override in it. */
export interface PresetBackendOptions extends ResilienceOptions, ResilienceSeams, GenerationSettings, Partial<ChatDialect> {
  /** Used in errors and usage reports; default the preset's name. */
  name?: string;
  /** Overrides the preset's base URL; required for `vllm` and `custom`. */
  baseURL?: string;
  /** The API key; default the variable named by `apiKeyEnv`. */
  apiKey?: string;
  /** The variable holding the key; default the preset's. */
  apiKeyEnv?: string;
  /** Headers sent with every request; they win over the preset's. */
  defaultHeaders?: Record<string, string>;
  /** Where keys, hosts and endpoints are read from; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * The `fetch` the SDK sends requests with; default the global one. A seam for tests (a fetch
   * that fails the way an unknown host does, without any DNS lookup) and for custom transports.
   */
  fetch?: FetchFunction;
  /** `azure-openai` only. */
  azure?: {
    /** e.g. `https://my-resource.openai.azure.com`; default `AZURE_OPENAI_ENDPOINT`. */
    endpoint?: string;
    /** Sends every call to this deployment; default: the request's model names the deployment. */
    deployment?: string;
    /** Default `AZURE_OPENAI_API_VERSION`, `OPENAI_API_VERSION`, then {@link DEFAULT_AZURE_API_VERSION}. */
    apiVersion?: string;
  };
  /** `portkey` only: how Portkey finds the provider (one of them), each defaulting to its `PORTKEY_*` variable. */
  portkey?: {
    /** `x-portkey-provider`, e.g. `openai` or a Model Catalog slug `@openai-prod`; default `PORTKEY_PROVIDER`. */
    provider?: string;
    /** `x-portkey-virtual-key`; default `PORTKEY_VIRTUAL_KEY`. */
    virtualKey?: string;
    /** `x-portkey-config`, a config id or JSON; default `PORTKEY_CONFIG`. */
    config?: string;
    /** The upstream provider's key, sent as `Authorization` when `provider` names a provider, not a catalog slug. */
    providerApiKey?: string;
  };
}

/** A preset with the caller's options applied: everything needed to build the client. */
export interface ResolvedPreset {
  preset: PresetName;
  name: string;
  /** The base URL requests go to (for `azure-openai`, the SDK's `<endpoint>/openai`). */
  baseURL: string;
  /** The variable the key was (or would be) read from. */
  apiKeyEnv: string | undefined;
  /** Undefined when the preset needs none and none was given. */
  apiKey: string | undefined;
  /** Where the key came from (the `apiKey` option, the variable, or nowhere), for the fix an `auth` error names. */
  apiKeySource: ApiKeySource;
  /** Where the base URL came from (an option, a variable, the preset), for the fix an `unreachable` error names. */
  baseUrlSource: BaseUrlSource;
  defaultModel: string | undefined;
  dialect: ChatDialect;
  defaultHeaders: Record<string, string>;
  /** `azure-openai` only. */
  azure?: { apiVersion: string; deployment: string | undefined };
}

/**
 * Applies `options` to a preset: base URL, key, default model, dialect and headers. Reads the
 * environment but opens no connection; the CLI uses it to show and check a configuration.
 *
 * @throws {InvalidOptionError} the key is required and missing: `apiKey: <preset> has no API key; set <VARIABLE>`.
 * @throws {InvalidOptionError} `baseURL` is missing where required (`vllm`, `custom`) or not a URL; Azure has no endpoint.
 */
export function resolvePreset(preset: PresetName, options: PresetBackendOptions = {}): ResolvedPreset {
  const definition = OPENAI_COMPATIBLE_PRESETS[preset];
  if (!definition) throw new InvalidOptionError('preset', `unknown preset ${JSON.stringify(preset)}; one of ${PRESET_NAMES.join(', ')}`);
  const env = options.env ?? process.env;
  const name = options.name ?? preset;
  const apiKeyEnv = options.apiKeyEnv ?? definition.apiKeyEnv;
  const baseURL = checkedURL(options.baseURL ?? defaultBaseURL(preset, definition, options, env), preset);
  const apiKey = resolveApiKey(name, { apiKey: options.apiKey, apiKeyEnv, requiresApiKey: definition.requiresApiKey, env });
  const resolved: ResolvedPreset = {
    preset,
    name,
    baseURL,
    apiKeyEnv,
    apiKey,
    apiKeySource: apiKeySourceOf(options.apiKey, apiKeyEnv, apiKey),
    baseUrlSource: baseUrlSourceOf(preset, definition, options),
    defaultModel: definition.defaultModel ?? (preset === 'azure-openai' ? options.azure?.deployment : undefined),
    dialect: dialectOf(options, definition.dialect),
    defaultHeaders: { ...presetHeaders(preset, apiKey, options, env), ...options.defaultHeaders },
  };
  if (preset === 'azure-openai') {
    resolved.azure = {
      apiVersion: options.azure?.apiVersion ?? env.AZURE_OPENAI_API_VERSION ?? env.OPENAI_API_VERSION ?? DEFAULT_AZURE_API_VERSION,
      deployment: options.azure?.deployment,
    };
  }
  return resolved;
}

/**
 * Creates a backend for one of the {@link OPENAI_COMPATIBLE_PRESETS}, streaming and retrying as
 * `options` say. The key comes from `options.apiKey` or the preset's variable; see the table above.
 *
 * @throws {InvalidOptionError} the key is required and missing: `apiKey: <preset> has no API key; set <VARIABLE>`.
 * @throws {InvalidOptionError} `baseURL` is missing where required or not a URL; Azure has no endpoint.
 * @throws {InvalidOptionError} a resilience option is out of range.
 */
export function createPresetBackend(preset: PresetName, options: PresetBackendOptions = {}): ModelBackend {
  const resolved = resolvePreset(preset, options);
  const resilience = new ResilientCaller(resolved.name, resilienceOptionsOf(options), options.clock, { baseUrl: resolved.baseURL });
  const shared = sdkClientOptions(resilience.options.timeoutMs, resolved.defaultHeaders, options.fetch);
  let client: OpenAI;
  if (resolved.azure) {
    client = new AzureOpenAI({
      ...shared,
      apiKey: resolved.apiKey,
      organization: null,
      project: null,
      apiVersion: resolved.azure.apiVersion,
      // The SDK takes an endpoint or a base URL, never both; the endpoint became `<endpoint>/openai` in resolvePreset.
      baseURL: resolved.baseURL,
      ...(resolved.azure.deployment ? { deployment: resolved.azure.deployment } : {}),
    });
  } else {
    const portkeyUpstreamKey = preset === 'portkey' ? options.portkey?.providerApiKey : undefined;
    client = new OpenAI({
      ...shared,
      // Servers that need no key still get a bearer token: the SDK requires one, and they ignore it.
      apiKey: portkeyUpstreamKey ?? resolved.apiKey ?? 'no-key',
      baseURL: resolved.baseURL,
      // The SDK would read these from process.env and send them to whichever server this is.
      organization: preset === 'openai' ? ((options.env ?? process.env).OPENAI_ORG_ID ?? null) : null,
      project: preset === 'openai' ? ((options.env ?? process.env).OPENAI_PROJECT_ID ?? null) : null,
    });
  }
  return new ChatCompletionsBackend(resolved.name, client, resilience, resolved.dialect, options, {
    apiKeySource: resolved.apiKeySource,
    baseUrlSource: resolved.baseUrlSource,
  });
}

/** Where a preset's base URL comes from: the caller's option, the variable it is derived from, or the preset. */
function baseUrlSourceOf(preset: PresetName, definition: OpenAICompatiblePreset, options: PresetBackendOptions): BaseUrlSource {
  if (options.baseURL !== undefined) return { from: 'option' };
  if (definition.baseURL) return { from: 'default' };
  // Ollama's default (this machine, port 11434) is OLLAMA_HOST's default too.
  if (preset === 'ollama') return { from: 'env', variable: 'OLLAMA_HOST' };
  if (preset === 'azure-openai' && options.azure?.endpoint === undefined) return { from: 'env', variable: 'AZURE_OPENAI_ENDPOINT' };
  return { from: 'option' };
}

function defaultBaseURL(preset: PresetName, definition: OpenAICompatiblePreset, options: PresetBackendOptions, env: NodeJS.ProcessEnv): string {
  if (definition.baseURL) return definition.baseURL;
  switch (preset) {
    case 'ollama':
      return `${ollamaHost(env.OLLAMA_HOST)}/v1`;
    case 'azure-openai': {
      const endpoint = options.azure?.endpoint ?? env.AZURE_OPENAI_ENDPOINT;
      if (!endpoint) {
        throw new InvalidOptionError(
          'azure.endpoint',
          'azure-openai needs the resource endpoint; set AZURE_OPENAI_ENDPOINT (e.g. https://my-resource.openai.azure.com) or pass azure.endpoint',
        );
      }
      return `${endpoint.replace(/\/+$/, '')}/openai`;
    }
    default:
      throw new InvalidOptionError(
        'baseURL',
        `the ${preset} preset needs the server's URL; pass --base-url (CLI) or baseURL (library), e.g. http://127.0.0.1:8000/v1`,
      );
  }
}

/**
 * The Ollama server from `OLLAMA_HOST` as Ollama reads it: `host`, `host:port` or a URL; the port
 * defaults to 11434 without a scheme (80/443 with one); `0.0.0.0`, a listen address, means this machine.
 */
export function ollamaHost(value: string | undefined): string {
  const raw = value?.trim();
  if (!raw) return 'http://127.0.0.1:11434';
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `http://${raw}`);
  } catch (error) {
    throw new InvalidOptionError('OLLAMA_HOST', `${JSON.stringify(raw)} is not a host, host:port or URL`, { cause: error });
  }
  if (!hasScheme && !url.port) url.port = '11434';
  if (url.hostname === '0.0.0.0') url.hostname = '127.0.0.1';
  if (url.hostname === '[::]') url.hostname = '[::1]';
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function checkedURL(value: string, preset: PresetName): string {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported protocol ${url.protocol}`);
  } catch (error) {
    throw new InvalidOptionError('baseURL', `${JSON.stringify(value)} is not an http(s) URL (preset ${preset})`, { cause: error });
  }
  return value;
}

/** Headers a provider expects besides the bearer token. */
function presetHeaders(preset: PresetName, apiKey: string | undefined, options: PresetBackendOptions, env: NodeJS.ProcessEnv): Record<string, string> {
  if (preset !== 'portkey') return {};
  const provider = options.portkey?.provider ?? env.PORTKEY_PROVIDER;
  const virtualKey = options.portkey?.virtualKey ?? env.PORTKEY_VIRTUAL_KEY;
  const config = options.portkey?.config ?? env.PORTKEY_CONFIG;
  if (!apiKey) throw new InvalidOptionError('apiKey', 'portkey has no API key; set PORTKEY_API_KEY');
  return {
    'x-portkey-api-key': apiKey,
    ...(provider ? { 'x-portkey-provider': provider } : {}),
    ...(virtualKey ? { 'x-portkey-virtual-key': virtualKey } : {}),
    ...(config ? { 'x-portkey-config': config } : {}),
  };
}
