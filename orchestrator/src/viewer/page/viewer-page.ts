/**
 * The viewer's HTML and CSS, served as / and /viewer.css. Everything the page uses is served by
 * the viewer itself: no CDN, no web fonts (system font stacks), no remote images.
 */

export const VIEWER_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>rlm view</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/viewer.css">
<script src="/viewer.js" defer></script>
</head>
<body>
<header class="topbar">
  <span class="brand">rlm</span><span class="brand-sub">trajectories</span>
  <span id="directory" class="directory mono"></span>
  <span class="spacer"></span>
  <button type="button" id="reload" title="Reload the list and the open run (r)">Reload</button>
  <button type="button" id="help-button" title="Keyboard shortcuts (?)">Keys</button>
</header>
<div class="layout">
  <nav class="sidebar" aria-label="Runs">
    <div class="sidebar-head">
      <input id="filter" type="search" placeholder="Filter runs" aria-label="Filter runs" autocomplete="off">
      <div id="run-count" class="muted run-count"></div>
    </div>
    <ul id="run-list" class="run-list"></ul>
  </nav>
  <main id="main" tabindex="-1"><div class="placeholder"><h1>Loading…</h1></div></main>
</div>
<div id="help" class="help" hidden>
  <h2>Keyboard</h2>
  <dl>
    <dt>/</dt><dd>filter runs</dd>
    <dt>↑ ↓</dt><dd>move in the run list (Enter opens)</dd>
    <dt>[ ]</dt><dd>open the previous / next run</dd>
    <dt>j k</dt><dd>next / previous turn (Enter or Space opens it)</dd>
    <dt>e c</dt><dd>expand / collapse all turns</dd>
    <dt>r</dt><dd>reload</dd>
    <dt>?</dt><dd>this help (Esc closes)</dd>
  </dl>
</div>
</body>
</html>
`;

export const VIEWER_CSS = `
:root {
  --bg: #f6f7f9; --panel: #ffffff; --border: #e2e4ea; --border-strong: #cfd3dc;
  --text: #1b1e27; --muted: #667085; --accent: #4f46e5; --accent-soft: #eef0ff;
  --ok: #137a3f; --ok-bg: #ecfbf2; --ok-border: #a6e3bf;
  --err: #b42318; --err-bg: #fff3f1; --err-border: #f5b8b0;
  --warn: #a15c07; --warn-bg: #fffaeb; --warn-border: #f5d78e;
  --child: #7c3aed; --child-bg: #f5f0ff; --child-border: #d9c8fb;
  --code-bg: #161b26; --code-text: #e6e9f2; --out-bg: #f3f4f7;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", "DejaVu Sans Mono", monospace;
  --sans: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", Arial, sans-serif;
  color-scheme: light;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1117; --panel: #171a22; --border: #272b36; --border-strong: #363b49;
    --text: #e5e7ee; --muted: #9097a7; --accent: #8b85ff; --accent-soft: #22233a;
    --ok: #4ade80; --ok-bg: #0f2a1b; --ok-border: #1f5c39;
    --err: #ff8a7a; --err-bg: #2d1513; --err-border: #6b2a22;
    --warn: #fbbf24; --warn-bg: #2b2210; --warn-border: #6b5314;
    --child: #b794ff; --child-bg: #1f1933; --child-border: #443370;
    --code-bg: #0b0d12; --code-text: #e6e9f2; --out-bg: #1d212b;
    color-scheme: dark;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 14px/1.5 var(--sans); }
button { font: inherit; color: inherit; }
.mono { font-family: var(--mono); }
.muted { color: var(--muted); }
.error-text { color: var(--err); }
.warn-text { color: var(--warn); }
.spacer { flex: 1; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }

