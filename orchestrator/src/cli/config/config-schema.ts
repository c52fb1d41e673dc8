/**
 * The settings of a run, as the config file spells them. Flags and environment variables are
 * turned into the same shape, so one schema checks every source and one merge applies precedence.
 * Every object is strict: an unknown key is an error, never silently ignored.
 */
import { z } from 'zod';
import { suggestion } from '../../did-you-mean.js';
import { BACKEND_NAMES } from '../../models/create-backend.js';

// Each check's message states the whole rule, so that a value breaking any part of it learns the range.
const POSITIVE_INTEGER = 'must be a whole number greater than 0';
const NON_NEGATIVE_INTEGER = 'must be a whole number, 0 or more';
const POSITIVE_NUMBER = 'must be a number greater than 0';
const NON_NEGATIVE_NUMBER = 'must be a number, 0 or more';
const positiveInteger = z.number({ error: POSITIVE_INTEGER }).int(POSITIVE_INTEGER).positive(POSITIVE_INTEGER);
const nonNegativeInteger = z.number({ error: NON_NEGATIVE_INTEGER }).int(NON_NEGATIVE_INTEGER).nonnegative(NON_NEGATIVE_INTEGER);
const positiveNumber = z.number({ error: POSITIVE_NUMBER }).positive(POSITIVE_NUMBER);
const nonNegativeNumber = z.number({ error: NON_NEGATIVE_NUMBER }).nonnegative(NON_NEGATIVE_NUMBER);

const backendName = z.string({ error: 'must be a backend name' }).refine((name) => BACKEND_NAMES.includes(name), {
  error: (issue) =>
    `unknown backend ${JSON.stringify(issue.input)}${suggestion(String(issue.input), BACKEND_NAMES)}; valid backends: ${BACKEND_NAMES.join(', ')}`,
});

// The value is never echoed in messages: a user who pasted a key here must not see it printed.
const variableName = z
  .string({ error: 'must be the name of an environment variable' })
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be the NAME of an environment variable (e.g. MY_PROVIDER_KEY), never the key itself');

const url = z
  .string({ error: 'must be a URL' })
  .refine((value) => URL.canParse(value) && /^https?:$/.test(new URL(value).protocol), 'must be an http:// or https:// URL');

/** One model role: which backend, which model, and how to reach it. */
export const RoleConfig = z.strictObject({
  /** `anthropic`, `claude-cli`, or an OpenAI-compatible preset (`openai`, `vllm`, `ollama`…). */
  backend: backendName.optional(),
  model: z.string().min(1, 'must not be empty').optional(),
  /** Overrides the backend's base URL. */
  baseURL: url.optional(),
  /** The NAME of the environment variable holding the key (never the key). */
  apiKeyEnv: variableName.optional(),
  /** Cap on tokens generated per call. */
  maxOutputTokens: positiveInteger.optional(),
  /** The model's context window in tokens, when the built-in table does not know it. */
  contextWindowTokens: positiveInteger.optional(),
  /** Retries of a failed call (429, 5xx, dropped connections). */
  maxRetries: nonNegativeInteger.optional(),
  /** Limit of one attempt of a call, in seconds. */
  requestTimeoutSeconds: positiveNumber.optional(),
  /** Requests in flight at once on this backend. */
  maxConcurrency: positiveInteger.optional(),
});
export type RoleConfig = z.infer<typeof RoleConfig>;

export const LimitsConfig = z.strictObject({
  maxIterations: positiveInteger.optional(),
  maxDepth: nonNegativeInteger.optional(),
  timeoutSeconds: positiveNumber.optional(),
  cellTimeoutSeconds: positiveNumber.optional(),
  maxCostUsd: positiveNumber.optional(),
  maxTokens: positiveInteger.optional(),
  maxConsecutiveFailures: positiveInteger.optional(),
  subcallConcurrency: positiveInteger.optional(),
  /** Sandboxes of the tree alive at once, the root's included (child RLMs beyond it wait, or become plain llm_query calls). */
  maxSandboxes: positiveInteger.optional(),
  /** MiB of prompts one cell may pass to sub-calls (fractions allowed). */
  maxSubcallPromptMbPerCell: positiveNumber.optional(),
  /** MiB of prompts the whole tree's cells may pass to sub-calls (fractions allowed). */
  maxSubcallPromptMbPerRun: positiveNumber.optional(),
});
export type LimitsConfig = z.infer<typeof LimitsConfig>;

export const SandboxConfig = z.strictObject({
  /** Memory of each sandbox container in MiB. */
  memoryMb: positiveNumber.optional(),
  /** CPU cores (fractions allowed). */
  cpus: positiveNumber.optional(),
  /** Processes and threads alive at once. */
  pids: positiveInteger.optional(),
  /** The scratch tmpfs at /tmp in MiB; counts against memoryMb. */
  tmpfsMb: positiveNumber.optional(),
  /** OCI runtime, e.g. `runsc` for gVisor. */
  runtime: z.string().min(1, 'must not be empty').optional(),
  /** An image to run instead of the built-in sandbox image. */
  image: z.string().min(1, 'must not be empty').optional(),
});
export type SandboxConfig = z.infer<typeof SandboxConfig>;

