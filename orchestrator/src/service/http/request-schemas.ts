/**
 * The zod schemas of what clients send: bodies, queries and path parameters. Handlers parse with
 * `parseRequest` (http-errors.ts), so a mismatch is a 400 naming the field.
 *
 * Field names: the runs API's top-level fields are as the issue lists them; `limits` keeps the
 * library's option names (`maxIterations`, `timeoutSeconds`…: the same words as `rlm`'s flags and
 * config file). The chat body is OpenAI's, unknown fields ignored (sampling parameters mean nothing
 * to an RLM), plus the extensions `context`, `language` and `limits`.
 */
import { z } from 'zod';
import { RUN_STATUSES } from '../service-types.js';

const positiveInt = z.int().min(1);

/** What a run may ask for; each is capped by the server's ceiling (run-submission.ts). Unknown keys are refused (a typo would otherwise silently ask for nothing). */
export const RunLimitsBody = z.strictObject({
  maxIterations: positiveInt.optional(),
  maxDepth: z.int().min(0).optional(),
  timeoutSeconds: z.number().positive().optional(),
  cellTimeoutSeconds: z.number().positive().optional(),
  maxCostUsd: z.number().positive().optional(),
  maxTokens: positiveInt.optional(),
});
export type RunLimitsBody = z.infer<typeof RunLimitsBody>;

export const Language = z.enum(['javascript', 'python']);

/** `POST /v1/runs`. */
export const SubmitRunBody = z.strictObject({
  query: z.string().min(1),
  context: z.unknown().optional(),
  contexts: z.array(z.unknown()).optional(),
  model: z.string().min(1).max(200).optional(),
  language: Language.optional(),
  limits: RunLimitsBody.optional(),
});
export type SubmitRunBody = z.infer<typeof SubmitRunBody>;

/** `GET /v1/runs?status=&limit=&cursor=`; other parameters (a cache-buster) are ignored. */
export const ListRunsQueryString = z.object({
  status: z.enum(RUN_STATUSES).optional(),
  limit: z.coerce.number().pipe(z.int().min(1).max(100)).optional(),
  cursor: z.string().min(1).max(500).optional(),
});

/** `:id` of the run routes. Anything else than a plausible id is simply not found. */
export const RunIdParams = z.object({ id: z.string().min(1).max(100) });

/** `:model` of `GET /v1/models/:model`. */
export const ModelParams = z.object({ model: z.string().min(1).max(200) });

/** `GET /v1/runs/:id/events?last_event_id=N` (the `Last-Event-ID` header wins). */
export const EventsQueryString = z.object({
  last_event_id: z.coerce.number().pipe(z.int().min(0)).optional(),
});

const ChatMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  /** A string, an array of parts (only `text` ones are accepted: see chat-messages.ts), or null (an assistant's tool call). */
  content: z.unknown().optional(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** `POST /v1/chat/completions`: OpenAI's body (the fields an RLM uses) plus `context`, `language`, `limits`. */
export const ChatCompletionBody = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z.array(ChatMessage).min(1),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  /** Extension: the REPL's `context` (with earlier messages: see chat-messages.ts). */
  context: z.unknown().optional(),
  /** Extension: the REPL's language. */
  language: Language.optional(),
  /** Extension: the run's limits, as in `POST /v1/runs`. */
  limits: RunLimitsBody.optional(),
});
export type ChatCompletionBody = z.infer<typeof ChatCompletionBody>;
