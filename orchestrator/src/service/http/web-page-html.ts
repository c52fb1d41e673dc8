/**
 * The HTML and CSS of `rlm serve`'s web pages: the team page (`GET /`) and a run's page
 * (`GET /runs/:id`). Server-rendered skeletons that their scripts fill in with what the API answers
 * for the pasted token; nothing of a team's data is in the HTML (the server cannot know the team
 * before the script sends the token). Everything they load comes from the service itself: the
 * scripts and the stylesheet (the trajectory viewer's, plus the service's own rules), no CDN, no web
 * fonts, no inline script, style or handler.
 */
import { VIEWER_CSS } from '../../viewer/page/viewer-page.js';
import { RUN_STATUSES } from '../service-types.js';

/** Where the pages' assets are served (web-page.ts). */
export const WEB_ASSET_PATHS = { teamScript: '/web/serve-team.js', runScript: '/web/serve-run.js', css: '/web/serve.css' } as const;

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

function head(title: string, script: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${WEB_ASSET_PATHS.css}">
<script src="${script}" defer></script>
</head>`;
}

function topbar(subtitle: string, back: boolean): string {
  return `<header class="topbar">
  <a class="brand" href="/">rlm</a><span class="brand-sub">${escapeHtml(subtitle)}</span>
  ${back ? '<a class="nav-link" href="/">All runs</a>' : ''}
  <span class="spacer"></span>
  <span id="token-state" class="directory mono">no token</span>
  <button type="button" id="forget-token" hidden>Forget token</button>
</header>`;
}

/** The token form; the script shows it while this tab holds no token. `form-action 'none'` keeps a script-less submit from putting the token in a URL. */
const TOKEN_SECTION = `<section id="token-section" class="card token-card" aria-labelledby="token-heading" hidden>
  <h1 id="token-heading">Paste your team's token</h1>
  <p class="muted">An API token of your team, as <code>rlm serve tokens create --team NAME</code> printed it.
  This tab keeps it in its session storage until you close it or press “Forget token”; it is sent only to this server, in the <code>Authorization</code> header.</p>
  <form id="token-form" class="stack" method="post">
    <label for="token-input">API token</label>
    <div class="row">
      <input id="token-input" name="token" type="password" autocomplete="off" spellcheck="false" placeholder="rlm_…" required>
      <button type="submit" class="primary">Use this token</button>
    </div>
  </form>
  <p id="token-error" role="alert"></p>
</section>`;

const NOSCRIPT = '<noscript><p class="card">This page needs JavaScript: its script reads the runs from the API with your token.</p></noscript>';

/** `GET /`: the team's runs, the submit form. */
export function teamPageHtml(): string {
  const statuses = RUN_STATUSES.map((s) => `<option value="${s}">${s}</option>`).join('');
  return `${head('rlm serve', WEB_ASSET_PATHS.teamScript)}
<body class="serve">
${topbar('serve', false)}
<main class="serve-main" id="page">
${NOSCRIPT}
${TOKEN_SECTION}
<div id="app" hidden>
  <section class="card" aria-labelledby="submit-heading">
    <h2 id="submit-heading">New run</h2>
    <form id="submit-form" class="stack" method="post">
      <label for="query">Query</label>
      <textarea id="query" name="query" rows="3" required placeholder="What should the model find out?"></textarea>
      <div class="fields">
        <div class="stack">
          <label for="context-file">Context file <span class="muted">(optional; read by your browser, sent as text)</span></label>
          <input id="context-file" name="context" type="file">
        </div>
        <div class="stack">
          <label for="language">REPL language</label>
          <select id="language" name="language"><option value="">server default</option><option value="javascript">JavaScript</option><option value="python">Python</option></select>
        </div>
        <div class="stack">
          <label for="model">Model</label>
          <select id="model" name="model"><option value="rlm">rlm (the server’s default)</option></select>
        </div>
      </div>
      <div class="row">
        <button type="submit" id="submit-button" class="primary">Submit run</button>
        <p id="submit-status" role="status" aria-live="polite"></p>
      </div>
    </form>
  </section>
  <section aria-labelledby="runs-heading">
    <div class="toolbar">
      <h2 id="runs-heading">Runs</h2>
      <span class="spacer"></span>
      <label for="status-filter">Status</label>
      <select id="status-filter"><option value="">all</option>${statuses}</select>
      <button type="button" id="refresh">Refresh</button>
    </div>
    <p id="runs-message" class="muted" role="status" aria-live="polite">Loading…</p>
    <div class="table-wrap">
      <table class="runs" id="runs-table">
        <caption class="visually-hidden">The team's runs, newest first</caption>
        <thead><tr><th scope="col">Run</th><th scope="col">Status</th><th scope="col">Query</th><th scope="col">Model</th><th scope="col">Created</th><th scope="col" class="num">Duration</th><th scope="col" class="num">Cost</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead>
        <tbody id="runs-body"></tbody>
      </table>
    </div>
    <button type="button" id="more" hidden>Load more</button>
  </section>
</div>
<div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
</main>
</body>
</html>
`;
}

/** `GET /runs/:id`: one run, its live events, its trajectory in the viewer. `runId` is shown escaped; the script reads the id from the address. */
export function runPageHtml(runId: string): string {
  const id = escapeHtml(runId);
  return `${head(`${runId} · rlm serve`, WEB_ASSET_PATHS.runScript)}
<body class="serve">
${topbar('serve', true)}
<main class="serve-main" id="page">
${NOSCRIPT}
${TOKEN_SECTION}
<div id="app" hidden>
  <section class="run-summary" aria-labelledby="run-title">
    <div class="row">
      <h1 id="run-title" class="run-title">Run ${id}</h1>
      <span id="run-status" role="status" aria-live="polite"></span>
      <span class="spacer"></span>
      <button type="button" id="cancel-run" hidden>Cancel run</button>
    </div>
    <dl id="run-facts" class="facts"></dl>
    <div class="section-label">Query</div>
    <div id="run-query"></div>
    <div id="run-outcome"></div>
    <p id="run-message" role="alert"></p>
  </section>
  <details id="events" class="card events" open>
    <summary><span class="section-label">Live events</span> <span id="event-count" class="muted">0 events</span></summary>
    <ol id="event-log" class="event-log"></ol>
  </details>
  <section class="trajectory" aria-labelledby="trajectory-heading">
    <h2 id="trajectory-heading">Trajectory</h2>
    <div id="main" tabindex="-1"><p class="muted">The trajectory is shown when the run has ended; its events appear above as it runs.</p></div>
  </section>
</div>
<div id="announcer" class="visually-hidden" role="status" aria-live="polite"></div>
</main>
</body>
</html>
`;
}

/** The viewer's stylesheet (the trajectory is drawn with its classes) and the service pages' own rules. */
export const SERVE_CSS = `${VIEWER_CSS}
/* rlm serve */
body.serve a { color: var(--accent); }
.topbar a.brand { color: var(--text); text-decoration: none; }
.nav-link { font-size: 13px; }
.serve-main { max-width: 1200px; margin: 0 auto; padding: 20px 24px 64px; }
.card { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; padding: 14px 18px; margin: 0 0 18px; }
.token-card { max-width: 720px; margin: 8vh auto; }
.token-card h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 0 0 10px; }
.stack { display: flex; flex-direction: column; gap: 4px; }
.row { display: flex; align-items: center; gap: 10px; flex-wrap: wrap; }
.fields { display: flex; gap: 16px; flex-wrap: wrap; margin: 8px 0; }
label { font-size: 13px; font-weight: 600; }
input, select, textarea { font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--border-strong); border-radius: 6px; padding: 5px 8px; }
textarea { width: 100%; resize: vertical; font-family: var(--mono); font-size: 13px; }
#token-input { min-width: min(480px, 80vw); font-family: var(--mono); }
main button, .topbar button { background: var(--panel); border: 1px solid var(--border-strong); border-radius: 6px; padding: 4px 12px; cursor: pointer; font-size: 13px; }
main button:hover { background: var(--bg); }
main button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
main button:disabled { opacity: 0.6; cursor: default; }
.ok-text { color: var(--ok); }
.small { font-size: 12px; }
.nowrap { white-space: nowrap; }
.visually-hidden { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
.table-wrap { overflow-x: auto; }
table.runs { border-collapse: collapse; width: 100%; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; font-size: 13px; }
table.runs th, table.runs td { padding: 7px 10px; border-bottom: 1px solid var(--border); text-align: left; vertical-align: top; }
table.runs th { background: var(--bg); color: var(--muted); font-weight: 600; font-size: 12px; }
table.runs .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.runs .query-cell { word-break: break-word; min-width: 240px; }
.run-id { font-size: 12px; }
#more { margin-top: 10px; }
.run-summary { margin-bottom: 16px; }
.run-summary .run-title { margin: 0; }
.events > summary { padding: 2px 0; }
.event-log { margin: 8px 0 0; padding-left: 0; list-style: none; max-height: 340px; overflow-y: auto; font-family: var(--mono); font-size: 12px; }
.event-log li { padding: 2px 0; border-bottom: 1px dashed var(--border); word-break: break-word; }
.event-log .time { display: inline-block; min-width: 90px; }
.serve-main .toolbar { max-width: none; margin: 8px 0 10px; }
.trajectory { margin-top: 18px; }
.trajectory #main { padding: 0; }
`;
