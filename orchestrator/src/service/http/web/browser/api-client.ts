/**
 * Calls to the service's `/v1` API with the pasted token. A refusal (`{ error: { code, message } }`)
 * becomes an {@link ApiError} carrying the HTTP status, the code and the server's message; a failed
 * connection one with status 0.
 */
import type * as z from 'zod/mini';
import { ApiErrorBody, parseApi } from '../api-schemas.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    /** The HTTP status; 0 when the server could not be reached. */
    readonly status: number,
    /** The API's `error.code` (`unauthorized`, `not_found`…), `network`, or `http_<status>`. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiRequest {
  token: string;
  method?: 'GET' | 'POST';
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
  accept?: string;
}

/** The response of a successful call (2xx). @throws {ApiError} for any other answer, or none. */
export async function apiFetch(path: string, request: ApiRequest): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${request.token}`, accept: request.accept ?? 'application/json', ...request.headers };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method: request.method ?? 'GET',
      headers,
      ...(request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      // The token goes in the header only; no cookie is ever needed.
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (error) {
    if (request.signal?.aborted) throw error;
    throw new ApiError(0, 'network', `cannot reach the server (${error instanceof Error ? error.message : String(error)})`);
  }
  if (response.ok) return response;
  throw await errorOf(response);
}

/** A call whose answer is JSON parsed by `schema`; `what` names it in a mismatch's message. */
export async function apiJson<Schema extends z.ZodMiniType>(schema: Schema, path: string, request: ApiRequest, what: string): Promise<z.infer<Schema>> {
  const response = await apiFetch(path, request);
  return parseApi(schema, await response.json(), what);
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's page, say.
  }
  const parsed = ApiErrorBody.safeParse(body);
  if (parsed.success) return new ApiError(response.status, parsed.data.error.code, parsed.data.error.message);
  return new ApiError(
    response.status,
    `http_${response.status}`,
    `the server answered HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`,
  );
}

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
