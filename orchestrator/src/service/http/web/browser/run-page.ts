/**
 * A run's page (`GET /runs/:id`, served as /web/serve-run.js): the run's record and status, its
 * events live while it runs, and — once it has ended — its trajectory drawn by the trajectory
 * viewer's own code: fetched from `/v1/runs/:id/trajectory`, read by the viewer's reader
 * (viewer/trajectory-reader.ts) and drawn by its `renderRun` (viewer/page/browser/run-view.ts).
 * Keys as in `rlm view`: j/k move between turns, e/c expand or collapse them all.
 */
// First: zod must not try `new Function` under the page's CSP (the reader's schemas are built at load).
import './zod-jitless.js';
import { byId, clear, h } from '../../../../viewer/page/browser/dom.js';
import { fmtCost, fmtTime, plural } from '../../../../viewer/page/browser/format.js';
import { handleTurnKey, renderMessage, renderRun } from '../../../../viewer/page/browser/run-view.js';
import { badge, textBlock } from '../../../../viewer/page/browser/widgets.js';
import { readRunText } from '../../../../viewer/trajectory-reader.js';
import { type ApiRun, ApiRun as ApiRunSchema } from '../api-schemas.js';
import { eventSummary, fmtDuration, isActive, runIdFromPath, STATUS_BADGE, statusAfterEvent, toEpochMs } from '../run-display.js';
import { ApiError, apiFetch, apiJson, errorText } from './api-client.js';
import { followRunEvents, type LiveEvent } from './live-events.js';
import { announce } from './page-dom.js';
import { setupTokenGate } from './token-gate.js';

/** Events kept in the live log; older ones are dropped from the page (the stream and the store keep them). */
const MAX_SHOWN_EVENTS = 1000;

const runId = runIdFromPath(location.pathname);

const state = {
  token: null as string | null,
  run: null as ApiRun | null,
  session: new AbortController(),
  events: 0,
  trajectoryShown: false,
};

const gate = setupTokenGate({
  onToken: (token) => {
    state.token = token;
    state.session = new AbortController();
    void start(token, state.session.signal);
  },
  onForget: () => {
    state.session.abort();
    state.token = null;
    state.run = null;
    state.events = 0;
    state.trajectoryShown = false;
    clear(byId('event-log'));
    clear(byId('main'));
  },
});

function failed(error: unknown, what: string): void {
  if (state.session.signal.aborted) return;
  if (error instanceof ApiError && error.status === 401) {
    gate.refuse(`The server refused this token (${error.message}). Paste a valid one: \`rlm serve tokens create --team NAME\` prints one.`);
    return;
  }
  const message = byId('run-message');
  message.textContent = `${what}: ${errorText(error)}`;
  message.className = 'error-text';
}

async function start(token: string, signal: AbortSignal): Promise<void> {
  byId('run-message').textContent = '';
  if (runId === null) {
    byId('run-title').textContent = 'Not a run';
    failed(new Error('this address names no run; runs have addresses like /runs/run_…'), 'Cannot show the run');
    return;
  }
  try {
    await loadRun(token, signal);
  } catch (error) {
    failed(error, `Cannot show run ${runId}`);
    return;
  }
  try {
    const finished = await followRunEvents({ runId, token, signal, onEvent: showEvent });
    if (!finished) return;
    await loadRun(token, signal);
    const status = state.run?.status;
    if (status) announce(`The run ${status}.`);
  } catch (error) {
    failed(error, 'Cannot follow the run’s events');
  }
  await loadTrajectory(token, signal);
}

async function loadRun(token: string, signal: AbortSignal): Promise<void> {
  if (runId === null) return;
  const run = await apiJson(ApiRunSchema, `/v1/runs/${encodeURIComponent(runId)}`, { token, signal }, 'GET /v1/runs/:id');
  if (signal.aborted) return;
  state.run = run;
  renderHeader(run);
}

