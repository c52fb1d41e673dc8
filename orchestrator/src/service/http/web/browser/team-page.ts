/**
 * The team page's script (`GET /`, served as /web/serve-team.js): the team's runs with their status
 * kept live, a status filter, a form to submit a run (its context read from a file in the browser),
 * and cancelling a waiting or running run.
 *
 * Live status: each visible run still queued or running is followed through its event stream
 * (live-events.ts), at most {@link MAX_STREAMS} at once — a browser opens six connections per
 * server, and the page's own calls need some — the others as streams free up; the list itself is
 * read again every {@link REFRESH_MS} while the tab is visible, so runs a teammate submits appear.
 *
 * Security: runs hold what any teammate (or a model) wrote; it reaches the page as text only
 * (the viewer's dom.ts), links are built from checked run ids (page-dom.ts), and the server's
 * Content-Security-Policy allows this script and nothing inline.
 */
import { byId, clear, h } from '../../../../viewer/page/browser/dom.js';
import { fmtCost, fmtTime } from '../../../../viewer/page/browser/format.js';
import { badge } from '../../../../viewer/page/browser/widgets.js';
import { type ApiRun, ApiModelList, ApiRun as ApiRunSchema, ApiRunPage, ApiSubmitted } from '../api-schemas.js';
import { fmtDuration, isActive, isRunStatus, listQuery, oneLine, type RunStatus, STATUS_BADGE, statusAfterEvent, toEpochMs } from '../run-display.js';
import { ApiError, apiFetch, apiJson, errorText } from './api-client.js';
import { followRunEvents } from './live-events.js';
import { announce, option, runLink } from './page-dom.js';
import { setupTokenGate } from './token-gate.js';

/** Event streams open at once. */
const MAX_STREAMS = 4;
/** Runs per page of the list. */
const PAGE_SIZE = 25;
/** How often the list is read again while the tab is visible, ms. */
const REFRESH_MS = 20_000;

const state = {
  token: null as string | null,
  filter: null as RunStatus | null,
  runs: new Map<string, ApiRun>(),
  /** Ids in the list's order (newest first). */
  order: [] as string[],
  nextCursor: null as string | null,
  /** Pages loaded with "Load more" beyond the first: the periodic refresh leaves such a list alone. */
  morePages: 0,
  /** Runs followed live, by id. */
  streams: new Map<string, AbortController>(),
  /** Aborts everything of the current token (its list reads, its streams). */
  session: new AbortController(),
  /** Bumped by each list load, so a slow answer to an older one is dropped. */
  listVersion: 0,
  modelsLoaded: false,
};

const gate = setupTokenGate({
  onToken: (token) => {
    state.token = token;
    state.session = new AbortController();
    void loadModels();
    void loadList();
  },
  onForget: () => {
    state.session.abort();
    state.token = null;
    state.streams.clear();
    state.runs.clear();
    state.order = [];
    state.modelsLoaded = false;
    clear(byId('runs-body'));
  },
});

/** Handles a failed call: a refused token brings the token form back; anything else is shown in `where`. */
function failed(error: unknown, where: HTMLElement, what: string): void {
  if (state.session.signal.aborted) return;
  if (error instanceof ApiError && error.status === 401) {
    gate.refuse(`The server refused this token (${error.message}). Paste a valid one: \`rlm serve tokens create --team NAME\` prints one.`);
    return;
  }
  where.textContent = `${what}: ${errorText(error)}`;
  where.className = 'error-text';
}

// ------------------------------------------------------------------ the list

async function loadList(options: { more?: boolean } = {}): Promise<void> {
  const token = state.token;
  if (!token) return;
  const version = ++state.listVersion;
  const message = byId('runs-message');
  const cursor = options.more ? state.nextCursor : null;
  let page: ApiRunPage;
  try {
    page = await apiJson(
      ApiRunPage,
      `/v1/runs${listQuery({ status: state.filter, limit: PAGE_SIZE, cursor })}`,
      { token, signal: state.session.signal },
      'GET /v1/runs',
    );
  } catch (error) {
    failed(error, message, 'Cannot list the runs');
    return;
  }
  if (version !== state.listVersion || token !== state.token) return;
  if (!options.more) {
    // A refresh: the first page replaces the list; runs no longer in it stop being followed.
    const kept = new Set(page.data.map((run) => run.id));
    for (const [id, controller] of state.streams) {
      if (!kept.has(id)) {
        controller.abort();
        state.streams.delete(id);
      }
    }
    state.runs.clear();
    state.order = [];
    state.morePages = 0;
  } else state.morePages += 1;
  for (const run of page.data) {
    if (!state.runs.has(run.id)) state.order.push(run.id);
    state.runs.set(run.id, run);
  }
  state.nextCursor = page.next_cursor;
  renderList();
  followActive();
}