// A missing price says what belongs there rather than "must be a number".
const requiredPrice = z
  .number({ error: (issue) => (issue.input === undefined ? 'is required: USD per million tokens' : 'must be a number (USD per million tokens)') })
  .nonnegative('must be a number, 0 or more (USD per million tokens)');

export const PriceConfig = z.strictObject({
  /** USD per million input tokens. */
  input: requiredPrice,
  /** USD per million output tokens. */
  output: requiredPrice,
  cacheRead: nonNegativeNumber.optional(),
  cacheWrite: nonNegativeNumber.optional(),
});
export type PriceConfig = z.infer<typeof PriceConfig>;

/**
 * A model cells may name (`llm_query(p, { model: 'cheap' })`): a role's keys, each inherited from
 * the root where absent (see `resolveRoles`), and its price.
 */
export const NamedModelConfig = RoleConfig.extend({
  /** The model id's price in USD per million tokens, like an entry of `prices`. */
  price: PriceConfig.optional(),
});
export type NamedModelConfig = z.infer<typeof NamedModelConfig>;

/**
 * The name code uses for a model. Anything a cell can pass as a string, except whitespace and `=`
 * (which `--model-alias NAME=BACKEND:MODEL` splits on), and `__proto__`, which a plain object
 * cannot hold as a key.
 */
export const ModelName = z
  .string()
  .regex(/^[^\s=]+$/, 'a model name must not be empty or hold spaces or "="')
  .refine((name) => name !== '__proto__', 'a model name cannot be "__proto__"');

/** `rlm serve`'s own settings (the `serve:` section); its flags override them. */
export const ServeConfig = z.strictObject({
  host: z.string().min(1, 'must not be empty').optional(),
  port: z.number({ error: 'must be a port number' }).int('must be a whole number').min(0, 'must be 0–65535').max(65535, 'must be 0–65535').optional(),
  /** The embedded database's directory; relative to the config file. */
  dataDir: z.string().min(1, 'must not be empty').optional(),
  maxBodyMb: positiveNumber.optional(),
  graceSeconds: nonNegativeNumber.optional(),
  /** Runs this server runs at once; default the pool's maxSandboxes. */
  maxRunning: positiveInteger.optional(),
  /** The sandbox pool's bound. */
  maxSandboxes: positiveInteger.optional(),
  /** Sandboxes kept warm, per language. */
  warm: z.strictObject({ javascript: nonNegativeInteger.optional(), python: nonNegativeInteger.optional() }).optional(),
  /** Seconds a claimed run's lease lasts without renewal (renewed every third). */
  leaseSeconds: positiveNumber.optional(),
  /** Put runs a crash interrupted back in the queue instead of failing them with `interrupted`. */
  retryInterrupted: z.boolean({ error: 'must be true or false' }).optional(),
  /** Claims of one run before it fails for good (with retryInterrupted). */
  maxAttempts: positiveInteger.optional(),
  /** Days a finished run is kept before the server prunes it (fractions allowed); absent: every run is kept. */
  retainDays: positiveNumber.optional(),
});
export type ServeConfig = z.infer<typeof ServeConfig>;

export const RlmConfig = z.strictObject({
  root: RoleConfig.optional(),
  sub: RoleConfig.optional(),
  language: z.enum(['javascript', 'python'], { error: 'must be javascript or python' }).optional(),
  limits: LimitsConfig.optional(),
  sandbox: SandboxConfig.optional(),
  /** Directory for JSONL trajectories; relative to the config file. */
  logDir: z.string().min(1, 'must not be empty').optional(),
  /** Prices per model id, overriding or extending the built-in table. */
  prices: z.record(z.string(), PriceConfig).optional(),
  /**
   * More models cells may name, by the name they use; a later layer replaces a name whole. An empty
   * entry (`gpt-5-nano:` in YAML) is that model id with the root's backend and settings.
   */
  models: z
    .record(
      ModelName,
      z.preprocess((value) => value ?? {}, NamedModelConfig),
    )
    .optional(),
  /** `rlm serve`'s settings; other commands ignore them. */
  serve: ServeConfig.optional(),
});
export type RlmConfig = z.infer<typeof RlmConfig>;

/**
 * The keys allowed at `path` in {@link RlmConfig} (for "did you mean" hints), or undefined where
 * any key is allowed (a record) or the path leads nowhere.
 */
export function keysAt(path: readonly PropertyKey[]): string[] | undefined {
  let schema: z.ZodType = RlmConfig;
  for (const segment of path) {
    schema = unwrap(schema);
    if (schema instanceof z.ZodObject) {
      const next = (schema.shape as Record<string, z.ZodType>)[String(segment)];
      if (!next) return undefined;
      schema = next;
    } else if (schema instanceof z.ZodRecord) {
      schema = schema.valueType as z.ZodType;
    } else {
      return undefined;
    }
  }
  schema = unwrap(schema);
  return schema instanceof z.ZodObject ? Object.keys(schema.shape as object) : undefined;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (;;) {
    if (current instanceof z.ZodOptional) current = current.unwrap() as z.ZodType;
    // A preprocessed schema (a named model's entry): the keys are those of what it feeds.
    else if (current instanceof z.ZodPipe) current = current.out as z.ZodType;
    else return current;
  }
}
