/**
 * The viewer page's script, served as /viewer.js: the run list, the open run, and the keyboard.
 * Bundled into one file at build time (scripts/viewer-bundle.mjs → dist/viewer-assets/viewer.js).
 *
 * Security: trajectories hold untrusted model output. Every piece of their text reaches the page
 * through `textContent` or text nodes (dom.ts), never `innerHTML`; no attribute the browser would
 * load or run (href, src, on…) is set from trajectory data; the server's Content-Security-Policy
 * forbids inline script as a second line of defence.
 *
 * The JSON API's answers are typed with the server's own view types (viewed-run.ts), not parsed:
 * the page only talks to the server that served it, built from the same types.
 */
import type { RunListResponse, RunResponse, RunSummary } from '../../viewed-run.js';
import { byId, clear, h } from './dom.js';
import { firstLine, fmtCost, fmtTime, fmtTokens, plural } from './format.js';
import { handleTurnKey, renderMessage, renderRun } from './run-view.js';
import { badge } from './widgets.js';

const state = {
  runs: [] as RunSummary[],
  /** The run shown (or being loaded), by its file. */
  current: null as string | null,
  filter: '',
};

// ------------------------------------------------------------------ the run list

function renderList(): void {
  const list = byId('run-list');
  clear(list);
  const filter = state.filter.toLowerCase();
  const shown = state.runs.filter((run) => !filter || [run.file, run.rootModel, run.query, run.finalAnswer].some((s) => s?.toLowerCase().includes(filter)));
  byId('run-count').textContent = shown.length === state.runs.length ? plural(state.runs.length, 'run') : `${shown.length} of ${state.runs.length} runs`;
  if (state.runs.length === 0) {
    list.appendChild(h('li', { class: 'muted list-empty', text: 'No .jsonl trajectories in this directory.' }));
    return;
  }
  for (const run of shown) list.appendChild(h('li', null, runItem(run)));
}

function runItem(run: RunSummary): HTMLButtonElement {
  const selected = state.current === run.file;
  const status = run.error ? badge('unreadable', 'error') : run.finalAnswer !== null ? badge('answered', 'ok') : badge('no answer', 'error');
  return h(
    'button',
    {
      type: 'button',
      class: `run-item${selected ? ' selected' : ''}`,
      'data-file': run.file,
      'aria-current': selected ? 'true' : null,
      onclick: () => void openRun(run.file),
    },
    [
      h('div', { class: 'run-line1' }, [h('span', { class: 'run-query', text: run.query ? firstLine(run.query, 90) : run.file }), status]),
      h('div', { class: 'run-line2 muted' }, [
        h('span', { text: fmtTime(run.started || run.modified) }),
        run.rootModel ? h('span', { class: 'model', text: run.rootModel }) : null,
      ]),
      h('div', { class: 'run-line3 muted' }, [
        h('span', { text: plural(run.iterations, 'turn') }),
        run.totalTokens ? h('span', { text: `${fmtTokens(run.totalTokens)} tok` }) : null,
        run.costUsd !== null && run.totalTokens ? h('span', { text: fmtCost(run.costUsd) }) : null,
        run.errorCount ? h('span', { class: 'error-text', text: plural(run.errorCount, 'error') }) : null,
        run.problemCount ? h('span', { class: 'warn-text', text: plural(run.problemCount, 'bad line') }) : null,
      ]),
      run.query ? h('div', { class: 'run-file mono muted', text: run.file }) : null,
    ],
  );
}

function runButtons(): HTMLButtonElement[] {
  return [...document.querySelectorAll<HTMLButtonElement>('#run-list .run-item')];
}

// ------------------------------------------------------------------ data

/** The server's JSON answer; a refusal (`{ error }`) or another failure becomes an Error with its message. */
async function getJson<Body>(url: string): Promise<Body> {
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  const body: unknown = await response.json();
  if (!response.ok) {
    const error = typeof body === 'object' && body !== null && 'error' in body && typeof body.error === 'string' ? body.error : `HTTP ${response.status}`;
    throw new Error(error);
  }
  return body as Body;
}

async function loadList(): Promise<RunListResponse> {
  const body = await getJson<RunListResponse>('/api/runs');
  state.runs = body.runs;
  byId('directory').textContent = body.directory;
  renderList();
  return body;
}