function renderHeader(run: ApiRun): void {
  document.title = `${run.id} · rlm serve`;
  byId('run-title').textContent = `Run ${run.id}`;
  const status = byId('run-status');
  clear(status);
  status.appendChild(badge(run.status, STATUS_BADGE[run.status]));
  if (run.cancel_requested && isActive(run.status)) status.appendChild(h('span', { class: 'muted small', text: ' cancelling…' }));
  status.dataset.status = run.status;

  const started = toEpochMs(run.started_at);
  const finished = toEpochMs(run.finished_at);
  const facts: Array<[string, string | null | undefined]> = [
    ['model', run.model],
    ['language', run.language],
    ['created', fmtTime(run.created_at)],
    ['started', run.started_at ? fmtTime(run.started_at) : null],
    ['finished', run.finished_at ? fmtTime(run.finished_at) : null],
    ['duration', started !== null && finished !== null ? fmtDuration(finished - started) : null],
    ['turns', run.iterations > 0 ? String(run.iterations) : null],
    ['cost', run.cost_usd !== null ? fmtCost(run.cost_usd) : null],
  ];
  const list = byId('run-facts');
  clear(list);
  for (const [name, value] of facts) if (value) list.appendChild(h('div', null, [h('dt', { text: name }), h('dd', { text: value })]));

  const query = byId('run-query');
  clear(query);
  query.appendChild(textBlock(run.query, 'prose'));

  const outcome = byId('run-outcome');
  clear(outcome);
  if (run.answer !== null)
    outcome.appendChild(
      h('div', { class: 'final-card', id: 'run-answer' }, [h('div', { class: 'section-label', text: 'Answer' }), textBlock(run.answer, 'prose')]),
    );
  if (run.error !== null)
    outcome.appendChild(
      h('div', { class: 'error-card', id: 'run-error' }, [h('div', { class: 'section-label', text: 'Error' }), textBlock(run.error, 'prose')]),
    );

  byId('cancel-run').hidden = !isActive(run.status) || run.cancel_requested === true;
}

function showEvent(event: LiveEvent): void {
  const log = byId('event-log');
  state.events += 1;
  const time = typeof event.data.time === 'number' ? new Date(event.data.time).toLocaleTimeString() : '';
  log.appendChild(
    h('li', { 'data-type': event.type }, [h('span', { class: 'time', text: time }), ' ', h('span', { text: eventSummary(event.type, event.data) })]),
  );
  while (log.childElementCount > MAX_SHOWN_EVENTS) log.firstElementChild?.remove();
  byId('event-count').textContent =
    state.events > MAX_SHOWN_EVENTS ? `${plural(state.events, 'event')}, the last ${MAX_SHOWN_EVENTS} shown` : plural(state.events, 'event');
  const status = statusAfterEvent(event.type, event.data);
  if (status !== null && state.run && status !== state.run.status) {
    state.run = { ...state.run, status, started_at: status === 'running' ? (state.run.started_at ?? new Date().toISOString()) : state.run.started_at };
    renderHeader(state.run);
  }
}

async function loadTrajectory(token: string, signal: AbortSignal): Promise<void> {
  if (runId === null || state.trajectoryShown || signal.aborted) return;
  const run = state.run;
  if (run && isActive(run.status)) return;
  let text: string;
  try {
    const response = await apiFetch(`/v1/runs/${encodeURIComponent(runId)}/trajectory`, {
      token,
      signal,
      accept: 'application/x-ndjson, application/jsonl, text/plain, */*',
    });
    text = await response.text();
  } catch (error) {
    if (signal.aborted) return;
    if (error instanceof ApiError && error.status === 401) {
      failed(error, 'Cannot load the trajectory');
      return;
    }
    renderMessage('No trajectory', error instanceof ApiError && error.status === 404 ? `${error.message}` : `Cannot load the trajectory: ${errorText(error)}`);
    return;
  }
  if (signal.aborted) return;
  state.trajectoryShown = true;
  renderRun(runId, readRunText(text), 'run');
}

async function cancel(): Promise<void> {
  const token = state.token;
  if (!token || runId === null) return;
  const button = byId<HTMLButtonElement>('cancel-run');
  button.disabled = true;
  try {
    await apiFetch(`/v1/runs/${encodeURIComponent(runId)}/cancel`, { token, method: 'POST', signal: state.session.signal });
    await loadRun(token, state.session.signal);
    announce(state.run?.status === 'cancelled' ? 'The run was cancelled.' : 'Cancelling the run.');
  } catch (error) {
    failed(error, 'Cannot cancel the run');
  } finally {
    button.disabled = false;
  }
}

byId('cancel-run').addEventListener('click', () => void cancel());
document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target instanceof HTMLElement ? event.target : null;
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.tagName === 'SELECT')) return;
  handleTurnKey(event.key);
});
