/**
 * `report.html`: one self-contained page for an evaluation — the summary per method, the paired
 * differences, inline SVG charts (accuracy and cost per method, score against context length) and
 * a sortable table of every result, each linking to its trajectory in `rlm view`.
 *
 * Self-contained: no request leaves the page (no CDN, font, image or fetch); CSS and the small
 * sorting script are inline, allowed by hash in the page's own Content-Security-Policy
 * ({@link REPORT_CSP}, also sent as a header by `rlm view`), which forbids every other script.
 * Answers, queries and errors come from models and datasets nobody vetted: every data string is
 * HTML-escaped ({@link escapeHtml}) and none is placed inside the script, a style or a URL scheme.
 *
 * Light on purpose (node:crypto and the contract's types only), so the viewer can import the CSP.
 */
import { createHash } from 'node:crypto';
import type { EvalSummary, EvalTask, MethodSummary, ResultLine } from '../eval-types.js';

/** What the page shows. */
export interface ReportInput {
  summary: EvalSummary;
  lines: readonly ResultLine[];
  tasks: readonly EvalTask[];
}

/** Escapes text for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** Sorts the results table by the clicked column (numbers numerically, empty last); reads only the DOM. */
const SORT_SCRIPT = `
(function () {
  var table = document.getElementById('results');
  if (!table) return;
  var body = table.tBodies[0];
  var heads = table.tHead.rows[0].cells;
  var state = { col: -1, dir: 1 };
  function key(row, col) {
    var cell = row.cells[col];
    var raw = cell.getAttribute('data-sort');
    if (raw === null) raw = cell.textContent;
    var num = raw === '' ? NaN : Number(raw);
    return { num: num, text: raw };
  }
  function sortBy(col) {
    state.dir = state.col === col ? -state.dir : 1;
    state.col = col;
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a, col), y = key(b, col);
      var xn = !isNaN(x.num), yn = !isNaN(y.num);
      if (xn && yn) return (x.num - y.num) * state.dir;
      if (xn !== yn) return xn ? -1 : 1;
      if (x.text === '' || y.text === '') return x.text === '' ? 1 : -1;
      return x.text.localeCompare(y.text) * state.dir;
    });
    for (var i = 0; i < rows.length; i++) body.appendChild(rows[i]);
    for (var j = 0; j < heads.length; j++) heads[j].setAttribute('aria-sort', j === col ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
  }
  for (var k = 0; k < heads.length; k++) {
    (function (col) {
      var button = heads[col].querySelector('button');
      if (button) button.addEventListener('click', function () { sortBy(col); });
    })(k);
  }
  var filter = document.getElementById('filter');
  if (filter) filter.addEventListener('input', function () {
    var q = filter.value.toLowerCase();
    var rows = body.rows;
    for (var i = 0; i < rows.length; i++) rows[i].hidden = q !== '' && rows[i].textContent.toLowerCase().indexOf(q) === -1;
  });
})();
`;

const REPORT_CSS = `
:root { --bg: #f6f7f9; --panel: #fff; --border: #e2e4ea; --text: #1b1e27; --muted: #667085; --accent: #4f46e5;
  --ok: #137a3f; --err: #b42318; --warn: #a15c07;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.45 var(--sans); }
header { padding: 16px 24px; background: var(--panel); border-bottom: 1px solid var(--border); }
header h1 { margin: 0; font-size: 18px; }
header .muted { margin-top: 2px; }
main { padding: 16px 24px 48px; max-width: 1400px; }
section { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; overflow-x: auto; }
h2 { font-size: 15px; margin: 0 0 8px; }
.muted { color: var(--muted); }
.mono { font-family: var(--mono); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--border); vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th button:focus-visible { outline: 2px solid var(--accent); }
th[aria-sort="ascending"] button::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"] button::after { content: " \\25BC"; font-size: 10px; }
tr.err td { background: #fff3f1; }
.score-1 { color: var(--ok); font-weight: 600; }
.score-0 { color: var(--err); font-weight: 600; }
.kind { color: var(--warn); }
.cell-text { max-width: 360px; overflow-wrap: anywhere; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { flex: 1 1 380px; max-width: 640px; margin: 0; }
.chart svg { width: 100%; height: auto; display: block; }
svg text { font: 11px var(--sans); fill: var(--text); }
svg .axis { stroke: #98a2b3; stroke-width: 1; }
svg .grid { stroke: #eaecf0; stroke-width: 1; }
svg .whisker { stroke: #1b1e27; stroke-width: 1.5; }
#filter { padding: 4px 8px; border: 1px solid var(--border); border-radius: 6px; min-width: 240px; margin-bottom: 8px; }
a { color: var(--accent); }
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * The page's Content-Security-Policy: only its own inline script and styles (by hash), no network
 * at all (`connect-src`, `img-src` and fonts are `'none'` but data: images), no forms, no framing.
 */
export const REPORT_CSP = `default-src 'none'; script-src ${sha256(SORT_SCRIPT)}; style-src ${sha256(REPORT_CSS)}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