function renderList(): void {
  const body = byId('runs-body');
  const focused = focusedControl();
  const rows = state.order.map((id) => {
    const run = state.runs.get(id);
    return run ? runRow(run) : null;
  });
  clear(body);
  for (const row of rows) if (row) body.appendChild(row);
  restoreFocus(focused);
  const message = byId('runs-message');
  message.className = 'muted';
  const filter = state.filter ? ` ${state.filter}` : '';
  const text =
    state.order.length === 0
      ? `No${filter} runs yet.`
      : `${state.order.length}${filter} run${state.order.length === 1 ? '' : 's'}${state.nextCursor ? ' shown' : ''}.`;
  // A live region: rewritten only when it changes, so a periodic refresh says nothing new.
  if (message.textContent !== text) message.textContent = text;
  byId('more').hidden = state.nextCursor === null;
}

/** Redraws one run's row in place (a status change), keeping the keyboard focus where it was. */
function renderRun(run: ApiRun): void {
  state.runs.set(run.id, run);
  const old = document.querySelector(`#runs-body tr[data-run-id="${CSS.escape(run.id)}"]`);
  if (!old) return;
  const focused = focusedControl();
  old.replaceWith(runRow(run));
  restoreFocus(focused);
}

function runRow(run: ApiRun): HTMLTableRowElement {
  const created = toEpochMs(run.created_at);
  const started = toEpochMs(run.started_at);
  const finished = toEpochMs(run.finished_at);
  const duration = started === null ? null : (finished ?? Date.now()) - started;
  const cancelling = run.cancel_requested === true && isActive(run.status);
  const row = h('tr', { 'data-run-id': run.id, 'data-status': run.status }, [
    h('td', null, runLink(run.id, run.id, 'mono run-id')),
    h('td', { class: 'status-cell' }, [
      badge(run.status, STATUS_BADGE[run.status]),
      cancelling ? h('span', { class: 'muted small', text: ' cancelling…' }) : null,
    ]),
    h('td', { class: 'query-cell', title: run.query.length > 120 ? run.query : null }, [
      h('span', { text: oneLine(run.query, 120) }),
      run.status === 'failed' && run.error ? h('div', { class: 'error-text small', text: oneLine(run.error, 160) }) : null,
    ]),
    h('td', { class: 'model', text: run.model ?? '' }),
    h('td', { class: 'nowrap', text: created === null ? '' : fmtTime(new Date(created).toISOString()) }),
    h('td', { class: 'num', text: fmtDuration(duration) }),
    h('td', { class: 'num', text: run.cost_usd === null ? '' : fmtCost(run.cost_usd) }),
    h('td', null, isActive(run.status) && !cancelling ? cancelButton(run) : null),
  ]);
  return row;
}

function cancelButton(run: ApiRun): HTMLButtonElement {
  return h('button', {
    type: 'button',
    class: 'cancel',
    'data-action': 'cancel',
    'aria-label': `Cancel run ${run.id}`,
    text: 'Cancel',
    onclick: () => void cancelRun(run.id),
  });
}

/** The control inside the list that has the focus: its row and action, to focus its successor after a redraw. */
function focusedControl(): { id: string; action: string | null } | null {
  const active = document.activeElement;
  if (!(active instanceof HTMLElement)) return null;
  const row = active.closest<HTMLElement>('#runs-body tr[data-run-id]');
  if (!row?.dataset.runId) return null;
  return { id: row.dataset.runId, action: active.dataset.action ?? (active.tagName === 'A' ? 'link' : null) };
}

