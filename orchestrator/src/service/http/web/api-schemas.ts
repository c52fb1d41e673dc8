/**
 * The JSON the web page reads from the service's API, parsed with zod's tree-shakable `zod/mini`
 * (the page's script stays small): a run (`GET /v1/runs/:id`, http/run-view.ts's `PublicRun`), a
 * page of runs, the models (`GET /v1/models`), an error body, a stored event's SSE data. Only the
 * fields the page uses are required; the rest pass through, so the API can grow without breaking
 * the page. Pure: used by the browser bundle and unit-tested in Node against the server's own
 * serializers.
 */
import * as z from 'zod/mini';
import { RUN_STATUSES } from './run-display.js';

const time = z.nullable(z.string());

export const ApiModelUsage = z.looseObject({
  calls: z.number(),
  input_tokens: z.number(),
  output_tokens: z.number(),
  cost_usd: z.nullable(z.number()),
});

export const ApiRun = z.looseObject({
  id: z.string(),
  status: z.enum(RUN_STATUSES),
  query: z.string(),
  model: z.optional(z.string()),
  language: z.optional(z.string()),
  answer: z.nullable(z.string()),
  error: z.nullable(z.string()),
  usage: z.record(z.string(), ApiModelUsage),
  cost_usd: z.nullable(z.number()),
  iterations: z.number(),
  cancel_requested: z.optional(z.boolean()),
  created_at: z.string(),
  started_at: time,
  finished_at: time,
});
export type ApiRun = z.infer<typeof ApiRun>;

export const ApiRunPage = z.looseObject({
  data: z.array(ApiRun),
  next_cursor: z.nullable(z.string()),
});
export type ApiRunPage = z.infer<typeof ApiRunPage>;

/** `POST /v1/runs`'s answer. */
export const ApiSubmitted = z.looseObject({ id: z.string(), status: z.enum(RUN_STATUSES) });

/** `GET /v1/models` (OpenAI's list shape). */
export const ApiModelList = z.looseObject({
  data: z.array(z.looseObject({ id: z.string() })),
});

export const ApiErrorBody = z.object({
  error: z.looseObject({ code: z.string(), message: z.string() }),
});

/** The data of an SSE event: the stored event's fields (an engine event's, or the service's `queued`/`started`/`finished`). */
export const ApiEventData = z.record(z.string(), z.unknown());

/** A value parsed by `schema`, or an Error saying which field of what did not match. */
export function parseApi<Schema extends z.ZodMiniType>(schema: Schema, value: unknown, what: string): z.infer<Schema> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new Error(`the server's answer to ${what} is not what this page expects: ${z.prettifyError(result.error)}`);
}