/** The same policy as the page's own `<meta>` carries it (for a page opened from disk); browsers ignore `frame-ancestors` there. */
const META_CSP = REPORT_CSP.replace("; frame-ancestors 'none'", '');

/** The colours of methods, in {@link METHODS}' order and beyond. */
const METHOD_COLOURS = ['#4f46e5', '#e8590c', '#0f9d58', '#c2255c', '#1c7ed6', '#5f3dc4'];

/** The page for `input`. `generatedAt` is shown in the header (ISO 8601). */
export function renderReport(input: ReportInput, generatedAt: string = new Date().toISOString()): string {
  const { summary, lines, tasks } = input;
  const methods = Object.keys(summary.methods);
  const colour = (method: string) => METHOD_COLOURS[Math.max(0, methods.indexOf(method)) % METHOD_COLOURS.length] as string;
  const tasksById = new Map(tasks.map((task) => [task.id, task]));
  const title = `rlm eval: ${summary.dataset}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(META_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>${REPORT_CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<div class="muted">${summary.finished} of ${summary.planned} (task, method, epoch) results · generated ${escapeHtml(generatedAt)}</div>
</header>
<main>
${summaryTable(summary)}
${pairsTable(summary)}
<section aria-labelledby="charts-h">
<h2 id="charts-h">Charts</h2>
<div class="charts">
<figure class="chart" id="chart-accuracy">${accuracyChart(summary, colour)}<figcaption class="muted">Accuracy per method (mean score; the whisker is the 95% interval)</figcaption></figure>
<figure class="chart" id="chart-cost">${costChart(summary, colour)}<figcaption class="muted">Cost per method (USD)</figcaption></figure>
<figure class="chart" id="chart-length">${lengthChart(lines, methods, colour)}<figcaption class="muted">Score against context length (characters; mean over epochs per task)</figcaption></figure>
</div>
</section>
${resultsTable(lines, tasksById)}
</main>
<script>${SORT_SCRIPT}</script>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------
// Tables

function summaryTable(summary: EvalSummary): string {
  const rows = Object.entries(summary.methods).map(([method, s]: [string, MethodSummary]) => {
    const ci = s.ci95 ? `${fixed(s.ci95[0], 3)} – ${fixed(s.ci95[1], 3)}` : '–';
    return `<tr><td>${escapeHtml(method)}</td><td class="num">${s.n}</td><td class="num">${s.scored}</td><td class="num">${s.errors}</td><td class="num">${s.accuracy === null ? '–' : fixed(s.accuracy, 3)}</td><td class="num">${ci}</td><td class="num">${money(s.cost_usd)}</td><td class="num">${s.input_tokens}</td><td class="num">${s.output_tokens}</td><td class="num">${ms(s.p50_ms)}</td><td class="num">${ms(s.p95_ms)}</td></tr>`;
  });
  return `<section aria-labelledby="summary-h">
<h2 id="summary-h">Summary per method</h2>
<table id="summary"><thead><tr><th>method</th><th class="num">n</th><th class="num">scored</th><th class="num">errors</th><th class="num">accuracy</th><th class="num">95% CI</th><th class="num">cost</th><th class="num">input tokens</th><th class="num">output tokens</th><th class="num">p50</th><th class="num">p95</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
</section>`;
}

function pairsTable(summary: EvalSummary): string {
  if (summary.pairs.length === 0) return '';
  const rows = summary.pairs.map(
    (p) =>
      `<tr><td>${escapeHtml(p.a)} − ${escapeHtml(p.b)}</td><td class="num">${p.tasks}</td><td class="num">${p.difference === null ? '–' : signed(p.difference)}</td><td class="num">${p.ci95 ? `${signed(p.ci95[0])} – ${signed(p.ci95[1])}` : '–'}</td></tr>`,
  );
  return `<section aria-labelledby="pairs-h">
<h2 id="pairs-h">Paired differences</h2>
<table id="pairs"><thead><tr><th>methods</th><th class="num">tasks</th><th class="num">difference in accuracy</th><th class="num">95% CI</th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
</section>`;
}

const COLUMNS: Array<{ label: string; numeric?: boolean }> = [
  { label: 'task' },
  { label: 'method' },
  { label: 'epoch', numeric: true },
  { label: 'score', numeric: true },
  { label: 'answer' },
  { label: 'expected' },
  { label: 'error' },
  { label: 'cost', numeric: true },
  { label: 'tokens in', numeric: true },
  { label: 'tokens out', numeric: true },
  { label: 'ms', numeric: true },
  { label: 'iterations', numeric: true },
  { label: 'context chars', numeric: true },
  { label: 'trajectory' },
];

function resultsTable(lines: readonly ResultLine[], tasks: ReadonlyMap<string, EvalTask>): string {
  const sorted = [...lines].sort((a, b) => compareIds(a.task_id, b.task_id) || a.method.localeCompare(b.method) || a.epoch - b.epoch);
  const head = COLUMNS.map((c) => `<th${c.numeric ? ' class="num"' : ''} aria-sort="none"><button type="button">${c.label}</button></th>`).join('');
  const rows = sorted.map((line) => {
    const task = tasks.get(line.task_id);
    const error = line.error_kind ? `<span class="kind">${escapeHtml(line.error_kind)}</span> ${escapeHtml(clip(line.error ?? '', 200))}` : '';
    const scoreClass = line.score === 1 ? ' score-1' : line.score === 0 ? ' score-0' : '';
    const link = line.trajectory_file ? `<a href="${escapeHtml(viewerLink(line.trajectory_file))}" title="open in rlm view">trajectory</a>` : '';
    return `<tr${line.error_kind === 'infra' || line.error_kind === 'scorer' ? ' class="err"' : ''}><td class="mono"${task ? ` title="${escapeHtml(clip(task.query, 500))}"` : ''}>${escapeHtml(line.task_id)}</td><td>${escapeHtml(line.method)}</td><td class="num">${line.epoch}</td><td class="num${scoreClass}" data-sort="${line.score ?? ''}">${line.score === null ? '–' : fixed(line.score, 2)}</td><td class="cell-text" title="${escapeHtml(clip(line.answer ?? '', 2000))}">${escapeHtml(clip(line.answer ?? '', 200))}</td><td class="cell-text">${escapeHtml(clip(line.expected.join(' | '), 200))}</td><td class="cell-text">${error}</td><td class="num" data-sort="${line.cost_usd ?? ''}">${money(line.cost_usd)}</td><td class="num">${line.input_tokens}</td><td class="num">${line.output_tokens}</td><td class="num">${Math.round(line.duration_ms)}</td><td class="num">${line.iterations}</td><td class="num">${line.context_chars}</td><td>${link}</td></tr>`;
  });
  return `<section aria-labelledby="results-h">
<h2 id="results-h">Results <span class="muted">(${lines.length}; click a column to sort)</span></h2>
<input id="filter" type="search" placeholder="Filter rows" aria-label="Filter rows" autocomplete="off">
<table id="results"><thead><tr>${head}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
</section>`;
}

/**
 * The viewer's address of a trajectory, relative to the report (`rlm view DIR` serves the report
 * as /report.html and the viewer as /, reading files relative to DIR): `./#run=PATH`.
 */
export function viewerLink(trajectoryFile: string): string {
  return `./#run=${encodeURIComponent(trajectoryFile)}`;
}

// ---------------------------------------------------------------------------------------------
// Charts (inline SVG; coordinates only from numbers, labels escaped)

const BAR_W = 280;
const LABEL_W = 100;

function barChart(
  id: string,
  rows: Array<{ method: string; value: number | null; ci?: readonly [number, number] | null; label: string }>,
  max: number,
  colour: (method: string) => string,
): string {
  const rowH = 28;
  const height = rows.length * rowH + 30;
  const width = LABEL_W + BAR_W + 70;
  const x = (v: number) => LABEL_W + (max > 0 ? (v / max) * BAR_W : 0);
  const parts: string[] = [];
  for (let t = 0; t <= 4; t++) {
    const v = (max * t) / 4;
    parts.push(`<line class="grid" x1="${n(x(v))}" y1="4" x2="${n(x(v))}" y2="${height - 22}"/>`);
    parts.push(`<text x="${n(x(v))}" y="${height - 8}" text-anchor="middle">${escapeHtml(tick(v))}</text>`);
  }
  rows.forEach((row, i) => {
    const y = 8 + i * rowH;
    parts.push(`<text x="${LABEL_W - 8}" y="${y + 14}" text-anchor="end">${escapeHtml(row.method)}</text>`);
    if (row.value !== null) {
      parts.push(
        `<rect class="bar" data-method="${escapeHtml(row.method)}" x="${LABEL_W}" y="${y}" width="${n(Math.max(0, x(row.value) - LABEL_W))}" height="18" fill="${colour(row.method)}" rx="2"/>`,
      );
    }
    if (row.ci) {
      const [lo, hi] = row.ci;
      parts.push(`<line class="whisker" x1="${n(x(lo))}" y1="${y + 9}" x2="${n(x(hi))}" y2="${y + 9}"/>`);
      parts.push(`<line class="whisker" x1="${n(x(lo))}" y1="${y + 4}" x2="${n(x(lo))}" y2="${y + 14}"/>`);
      parts.push(`<line class="whisker" x1="${n(x(hi))}" y1="${y + 4}" x2="${n(x(hi))}" y2="${y + 14}"/>`);
    }
    parts.push(`<text x="${n(x(Math.max(row.value ?? 0, row.ci?.[1] ?? 0)) + 6)}" y="${y + 14}">${escapeHtml(row.label)}</text>`);
  });
  parts.push(`<line class="axis" x1="${LABEL_W}" y1="4" x2="${LABEL_W}" y2="${height - 22}"/>`);
  return `<svg id="${id}" viewBox="0 0 ${width} ${height}" role="img" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

function accuracyChart(summary: EvalSummary, colour: (method: string) => string): string {
  const rows = Object.entries(summary.methods).map(([method, s]) => ({
    method,
    value: s.accuracy,
    ci: s.ci95,
    label: s.accuracy === null ? 'no score' : fixed(s.accuracy, 3),
  }));
  return barChart('svg-accuracy', rows, 1, colour);
}

function costChart(summary: EvalSummary, colour: (method: string) => string): string {
  const rows = Object.entries(summary.methods).map(([method, s]) => ({ method, value: s.cost_usd, label: money(s.cost_usd) }));
  const max = Math.max(0, ...rows.map((r) => r.value ?? 0));
  return barChart('svg-cost', rows, max > 0 ? niceMax(max) : 1, colour);
}

function lengthChart(lines: readonly ResultLine[], methods: readonly string[], colour: (method: string) => string): string {
  // Mean score over epochs per (task, method).
  const points = new Map<string, { method: string; chars: number; sum: number; count: number }>();
  for (const line of lines) {
    if (line.score === null) continue;
    const key = `${line.task_id}\u0000${line.method}`;
    const point = points.get(key) ?? { method: line.method, chars: line.context_chars, sum: 0, count: 0 };
    point.sum += line.score;
    point.count += 1;
    points.set(key, point);
  }
  const width = 560;
  const height = 260;
  const left = 44;
  const bottom = height - 34;
  const top = 10;
  const right = width - 12;
  const all = [...points.values()];
  const charsMax = Math.max(1, ...all.map((p) => p.chars));
  const charsMin = Math.max(1, Math.min(charsMax, ...all.map((p) => Math.max(1, p.chars))));
  // A log scale when lengths span more than a decade, else linear from 0.
  const log = charsMax / charsMin > 10;
  const x = (chars: number) =>
    log
      ? left + ((Math.log10(Math.max(1, chars)) - Math.log10(charsMin)) / Math.max(1e-9, Math.log10(charsMax) - Math.log10(charsMin))) * (right - left)
      : left + (chars / niceMax(charsMax)) * (right - left);
  const y = (score: number) => bottom - score * (bottom - top);
  const parts: string[] = [];
  for (const s of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(`<line class="grid" x1="${left}" y1="${n(y(s))}" x2="${right}" y2="${n(y(s))}"/>`);
    parts.push(`<text x="${left - 6}" y="${n(y(s) + 4)}" text-anchor="end">${s}</text>`);
  }
  const ticks = log ? logTicks(charsMin, charsMax) : [0, 0.25, 0.5, 0.75, 1].map((f) => f * niceMax(charsMax));
  for (const t of ticks) parts.push(`<text x="${n(x(t))}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(tick(t))}</text>`);
  parts.push(
    `<line class="axis" x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}"/><line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`,
  );
  // Methods side by side a little, so equal points of two methods stay visible.
  const offset = (method: string) => (methods.indexOf(method) - (methods.length - 1) / 2) * 4;
  for (const p of all) {
    parts.push(
      `<circle class="point" data-method="${escapeHtml(p.method)}" cx="${n(x(p.chars) + offset(p.method))}" cy="${n(y(p.sum / p.count))}" r="4" fill="${colour(p.method)}" fill-opacity="0.7"/>`,
    );
  }
  methods.forEach((method, i) => {
    const lx = left + 8 + i * 130;
    parts.push(`<circle cx="${lx}" cy="${height - 8}" r="4" fill="${colour(method)}"/><text x="${lx + 8}" y="${height - 4}">${escapeHtml(method)}</text>`);
  });
  if (all.length === 0) parts.push(`<text x="${(left + right) / 2}" y="${(top + bottom) / 2}" text-anchor="middle">no scored results yet</text>`);
  return `<svg id="svg-length" viewBox="0 0 ${width} ${height}" role="img" xmlns="http://www.w3.org/2000/svg">${parts.join('')}</svg>`;
}

// ---------------------------------------------------------------------------------------------
// Numbers

function n(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 10) / 10) : '0';
}

function fixed(value: number, digits: number): string {
  return value.toFixed(digits);
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
}

function money(value: number | null): string {
  if (value === null) return '?';
  if (value === 0) return '$0';
  return value < 1 ? `$${value.toFixed(4)}` : `$${value.toFixed(2)}`;
}

function ms(value: number | null): string {
  return value === null ? '–' : `${Math.round(value)} ms`;
}

function niceMax(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function logTicks(min: number, max: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    const v = 10 ** e;
    if (v >= min / 1.0001 && v <= max * 1.0001) ticks.push(v);
  }
  return ticks.length > 0 ? ticks : [min, max];
}

function tick(value: number): string {
  if (value === 0) return '0';
  if (value >= 1_000_000) return `${trim(value / 1_000_000)}M`;
  if (value >= 1_000) return `${trim(value / 1_000)}k`;
  if (value < 0.01) return value.toExponential(0);
  return trim(value);
}

function trim(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Task ids in natural order: `2` before `10`. */
function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