async function openRun(file: string, options: { keepHash?: boolean } = {}): Promise<void> {
  state.current = file;
  if (!options.keepHash) history.replaceState(null, '', `#run=${encodeURIComponent(file)}`);
  renderList();
  renderMessage('Loading…', file);
  let body: RunResponse;
  try {
    body = await getJson<RunResponse>(`/api/run?file=${encodeURIComponent(file)}`);
  } catch (error) {
    if (state.current === file) renderMessage(`Cannot open ${file}`, errorText(error), 'error');
    return;
  }
  // Another run was opened meanwhile.
  if (state.current !== file) return;
  document.title = `${body.run.query ? firstLine(body.run.query, 60) : file} · rlm view`;
  renderRun(file, body.run);
  byId('main').focus({ preventScroll: true });
}

function fileFromHash(): string | null {
  const match = /^#run=(.+)$/.exec(location.hash);
  if (!match?.[1]) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return null;
  }
}

async function reload(): Promise<void> {
  try {
    await loadList();
  } catch (error) {
    renderMessage('Cannot list the runs', errorText(error), 'error');
    return;
  }
  if (state.current) await openRun(state.current, { keepHash: true });
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// ------------------------------------------------------------------ keyboard

/** Moves the focus `step` runs down the list (from the focused or the open run); returns the run focused. */
function moveRun(step: number): HTMLButtonElement | undefined {
  const buttons = runButtons();
  if (!buttons.length) return undefined;
  let index = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (index === -1) index = buttons.findIndex((button) => button.dataset.file === state.current);
  index = index === -1 ? 0 : Math.min(buttons.length - 1, Math.max(0, index + step));
  const button = buttons[index];
  button?.focus();
  return button;
}

function openMoved(step: number): void {
  const file = moveRun(step)?.dataset.file;
  if (file) void openRun(file);
}

function toggleHelp(show?: boolean): void {
  const help = byId('help');
  help.hidden = show === undefined ? !help.hidden : !show;
}

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target instanceof HTMLElement ? event.target : null;
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA')) {
    if (event.key === 'Escape') target.blur();
    if (event.key === 'ArrowDown' && target.id === 'filter') {
      event.preventDefault();
      moveRun(1);
    }
    return;
  }
  const inList = target?.classList.contains('run-item') ?? false;
  switch (event.key) {
    case '/':
      event.preventDefault();
      byId('filter').focus();
      break;
    case '?':
      toggleHelp();
      break;
    case 'Escape':
      toggleHelp(false);
      break;
    case 'r':
      void reload();
      break;
    case ']':
      openMoved(1);
      break;
    case '[':
      openMoved(-1);
      break;
    case 'ArrowDown':
      if (inList) {
        event.preventDefault();
        moveRun(1);
      }
      break;
    case 'ArrowUp':
      if (inList) {
        event.preventDefault();
        moveRun(-1);
      }
      break;
    default:
      handleTurnKey(event.key);
      break;
  }
});

// ------------------------------------------------------------------ start

byId<HTMLInputElement>('filter').addEventListener('input', (event) => {
  state.filter = (event.target as HTMLInputElement).value;
  renderList();
});
byId('reload').addEventListener('click', () => void reload());
byId('help-button').addEventListener('click', () => toggleHelp());
window.addEventListener('hashchange', () => {
  const file = fileFromHash();
  if (file && file !== state.current) void openRun(file, { keepHash: true });
});

async function start(): Promise<void> {
  let list: RunListResponse;
  try {
    list = await loadList();
  } catch (error) {
    renderMessage('Cannot list the runs', errorText(error), 'error');
    return;
  }
  const fromHash = fileFromHash();
  const file = fromHash ?? list.initial;
  if (file) await openRun(file, { keepHash: fromHash !== null });
  else if (list.runs.length === 0) {
    renderMessage(
      'No runs yet',
      `No .jsonl trajectories in ${list.directory}. Runs write them there when given a log directory (rlm --log-dir, or logDir in code).`,
    );
  } else renderMessage('Select a run', 'Pick a run on the left (or press ] to open the first one).');
}

void start();