function restoreFocus(focused: { id: string; action: string | null } | null): void {
  if (!focused) return;
  const row = document.querySelector<HTMLElement>(`#runs-body tr[data-run-id="${CSS.escape(focused.id)}"]`);
  if (!row) return;
  const target = (focused.action === 'cancel' ? row.querySelector<HTMLElement>('[data-action="cancel"]') : null) ?? row.querySelector<HTMLElement>('a') ?? null;
  target?.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ live status

/** Starts following the active runs of the list, newest first, up to {@link MAX_STREAMS}. */
function followActive(): void {
  for (const id of state.order) {
    if (state.streams.size >= MAX_STREAMS) return;
    const run = state.runs.get(id);
    if (run && isActive(run.status) && !state.streams.has(id)) follow(id);
  }
}

function follow(id: string): void {
  const token = state.token;
  if (!token) return;
  const controller = new AbortController();
  state.streams.set(id, controller);
  const signal = AbortSignal.any([controller.signal, state.session.signal]);
  followRunEvents({
    runId: id,
    token,
    signal,
    onEvent: (event) => {
      const status = statusAfterEvent(event.type, event.data);
      const run = state.runs.get(id);
      if (!run || status === null || status === run.status) return;
      const now = new Date().toISOString();
      renderRun({ ...run, status, started_at: status === 'running' ? (run.started_at ?? now) : run.started_at });
    },
  })
    .then(async (finished) => {
      if (!finished) return;
      // The final record: answer, error, cost and times as stored.
      const run = await apiJson(ApiRunSchema, `/v1/runs/${encodeURIComponent(id)}`, { token, signal }, 'GET /v1/runs/:id');
      renderRun(run);
      announce(`Run ${id} ${run.status}.`);
    })
    .catch((error: unknown) => {
      if (!signal.aborted) failed(error, byId('runs-message'), `Cannot follow run ${id}`);
    })
    .finally(() => {
      if (state.streams.get(id) === controller) state.streams.delete(id);
      if (!state.session.signal.aborted) followActive();
    });
}

async function cancelRun(id: string): Promise<void> {
  const token = state.token;
  if (!token) return;
  const message = byId('runs-message');
  try {
    await apiFetch(`/v1/runs/${encodeURIComponent(id)}/cancel`, { token, method: 'POST', signal: state.session.signal });
    const run = await apiJson(ApiRunSchema, `/v1/runs/${encodeURIComponent(id)}`, { token, signal: state.session.signal }, 'GET /v1/runs/:id');
    renderRun(run);
    announce(run.status === 'cancelled' ? `Run ${id} cancelled.` : `Cancelling run ${id}.`);
  } catch (error) {
    failed(error, message, `Cannot cancel run ${id}`);
  }
}

// ------------------------------------------------------------------ submitting

async function loadModels(): Promise<void> {
  const token = state.token;
  if (!token || state.modelsLoaded) return;
  const select = byId<HTMLSelectElement>('model');
  try {
    const models = await apiJson(ApiModelList, '/v1/models', { token, signal: state.session.signal }, 'GET /v1/models');
    clear(select);
    for (const model of models.data) select.appendChild(option(model.id, model.id === 'rlm' ? 'rlm (the server’s default)' : model.id));
    state.modelsLoaded = true;
  } catch (error) {
    // The default model still works: the select keeps its `rlm` option.
    failed(error, byId('submit-status'), 'Cannot list the models');
  }
}

async function submitRun(event: SubmitEvent): Promise<void> {
  event.preventDefault();
  const token = state.token;
  if (!token) return;
  const form = byId<HTMLFormElement>('submit-form');
  const status = byId('submit-status');
  const button = byId<HTMLButtonElement>('submit-button');
  const query = byId<HTMLTextAreaElement>('query').value;
  if (query.trim() === '') {
    status.textContent = 'Write a query first.';
    status.className = 'error-text';
    byId('query').focus();
    return;
  }
  const file = byId<HTMLInputElement>('context-file').files?.[0];
  const language = byId<HTMLSelectElement>('language').value;
  const model = byId<HTMLSelectElement>('model').value;
  button.disabled = true;
  status.className = 'muted';
  status.textContent = file ? `Reading ${file.name}…` : 'Submitting…';
  try {
    const body: Record<string, unknown> = { query };
    // The file is read here, in the browser, and sent as the run's `context` (text).
    if (file) body.context = await file.text();
    if (language) body.language = language;
    if (model) body.model = model;
    status.textContent = 'Submitting…';
    const submitted = await apiJson(ApiSubmitted, '/v1/runs', { token, method: 'POST', body, signal: state.session.signal }, 'POST /v1/runs');
    form.reset();
    clear(status);
    status.className = 'ok-text';
    status.append('Submitted ', runLink(submitted.id, submitted.id, 'mono'), ` (${submitted.status}).`);
    await addRun(submitted.id);
  } catch (error) {
    failed(error, status, 'Not submitted');
  } finally {
    button.disabled = false;
  }
}

/** Puts a run just submitted at the top of the list (when the filter shows it) and follows it. */
async function addRun(id: string): Promise<void> {
  const token = state.token;
  if (!token) return;
  const run = await apiJson(ApiRunSchema, `/v1/runs/${encodeURIComponent(id)}`, { token, signal: state.session.signal }, 'GET /v1/runs/:id');
  if (state.filter !== null && state.filter !== run.status) return;
  if (!state.runs.has(id)) state.order.unshift(id);
  state.runs.set(id, run);
  renderList();
  followActive();
}

// ------------------------------------------------------------------ start

byId<HTMLFormElement>('submit-form').addEventListener('submit', (event) => void submitRun(event));
byId<HTMLSelectElement>('status-filter').addEventListener('change', (event) => {
  const value = (event.target as HTMLSelectElement).value;
  state.filter = isRunStatus(value) ? value : null;
  void loadList();
});
byId('refresh').addEventListener('click', () => void loadList());
byId('more').addEventListener('click', () => void loadList({ more: true }));
setInterval(() => {
  if (document.visibilityState === 'visible' && state.token && state.morePages === 0) void loadList();
}, REFRESH_MS);
