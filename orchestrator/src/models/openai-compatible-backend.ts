/**
 * A backend for OpenAI's Chat Completions API and the servers that speak it (vLLM, Ollama,
 * OpenRouter, …), through the official `openai` SDK.
 */
import OpenAI from 'openai';
import { z } from 'zod';
import { RlmError } from '../errors.js';
import { ModelCallError, type CompletionRequest, type CompletionResponse, type ModelBackend } from './model-backend.js';

export interface OpenAICompatibleOptions {
  /** Used in errors and usage reports; default `openai`. */
  name?: string;
  /** Default `https://api.openai.com/v1`. */
  baseURL?: string;
  /** The API key; default: the variable named by `apiKeyEnv`. */
  apiKey?: string;
  /** The environment variable holding the key; default `OPENAI_API_KEY`. */
  apiKeyEnv?: string;
  /** Servers that need no key (a local vLLM) pass `false`. Default true. */
  requiresApiKey?: boolean;
  /** Per-request timeout in milliseconds; default 600 000. */
  timeoutMs?: number;
  /** SDK-level retries on 408/409/429/5xx; default 2. */
  maxRetries?: number;
  env?: NodeJS.ProcessEnv;
}

/** The part of a chat completion the engine reads; anything else the server sends is ignored. */
const ChatCompletionBody = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullable().optional() }),
        finish_reason: z.string().nullable().optional(),
      }),
    )
    .min(1, 'the response has no choices'),
  usage: z
    .object({
      prompt_tokens: z.number().int().nonnegative(),
      completion_tokens: z.number().int().nonnegative(),
      prompt_tokens_details: z.object({ cached_tokens: z.number().int().nonnegative().optional() }).nullable().optional(),
      // OpenRouter reports the call's price.
      cost: z.number().nonnegative().optional(),
    })
    .nullable()
    .optional(),
});

/**
 * Creates the backend.
 *
 * @throws {RlmError} no key is given and the key variable is unset (the message names the variable).
 */
export function createOpenAICompatibleBackend(options: OpenAICompatibleOptions = {}): ModelBackend {
  const name = options.name ?? 'openai';
  const env = options.env ?? process.env;
  const keyVariable = options.apiKeyEnv ?? 'OPENAI_API_KEY';
  const apiKey = options.apiKey ?? env[keyVariable];
  if (!apiKey && options.requiresApiKey !== false) {
    throw new RlmError(`${name}: no API key; set ${keyVariable}`);
  }
  const client = new OpenAI({
    apiKey: apiKey ?? 'not-needed',
    ...(options.baseURL ? { baseURL: options.baseURL } : {}),
    timeout: options.timeoutMs ?? 600_000,
    maxRetries: options.maxRetries ?? 2,
  });

  return {
    name,
    async complete(request: CompletionRequest, { signal }: { signal?: AbortSignal }): Promise<CompletionResponse> {
      const messages = [
        ...(request.system ? [{ role: 'system' as const, content: request.system }] : []),
        ...request.messages.map((m) => ({ role: m.role, content: m.content })),
      ];
      let raw: unknown;
      try {
        raw = await client.chat.completions.create(
          {
            model: request.model,
            messages,
            ...(request.maxOutputTokens === undefined ? {} : { max_completion_tokens: request.maxOutputTokens }),
          },
          signal ? { signal } : {},
        );
      } catch (error) {
        throw toModelCallError(error, name, request.model);
      }
      const body = ChatCompletionBody.safeParse(raw);
      if (!body.success) {
        throw new ModelCallError(
          `${name} returned a malformed chat completion for ${request.model}: ${body.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
          name,
          request.model,
          { responseBody: JSON.stringify(raw).slice(0, 2_000) },
          { cause: body.error },
        );
      }
      const choice = body.data.choices[0];
      const usage = body.data.usage;
      const cached = usage?.prompt_tokens_details?.cached_tokens;
      return {
        text: choice?.message.content ?? '',
        model: body.data.model ?? request.model,
        usage: {
          inputTokens: usage?.prompt_tokens ?? 0,
          outputTokens: usage?.completion_tokens ?? 0,
          ...(cached ? { cacheReadTokens: cached } : {}),
          ...(usage?.cost === undefined ? {} : { reportedCostUsd: usage.cost }),
        },
        ...(choice?.finish_reason ? { stopReason: choice.finish_reason } : {}),
      };
    },
  };
}

function toModelCallError(error: unknown, backend: string, model: string): ModelCallError {
  if (error instanceof OpenAI.APIError) {
    const status = error.status;
    const retryable = status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
    return new ModelCallError(`${backend} ${model}: ${status ? `HTTP ${status}: ` : ''}${error.message}`, backend, model, {
      ...(status === undefined ? {} : { statusCode: status }),
      isRetryable: retryable,
    }, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ModelCallError(`${backend} ${model}: ${message}`, backend, model, { isRetryable: false }, { cause: error });
}
