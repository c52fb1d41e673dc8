/**
 * Follows a run's events live: `GET /v1/runs/:id/events` read with `fetch` and the SSE parser
 * (EventSource cannot send the Authorization header, and the token never goes in a URL). The
 * stream replays the stored events, then follows them, and ends after the `finished` one. A
 * connection that drops before it (the server restarted, a proxy timed out) is opened again with
 * `Last-Event-ID`, after the delay the server asked for (`retry`) or a growing one.
 */
import { ApiEventData } from '../api-schemas.js';
import { readSseStream, SseParser } from '../sse-parser.js';
import { ApiError, apiFetch } from './api-client.js';

export interface LiveEvent {
  seq: number;
  type: string;
  data: Record<string, unknown>;
}

export interface FollowOptions {
  runId: string;
  token: string;
  /** Resume after this seq (0 or absent: from the start). */
  afterSeq?: number;
  signal: AbortSignal;
  onEvent: (event: LiveEvent) => void;
  /** Told when the connection dropped and is retried. */
  onReconnect?: (error: unknown) => void;
}

/** Longest wait between reconnections, ms. */
const MAX_RETRY_MS = 15_000;

/**
 * Resolves when the `finished` event arrived (true) or `signal` aborted (false).
 * @throws {ApiError} when the server refuses the stream (401 a bad token, 404 an unknown run…); a
 *   503 (the server draining) and dropped connections are retried instead.
 */
export async function followRunEvents(options: FollowOptions): Promise<boolean> {
  const { runId, token, signal, onEvent } = options;
  let lastSeq = options.afterSeq ?? 0;
  const retryMs = 1000;
  let serverRetryMs: number | null = null;
  let failures = 0;
  while (!signal.aborted) {
    let finished = false;
    const parser = new SseParser({
      onEvent: (message) => {
        const event = toLiveEvent(message.event, message.data, message.id);
        if (event === null) return;
        if (event.seq > 0) lastSeq = event.seq;
        failures = 0;
        if (event.type === 'finished') finished = true;
        onEvent(event);
      },
      onRetry: (ms) => {
        serverRetryMs = ms;
      },
    });
    try {
      const response = await apiFetch(`/v1/runs/${encodeURIComponent(runId)}/events`, {
        token,
        signal,
        accept: 'text/event-stream',
        ...(lastSeq > 0 ? { headers: { 'last-event-id': String(lastSeq) } } : {}),
      });
      if (!response.body) throw new ApiError(response.status, 'no_body', 'the event stream has no body');
      await readSseStream(response.body, parser, signal);
      if (finished) return true;
      // Ended without `finished`: the server went away mid-stream; resume.
    } catch (error) {
      if (signal.aborted) return false;
      if (finished) return true;
      if (error instanceof ApiError && error.status !== 0 && error.status !== 503 && error.status !== 502 && error.status !== 504) throw error;
      options.onReconnect?.(error);
    }
    failures += 1;
    const delay = serverRetryMs ?? Math.min(MAX_RETRY_MS, retryMs * 2 ** Math.min(failures - 1, 4));
    await sleep(delay, signal);
  }
  return false;
}

/** An SSE message as a stored event: its data is the event's JSON, its id the seq, its name the type. */
function toLiveEvent(name: string, text: string, id: string): LiveEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  const data = ApiEventData.safeParse(value);
  if (!data.success) return null;
  const seq = Number(id);
  return { seq: Number.isSafeInteger(seq) ? seq : 0, type: name, data: data.data };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