/* top bar and layout */
.topbar { height: 48px; display: flex; align-items: center; gap: 10px; padding: 0 16px; background: var(--panel); border-bottom: 1px solid var(--border); position: sticky; top: 0; z-index: 2; }
.brand { font-weight: 700; font-size: 16px; letter-spacing: -0.01em; }
.brand-sub { color: var(--muted); }
.directory { color: var(--muted); font-size: 12px; background: var(--bg); border: 1px solid var(--border); border-radius: 6px; padding: 2px 8px; max-width: 50vw; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.topbar button, .toolbar button { background: var(--panel); border: 1px solid var(--border-strong); border-radius: 6px; padding: 3px 10px; cursor: pointer; font-size: 13px; }
.topbar button:hover, .toolbar button:hover { background: var(--bg); }
.layout { display: grid; grid-template-columns: 330px minmax(0, 1fr); align-items: start; }
.sidebar { position: sticky; top: 48px; height: calc(100vh - 48px); border-right: 1px solid var(--border); background: var(--panel); display: flex; flex-direction: column; min-height: 0; }
.sidebar-head { padding: 12px; border-bottom: 1px solid var(--border); }
#filter { width: 100%; padding: 6px 10px; border: 1px solid var(--border-strong); border-radius: 6px; background: var(--bg); color: var(--text); font: inherit; }
.run-count { font-size: 12px; margin-top: 6px; }
.run-list { list-style: none; margin: 0; padding: 6px; overflow-y: auto; flex: 1; }
.list-empty { padding: 12px; }
.run-item { display: block; width: 100%; text-align: left; background: none; border: 1px solid transparent; border-radius: 8px; padding: 8px 10px; margin-bottom: 2px; cursor: pointer; }
.run-item:hover { background: var(--bg); }
.run-item.selected { background: var(--accent-soft); border-color: var(--accent); }
.run-line1 { display: flex; align-items: flex-start; gap: 8px; justify-content: space-between; }
.run-query { font-weight: 600; overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; word-break: break-word; }
.run-line2, .run-line3 { font-size: 12px; display: flex; flex-wrap: wrap; gap: 4px 10px; margin-top: 2px; }
.run-file { font-size: 11px; margin-top: 2px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
main { padding: 24px 32px 64px; min-width: 0; }
main:focus { outline: none; }
.placeholder { max-width: 640px; margin: 15vh auto; text-align: center; color: var(--muted); }
.placeholder h1 { color: var(--text); font-size: 20px; }
.placeholder.error h1 { color: var(--err); }

/* run header */
.run-head { max-width: 1100px; }
.run-title { font-size: 20px; line-height: 1.35; margin: 0 0 10px; word-break: break-word; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 20px; margin: 0 0 16px; font-size: 13px; }
.facts div { display: flex; gap: 6px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; font-weight: 500; }
.final-card, .error-card, .warn-card { border: 1px solid; border-radius: 10px; padding: 10px 14px; margin: 12px 0; }
.final-card { background: var(--ok-bg); border-color: var(--ok-border); }
.final-card > .section-label { color: var(--ok); }
.error-card { background: var(--err-bg); border-color: var(--err-border); }
.error-card > .section-label { color: var(--err); }
.warn-card { background: var(--warn-bg); border-color: var(--warn-border); }
.warn-card > .section-label { color: var(--warn); }
.final-card.small, .error-card.small { margin: 8px 0 0; padding: 8px 12px; }
.error-note { color: var(--err); font-size: 13px; margin: 8px 0; }
.problems { margin: 4px 0 0; padding-left: 18px; font-size: 13px; }
.usage-section { margin-top: 16px; }
table.usage { border-collapse: collapse; font-size: 13px; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; overflow: hidden; min-width: 520px; }
table.usage th, table.usage td { padding: 6px 12px; border-bottom: 1px solid var(--border); text-align: left; }
table.usage th { background: var(--bg); font-weight: 600; color: var(--muted); font-size: 12px; }
table.usage .num { text-align: right; font-variant-numeric: tabular-nums; }
table.usage tfoot td { font-weight: 600; border-bottom: 0; }
.usage-note { font-size: 12px; margin: 6px 0 0; max-width: 640px; }
.model { font-family: var(--mono); font-size: 12px; }
.toolbar { display: flex; align-items: center; gap: 8px; margin: 28px 0 10px; max-width: 1100px; }
.toolbar h2 { font-size: 16px; margin: 0; }

/* badges */
.badge { display: inline-block; font-size: 11px; font-weight: 600; line-height: 18px; padding: 0 7px; border-radius: 9px; border: 1px solid var(--border-strong); color: var(--muted); background: var(--panel); white-space: nowrap; }
.badge-ok { color: var(--ok); background: var(--ok-bg); border-color: var(--ok-border); }
.badge-error { color: var(--err); background: var(--err-bg); border-color: var(--err-border); }
.badge-warn { color: var(--warn); background: var(--warn-bg); border-color: var(--warn-border); }
.badge-call { color: var(--accent); background: var(--accent-soft); border-color: var(--accent); }
.badge-child { color: var(--child); background: var(--child-bg); border-color: var(--child-border); }
.badges { display: inline-flex; align-items: center; gap: 6px; margin-left: auto; flex-shrink: 0; }
.time, .tokens { font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; white-space: nowrap; }

/* timeline */
.timeline { list-style: none; margin: 0; padding: 0 0 0 18px; max-width: 1100px; position: relative; }
.timeline::before { content: ""; position: absolute; left: 6px; top: 8px; bottom: 8px; width: 2px; background: var(--border); }
.timeline > li { position: relative; margin-bottom: 8px; }
.timeline > li::before { content: ""; position: absolute; left: -17px; top: 15px; width: 8px; height: 8px; border-radius: 50%; background: var(--panel); border: 2px solid var(--border-strong); }
.timeline > li:has(> details.has-error)::before { border-color: var(--err); background: var(--err-bg); }
.timeline > li:has(> details.is-final)::before { border-color: var(--ok); background: var(--ok); }
.completion-divider { font-size: 13px; padding: 6px 0; display: flex; gap: 10px; }
.completion-divider .label { font-weight: 600; }
details > summary { scroll-margin-top: 60px; list-style: none; cursor: pointer; display: flex; align-items: center; gap: 10px; min-width: 0; }
details > summary::-webkit-details-marker { display: none; }
details > summary::before { content: "▸"; color: var(--muted); font-size: 12px; width: 10px; flex-shrink: 0; transition: transform 0.1s; }
details[open] > summary::before { transform: rotate(90deg); }
details.turn { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; }
details.turn > summary { padding: 8px 12px; border-radius: 10px; }
details.turn > summary:hover { background: var(--bg); }
details.turn.has-error { border-color: var(--err-border); }
details.turn.is-final { border-color: var(--ok-border); }
.turn-no { font-weight: 650; white-space: nowrap; }
.turn-preview, .call-preview { color: var(--muted); overflow: hidden; text-overflow: ellipsis; white-space: nowrap; min-width: 0; flex: 1; }
.details-body { padding: 4px 14px 14px 14px; }
details.turn > .details-body { border-top: 1px solid var(--border); padding-top: 10px; }
details.prompt { margin: 4px 0 10px; }
details.prompt > summary { font-size: 13px; padding: 2px 0; }
details.prompt > .details-body { padding: 6px 0 0 14px; }
.message { margin-bottom: 8px; }
.message .role { font-size: 11px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); font-weight: 600; margin-bottom: 2px; }
.section { margin: 8px 0; }
.section-label { font-size: 12px; font-weight: 650; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); margin-bottom: 4px; }
.block { border: 1px solid var(--border); border-radius: 8px; padding: 10px 12px; margin: 10px 0; background: var(--panel); }
.block.has-error { border-color: var(--err-border); box-shadow: inset 3px 0 0 var(--err); }
.block-head { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; }
.block-head .section-label { margin: 0; }
.block-head .time { margin-left: auto; }
.outputs { margin-top: 8px; }
.output-label { font-size: 11px; font-family: var(--mono); color: var(--muted); margin: 6px 0 2px; }
.locals { display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px; margin-top: 8px; }
.locals .output-label { margin: 0 4px 0 0; }
.chip { font-size: 12px; border: 1px solid var(--border); border-radius: 6px; padding: 0 6px; background: var(--bg); max-width: 280px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.chip-name { font-family: var(--mono); }
.calls { margin-top: 10px; }
details.call { border: 1px solid var(--border); border-radius: 8px; margin: 6px 0; background: var(--panel); }
details.call > summary { padding: 6px 10px; font-size: 13px; }
details.call > summary:hover { background: var(--bg); border-radius: 8px; }
details.call.has-error { border-color: var(--err-border); box-shadow: inset 3px 0 0 var(--err); }
details.call.has-child { border-color: var(--child-border); }
details.call > .details-body { border-top: 1px solid var(--border); padding-top: 8px; }
.child-run { margin-top: 12px; padding: 10px 12px 12px; border: 1px dashed var(--child-border); border-radius: 10px; background: var(--child-bg); }
.child-head { display: flex; align-items: center; gap: 10px; margin-bottom: 8px; flex-wrap: wrap; }
.child-head .section-label { margin: 0; color: var(--child); }
.timeline-child { padding-left: 18px; }

/* text blocks */
.text pre { margin: 0; padding: 8px 10px; border-radius: 6px; font: 12.5px/1.5 var(--mono); white-space: pre-wrap; word-break: break-word; overflow-wrap: anywhere; max-height: 480px; overflow: auto; }
.text.prose pre { background: var(--out-bg); font-family: var(--mono); }
.text.code pre { background: var(--code-bg); color: var(--code-text); }
.text.stdout pre { background: var(--out-bg); }
.text.stderr pre { background: var(--warn-bg); color: var(--warn); }
.text.stderr.failed pre { background: var(--err-bg); color: var(--err); }
.final-card .text pre, .error-card .text pre { background: var(--panel); }
.text pre.truncated { -webkit-mask-image: linear-gradient(to bottom, black calc(100% - 28px), transparent); mask-image: linear-gradient(to bottom, black calc(100% - 28px), transparent); }
.text-empty { font-size: 12px; padding: 2px 0; }
.show-all { margin-top: 4px; background: none; border: 0; color: var(--accent); cursor: pointer; padding: 2px 0; font-size: 12px; }
.show-all:hover { text-decoration: underline; }

/* help */
.help { position: fixed; right: 20px; top: 60px; background: var(--panel); border: 1px solid var(--border-strong); border-radius: 10px; padding: 12px 18px; box-shadow: 0 10px 30px rgba(0,0,0,0.15); z-index: 3; }
.help h2 { font-size: 14px; margin: 0 0 8px; }
.help dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 14px; margin: 0; font-size: 13px; }
.help dt { font-family: var(--mono); font-weight: 600; }
.help dd { margin: 0; color: var(--muted); }
@media (max-width: 800px) {
  .layout { grid-template-columns: minmax(0, 1fr); }
  .sidebar { position: static; height: auto; max-height: 40vh; border-right: 0; border-bottom: 1px solid var(--border); }
  main { padding: 16px; }
}
`;
