/**
 * How the web page shows a run and its events, as pure functions of the API's data (no DOM): the
 * status a stored event implies, a one-line summary of an event for the live log, a run page's
 * path, the list's query string, durations. Used by the page's script and unit-tested in Node.
 */

export const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** The badge look of each status (the viewer's badge kinds). */
export const STATUS_BADGE: Readonly<Record<RunStatus, 'muted' | 'call' | 'ok' | 'error' | 'warn'>> = {
  queued: 'muted',
  running: 'call',
  succeeded: 'ok',
  failed: 'error',
  cancelled: 'warn',
};

export function isRunStatus(value: unknown): value is RunStatus {
  return typeof value === 'string' && (RUN_STATUSES as readonly string[]).includes(value);
}

/** A run that may still change: it is followed live, and it can be cancelled. */
export function isActive(status: RunStatus): boolean {
  return status === 'queued' || status === 'running';
}

/** The status a stored event of the run says it has from then on; null for events that change none. */
export function statusAfterEvent(type: string, data: Readonly<Record<string, unknown>>): RunStatus | null {
  switch (type) {
    case 'queued':
      return 'queued';
    case 'started':
      return 'running';
    case 'finished':
      return isRunStatus(data.status) ? data.status : null;
    default:
      return null;
  }
}

/** Ids the API hands out are `run_` and base32/hex characters; anything else never becomes a link. */
const RUN_ID = /^[A-Za-z0-9_-]{1,100}$/;

/** The viewer page of a run (`/runs/ID`), or null for an id that is not one. */
export function runPagePath(id: string): string | null {
  return RUN_ID.test(id) ? `/runs/${id}` : null;
}

/** The run id of a run page's path (`/runs/ID`), or null. */
export function runIdFromPath(pathname: string): string | null {
  const match = /^\/runs\/([^/]+)\/?$/.exec(pathname);
  if (!match?.[1]) return null;
  let id: string;
  try {
    id = decodeURIComponent(match[1]);
  } catch {
    return null;
  }
  return RUN_ID.test(id) ? id : null;
}

/** The query string of `GET /v1/runs` (with its `?`, or empty). */
export function listQuery(options: { status?: RunStatus | null; limit?: number; cursor?: string | null }): string {
  const params = new URLSearchParams();
  if (options.status) params.set('status', options.status);
  if (options.limit !== undefined) params.set('limit', String(options.limit));
  if (options.cursor) params.set('cursor', options.cursor);
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** `850 ms`, `4.2 s`, `3m 05s`, `1h 02m`; empty for null or a negative span. */
export function fmtDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(Math.floor(seconds - minutes * 60)).padStart(2, '0')}s`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h ${String(minutes - hours * 60).padStart(2, '0')}m`;
}

/** A time the API gave (ISO 8601 or epoch milliseconds) as epoch milliseconds; null when absent or unreadable. */
export function toEpochMs(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const ms = typeof value === 'number' ? value : Date.parse(value);
  return Number.isFinite(ms) ? ms : null;
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** A text on one line, cut to `max` characters with `…`. */
export function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * One line saying what a stored event is, for the live log: `Turn 2 started`, `Cell 1 of turn 2:
 * ok`, `llm_query to gpt-5-mini: ok (1.2 s)`… The text is plain (the page puts it in a text node);
 * model output is cut short. A child run's events (depth ≥ 1) say so.
 */
export function eventSummary(type: string, data: Readonly<Record<string, unknown>>): string {
  const depth = num(data.depth) ?? 0;
  const prefix = depth > 0 ? `[child, depth ${depth}] ` : '';
  const turn = num(data.turn);
  switch (type) {
    case 'queued':
      return 'Queued';
    case 'started':
      return 'Started';
    case 'finished': {
      const status = str(data.status) ?? 'finished';
      const error = str(data.error);
      return `Finished: ${status}${error ? ` (${oneLine(error, 200)})` : ''}`;
    }
    case 'run_start':
      return `${prefix}Run started${str(data.rootModel) ? ` with ${str(data.rootModel)}` : ''}`;
    case 'turn_start':
      return `${prefix}Turn ${turn ?? '?'} started`;
    case 'model_response': {
      const text = str(data.text);
      const tokens = (num(data.inputTokens) ?? 0) + (num(data.outputTokens) ?? 0);
      return `${prefix}Model answered (turn ${turn ?? '?'}, ${tokens} tokens, ${fmtDuration(num(data.durationMs))})${text ? `: ${oneLine(text, 120)}` : ''}`;
    }
    case 'cell_start':
      return `${prefix}Running code block ${num(data.block) ?? '?'} of turn ${turn ?? '?'}`;
    case 'cell_end': {
      const result = typeof data.result === 'object' && data.result !== null ? (data.result as Record<string, unknown>) : {};
      const status = str(result.status) ?? 'done';
      return `${prefix}Code block ${num(data.block) ?? '?'} of turn ${turn ?? '?'}: ${status}`;
    }
    case 'subcall_start':
      return `${prefix}${str(data.kind) ?? 'sub-call'} to ${str(data.model) ?? '?'}`;
    case 'subcall_end': {
      const ok = data.ok === true;
      const error = str(data.error);
      return `${prefix}${str(data.kind) ?? 'sub-call'} to ${str(data.model) ?? '?'}: ${ok ? 'ok' : `failed${error ? ` (${oneLine(error, 120)})` : ''}`} (${fmtDuration(num(data.durationMs))})`;
    }
    case 'sandbox_acquired':
      return `${prefix}Sandbox ready (${data.warm === true ? 'warm' : 'started'}, ${fmtDuration(num(data.readyMs))})`;
    case 'compaction':
      return `${prefix}Conversation compacted (turn ${turn ?? '?'})`;
    case 'warning':
      return `${prefix}Warning: ${oneLine(str(data.message) ?? str(data.code) ?? '', 200)}`;
    case 'final':
      return `${prefix}Final answer: ${oneLine(str(data.answer) ?? '', 160)}`;
    case 'run_end':
      return `${prefix}Run ended: ${data.success === true ? 'success' : `failed${str(data.error) ? ` (${oneLine(str(data.error) ?? '', 160)})` : ''}`}`;
    default:
      return `${prefix}${type}`;
  }
}
