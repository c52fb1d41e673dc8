/**
 * The viewer page's script, served as /viewer.js. Plain browser JavaScript in a string so that the
 * package ships it without a bundler step; `viewer-assets.test.ts` compiles it.
 *
 * Trajectories hold untrusted model output: every piece of their text reaches the page through
 * `textContent` / text nodes, never `innerHTML`, and no attribute that the browser would load or
 * run (href, src, on…) is ever set from trajectory data. The server's CSP forbids inline script
 * as a second line of defence.
 *
 * Large runs stay fast: a turn's and a sub-call's body are built when first opened, and a text
 * longer than a few thousand characters shows its start with a "show all" toggle.
 */
export const VIEWER_SCRIPT = String.raw`'use strict';
(function () {
  var TEXT_LIMIT_CHARS = 4000;
  var TEXT_LIMIT_LINES = 80;

  var state = { runs: [], directory: '', current: null, currentRun: null, filter: '' };

  // ------------------------------------------------------------------ DOM helpers (text only)

  function h(tag, props, children) {
    var el = document.createElement(tag);
    if (props) {
      for (var key in props) {
        var value = props[key];
        if (value === null || value === undefined || value === false) continue;
        if (key === 'class') el.className = value;
        else if (key === 'text') el.textContent = String(value);
        else if (key.slice(0, 2) === 'on') el.addEventListener(key.slice(2), value);
        else el.setAttribute(key, value === true ? '' : String(value));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    if (children === null || children === undefined) return;
    if (!Array.isArray(children)) children = [children];
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (child === null || child === undefined || child === false) continue;
      el.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  // ------------------------------------------------------------------ formatting

  function plural(n, one, many) {
    return n + ' ' + (n === 1 ? one : many || one + 's');
  }

  function fmtInt(n) {
    return Number(n || 0).toLocaleString('en-US');
  }

  function fmtTokens(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + 'M';
    if (n >= 1e4) return (n / 1e3).toFixed(0) + 'k';
    if (n >= 1e3) return (n / 1e3).toFixed(1) + 'k';
    return String(n);
  }

  function fmtCost(usd) {
    if (usd === null || usd === undefined) return '—';
    if (usd === 0) return '$0';
    if (usd < 0.0001) return '<$0.0001';
    if (usd < 1) return '$' + usd.toFixed(4);
    return '$' + usd.toFixed(2);
  }

  function fmtSeconds(s) {
    if (s === null || s === undefined) return '';
    if (s < 1) return Math.round(s * 1000) + ' ms';
    if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
    var m = Math.floor(s / 60);
    return m + 'm ' + String(Math.round(s - m * 60)).padStart(2, '0') + 's';
  }

  function fmtBytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
    return (n / 1024 / 1024).toFixed(1) + ' MB';
  }

  function fmtTime(iso) {
    if (!iso) return '';
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
  }

  function firstLine(text, max) {
    var t = String(text || '').replace(/\s+/g, ' ').trim();
    return t.length > max ? t.slice(0, max - 1) + '…' : t;
  }

  /** The prose before the first code fence, else the start of the response. */
  function responsePreview(response) {
    var fence = response.indexOf(String.fromCharCode(96, 96, 96));
    var prose = fence > 0 ? firstLine(response.slice(0, fence), 140) : '';
    return prose || firstLine(response, 140) || '(empty response)';
  }

  function isFailedCell(block) {
    return block.status === 'error' || block.status === 'timeout' || (block.status === null && block.stderr.trim() !== '');
  }

  function badge(text, kind, title) {
    return h('span', { class: 'badge' + (kind ? ' badge-' + kind : ''), title: title || null, text: text });
  }

  // ------------------------------------------------------------------ long text, truncated

  /** A <pre> that shows the start of a long text, with a toggle to show all of it. */
  function textBlock(text, kind, emptyText) {
    text = String(text || '');
    var wrap = h('div', { class: 'text ' + (kind || '') });
    if (text === '') {
      wrap.classList.add('text-empty');
      wrap.appendChild(h('span', { class: 'muted', text: emptyText || '(empty)' }));
      return wrap;
    }
    var cut = text.length;
    if (cut > TEXT_LIMIT_CHARS) cut = TEXT_LIMIT_CHARS;
    var lines = 0;
    for (var i = 0; i < cut; i++) {
      if (text.charCodeAt(i) === 10 && ++lines >= TEXT_LIMIT_LINES) { cut = i; break; }
    }
    var pre = h('pre', null, text.slice(0, cut));
    wrap.appendChild(pre);
    if (cut < text.length) {
      var rest = text.length - cut;
      var expanded = false;
      var button = h('button', { type: 'button', class: 'show-all' });
      var label = function () {
        button.textContent = expanded ? 'Show less' : 'Show all (' + fmtInt(rest) + ' more characters, ' + fmtBytes(new Blob([text]).size) + ' in all)';
      };
      label();
      pre.classList.add('truncated');
      button.addEventListener('click', function () {
        expanded = !expanded;
        pre.textContent = expanded ? text : text.slice(0, cut);
        pre.classList.toggle('truncated', !expanded);
        label();
      });
      wrap.appendChild(button);
    }
    return wrap;
  }

  /** A <details> whose body is built the first time it opens. */
  function lazyDetails(cls, summaryChildren, build, open) {
    var details = h('details', { class: cls });
    var summary = h('summary', null, summaryChildren);
    details.appendChild(summary);
    var built = false;
    var ensure = function () {
      if (built) return;
      built = true;
      var body = h('div', { class: 'details-body' });
      append(body, build());
      details.appendChild(body);
    };
    details.addEventListener('toggle', function () { if (details.open) ensure(); });
    if (open) { ensure(); details.open = true; }
    return details;
  }

  // ------------------------------------------------------------------ usage

  function usageTable(usage, root) {
    var models = Object.keys(usage);
    var table = h('table', { class: 'usage' });
    table.appendChild(h('thead', null, h('tr', null, [
      h('th', { text: 'Model' }), h('th', { class: 'num', text: 'Calls' }), h('th', { class: 'num', text: 'Input tokens' }),
      h('th', { class: 'num', text: 'Output tokens' }), h('th', { class: 'num', text: 'Cost' }),
    ])));
    var body = h('tbody');
    var calls = 0, input = 0, output = 0, cost = 0, costKnown = true;
    models.forEach(function (model) {
      var u = usage[model];
      calls += u.calls; input += u.inputTokens; output += u.outputTokens;
      if (u.costUsd === null) costKnown = false; else cost += u.costUsd;
      body.appendChild(h('tr', null, [
        h('td', null, h('span', { class: 'model', text: model })),
        h('td', { class: 'num', text: fmtInt(u.calls) }),
        h('td', { class: 'num', text: fmtInt(u.inputTokens) }),
        h('td', { class: 'num', text: fmtInt(u.outputTokens) }),
        h('td', { class: 'num', text: fmtCost(u.costUsd), title: u.costUsd === null ? 'no known price for this model' : null }),
      ]));
    });
    table.appendChild(body);
    if (models.length > 1) {
      table.appendChild(h('tfoot', null, h('tr', null, [
        h('td', { text: 'Total' }), h('td', { class: 'num', text: fmtInt(calls) }), h('td', { class: 'num', text: fmtInt(input) }),
        h('td', { class: 'num', text: fmtInt(output) }), h('td', { class: 'num', text: costKnown ? fmtCost(cost) : '—' }),
      ])));
    }
    var note = root && !root.recorded && root.turns > 0
      ? h('p', { class: 'usage-note muted', text: "Not included: the root model's own " + plural(root.turns, 'call') + ' (' + (root.model ? root.model + ', ' : '') + 'one per turn); trajectories record usage for sub-calls and child runs only.' })
      : null;
    if (models.length === 0) return h('div', null, [h('p', { class: 'muted', text: 'No usage recorded.' }), note]);
    return h('div', null, [table, note]);
  }

  function callTokens(call) {
    var input = 0, output = 0;
    for (var model in call.usage) { input += call.usage[model].inputTokens; output += call.usage[model].outputTokens; }
    return { input: input, output: output };
  }

  // ------------------------------------------------------------------ a run's timeline

  function countCalls(turn) {
    var n = 0;
    turn.blocks.forEach(function (b) { n += b.calls.length; });
    return n;
  }

  function turnErrors(turn) {
    var n = 0;
    turn.blocks.forEach(function (b) {
      if (isFailedCell(b)) n++;
      b.calls.forEach(function (c) { if (c.error !== null) n++; if (c.child) n += c.child.errorCount; });
    });
    return n;
  }

  function timeline(run, depth) {
    var list = h('ol', { class: 'timeline' + (depth > 0 ? ' timeline-child' : '') });
    var contextIndex = 0;
    run.turns.forEach(function (turn, index) {
      while (contextIndex < run.contexts.length && run.contexts[contextIndex].firstTurn === index + 1) {
        if (run.contexts.length > 1) {
          var ctx = run.contexts[contextIndex];
          list.appendChild(h('li', { class: 'completion-divider' }, [
            h('span', { class: 'label', text: 'Completion ' + (contextIndex + 1) }),
            ctx.query ? h('span', { class: 'query', text: firstLine(ctx.query, 160) }) : null,
          ]));
        }
        contextIndex++;
      }
      list.appendChild(h('li', null, turnItem(turn, depth)));
    });
    if (run.turns.length === 0) list.appendChild(h('li', { class: 'muted empty-turns', text: 'No turns recorded.' }));
    return list;
  }

  function turnItem(turn, depth) {
    var errors = turnErrors(turn);
    var calls = countCalls(turn);
    var summary = [
      h('span', { class: 'turn-no', text: 'Turn ' + turn.iteration }),
      h('span', { class: 'turn-preview', text: responsePreview(turn.response) }),
      h('span', { class: 'badges' }, [
        turn.blocks.length ? badge(plural(turn.blocks.length, 'block'), 'muted') : null,
        calls ? badge(plural(calls, 'sub-call'), 'call') : null,
        errors ? badge(plural(errors, 'error'), 'error') : null,
        turn.finalAnswer !== null ? badge('final', 'ok') : null,
        turn.iterationTime !== null ? h('span', { class: 'time', text: fmtSeconds(turn.iterationTime) }) : null,
      ]),
    ];
    var details = lazyDetails('turn' + (errors ? ' has-error' : '') + (turn.finalAnswer !== null ? ' is-final' : ''), summary, function () {
      return turnBody(turn, depth);
    });
    details.setAttribute('data-turn', String(turn.iteration));
    details.setAttribute('data-depth', String(depth));
    return details;
  }

  function turnBody(turn, depth) {
    var parts = [];
    if (turn.prompt.length) {
      parts.push(lazyDetails('prompt', [h('span', { class: 'section-label', text: 'Prompt' }), ' ', h('span', { class: 'muted', text: plural(turn.prompt.length, 'message') + ' sent to the model' })], function () {
        return turn.prompt.map(function (m) {
          return h('div', { class: 'message role-' + m.role.replace(/[^a-z]/gi, '') }, [h('div', { class: 'role', text: m.role }), textBlock(m.content, 'prose')]);
        });
      }));
    }
    parts.push(h('div', { class: 'section' }, [h('div', { class: 'section-label', text: 'Response' }), textBlock(turn.response, 'prose response', '(empty response)')]));
    turn.blocks.forEach(function (block, i) { parts.push(blockView(block, i, turn.blocks.length, depth)); });
    if (turn.finalAnswer !== null) {
      parts.push(h('div', { class: 'final-card' }, [h('div', { class: 'section-label', text: 'Final answer' }), textBlock(turn.finalAnswer, 'prose')]));
    }
    return parts;
  }

  function blockView(block, index, count, depth) {
    var failed = isFailedCell(block);
    var status = block.status === 'timeout' ? badge('timed out', 'error') : block.status === 'error' ? badge('error', 'error') : failed ? badge('stderr', 'error') : block.status === 'ok' ? badge('ok', 'ok') : null;
    var el = h('div', { class: 'block' + (failed ? ' has-error' : '') }, [
      h('div', { class: 'block-head' }, [
        h('span', { class: 'section-label', text: 'Code block ' + (index + 1) + (count > 1 ? ' of ' + count : '') }),
        status,
        block.stateLost ? badge('REPL restarted: variables lost', 'warn') : null,
        block.executionTime !== null ? h('span', { class: 'time', text: fmtSeconds(block.executionTime) }) : null,
      ]),
      textBlock(block.code, 'code', '(no code)'),
    ]);
    var out = h('div', { class: 'outputs' });
    out.appendChild(h('div', { class: 'output-label', text: 'stdout' }));
    out.appendChild(textBlock(block.stdout, 'stdout', '(no output)'));
    if (block.stderr !== '') {
      out.appendChild(h('div', { class: 'output-label' + (failed ? ' error-text' : ''), text: 'stderr' }));
      out.appendChild(textBlock(block.stderr, 'stderr' + (failed ? ' failed' : '')));
    }
    if (block.value !== null && block.value !== '') {
      out.appendChild(h('div', { class: 'output-label', text: 'value' }));
      out.appendChild(textBlock(block.value, 'stdout'));
    }
    el.appendChild(out);
    var names = Object.keys(block.locals);
    if (names.length) {
      el.appendChild(h('div', { class: 'locals' }, [h('span', { class: 'output-label', text: 'variables' })].concat(names.slice(0, 60).map(function (name) {
        return h('span', { class: 'chip', title: block.locals[name] }, [h('span', { class: 'chip-name', text: name }), ' ', h('span', { class: 'muted', text: firstLine(block.locals[name], 40) })]);
      })).concat(names.length > 60 ? [h('span', { class: 'muted', text: '+' + (names.length - 60) + ' more' })] : [])));
    }
    if (block.calls.length) {
      var calls = h('div', { class: 'calls' }, h('div', { class: 'section-label', text: plural(block.calls.length, 'sub-call') }));
      block.calls.forEach(function (call, i) { calls.appendChild(callView(call, i, depth)); });
      el.appendChild(calls);
    }
    return el;
  }

  function callView(call, index, depth) {
    var tokens = callTokens(call);
    var kind = call.kind || (call.child ? 'rlm_query' : 'sub-call');
    var childErrors = call.child ? call.child.errorCount : 0;
    var summary = [
      badge(kind, call.child ? 'child' : 'call'),
      h('span', { class: 'model', text: call.model }),
      h('span', { class: 'call-preview', text: firstLine(call.prompt, 110) }),
      h('span', { class: 'badges' }, [
        call.error !== null ? badge('failed', 'error') : null,
        call.child ? badge('child run · ' + plural(call.child.turns.length, 'turn'), 'child') : null,
        childErrors ? badge(plural(childErrors, 'error') + ' inside', 'error') : null,
        tokens.input + tokens.output > 0 ? h('span', { class: 'tokens', title: 'input / output tokens', text: fmtTokens(tokens.input) + ' / ' + fmtTokens(tokens.output) + ' tok' }) : null,
        call.executionTime !== null ? h('span', { class: 'time', text: fmtSeconds(call.executionTime) }) : null,
      ]),
    ];
    var details = lazyDetails('call' + (call.error !== null ? ' has-error' : '') + (call.child ? ' has-child' : ''), summary, function () {
      var parts = [
        h('div', { class: 'section' }, [h('div', { class: 'section-label', text: 'Prompt' }), textBlock(call.prompt, 'prose')]),
      ];
      if (call.error !== null) parts.push(h('div', { class: 'error-card' }, [h('div', { class: 'section-label', text: 'Error' }), textBlock(call.error, 'prose')]));
      parts.push(h('div', { class: 'section' }, [h('div', { class: 'section-label', text: 'Response' }), textBlock(call.response, 'prose response', call.error !== null ? '(no response)' : '(empty response)')]));
      parts.push(h('div', { class: 'section' }, [h('div', { class: 'section-label', text: call.child ? 'Usage of the child run' : 'Usage' }), usageTable(call.usage, null)]));
      if (call.child) parts.push(childRunView(call.child, depth + 1));
      return parts;
    });
    details.setAttribute('data-call', String(index + 1));
    return details;
  }

  function childRunView(run, depth) {
    var meta = run.metadata || {};
    return h('section', { class: 'child-run' }, [
      h('div', { class: 'child-head' }, [
        h('span', { class: 'section-label', text: 'Child run' }),
        meta.depth !== null && meta.depth !== undefined ? badge('depth ' + meta.depth, 'child') : badge('depth ' + depth, 'child'),
        meta.rootModel ? h('span', { class: 'model', text: meta.rootModel }) : null,
        h('span', { class: 'muted', text: plural(run.turns.length, 'turn') }),
        meta.runId ? h('span', { class: 'muted mono', text: meta.runId }) : null,
      ]),
      run.problems.length ? problemsCard(run.problems) : null,
      timeline(run, depth),
      run.finalAnswer !== null
        ? h('div', { class: 'final-card small' }, [h('div', { class: 'section-label', text: 'Child answer' }), textBlock(run.finalAnswer, 'prose')])
        : h('div', { class: 'error-card small' }, h('div', { class: 'section-label', text: 'The child run has no final answer' })),
    ]);
  }

  function problemsCard(problems) {
    return h('div', { class: 'warn-card' }, [
      h('div', { class: 'section-label', text: plural(problems.length, 'line') + ' could not be read' }),
      h('ul', { class: 'problems' }, problems.slice(0, 50).map(function (p) {
        return h('li', null, [h('span', { class: 'mono', text: p.where }), ': ', h('span', { text: p.message })]);
      })),
      problems.length > 50 ? h('div', { class: 'muted', text: '+' + (problems.length - 50) + ' more' }) : null,
    ]);
  }

  // ------------------------------------------------------------------ the run page

  function renderRun(file, run) {
    var main = document.getElementById('main');
    clear(main);
    var meta = run.metadata || {};
    var totalTime = 0;
    run.turns.forEach(function (t) { totalTime += t.iterationTime || 0; });
    var facts = [
      ['file', file],
      ['started', fmtTime(meta.timestamp || (run.turns[0] && run.turns[0].timestamp))],
      ['root model', meta.rootModel],
      ['backend', meta.backend],
      ['environment', meta.environmentType],
      ['max depth', meta.maxDepth],
      ['max iterations', meta.maxIterations],
      ['turns', String(run.turns.length)],
      ['time', totalTime ? fmtSeconds(totalTime) : null],
      ['cost', run.costUsd !== null && Object.keys(run.usage).length ? fmtCost(run.costUsd) + (run.rootUsageRecorded ? '' : ' (sub-calls)') : null],
    ].filter(function (f) { return f[1] !== null && f[1] !== undefined && f[1] !== ''; });
    var head = h('section', { class: 'run-head' }, [
      h('h1', { class: 'run-title', text: run.query ? firstLine(run.query, 300) : file }),
      h('dl', { class: 'facts' }, facts.map(function (f) { return h('div', null, [h('dt', { text: f[0] }), h('dd', { text: String(f[1]) })]); })),
    ]);
    if (run.query && run.query.length > 300) head.appendChild(textBlock(run.query, 'prose'));
    if (run.finalAnswer !== null) {
      head.appendChild(h('div', { class: 'final-card', id: 'final-answer' }, [h('div', { class: 'section-label', text: 'Final answer' }), textBlock(run.finalAnswer, 'prose')]));
    } else {
      head.appendChild(h('div', { class: 'error-card', id: 'final-answer' }, [
        h('div', { class: 'section-label', text: 'No final answer' }),
        h('div', { class: 'muted', text: 'The run ended without FINAL (it failed, hit a limit, was interrupted, or is still running).' }),
      ]));
    }
    if (run.problems.length) head.appendChild(problemsCard(run.problems));
    if (run.errorCount) head.appendChild(h('div', { class: 'error-note', text: plural(run.errorCount, 'error') + ' in this run (failed cells, timeouts, failed sub-calls), marked in red below.' }));
    head.appendChild(h('div', { class: 'section usage-section' }, [
      h('div', { class: 'section-label', text: 'Usage per model' }),
      usageTable(run.usage, { model: meta.rootModel, turns: run.turns.length, recorded: run.rootUsageRecorded }),
    ]));
    main.appendChild(head);
    main.appendChild(h('div', { class: 'toolbar' }, [
      h('h2', { text: 'Timeline' }),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', onclick: function () { setAllTurns(true); }, text: 'Expand all' }),
      h('button', { type: 'button', onclick: function () { setAllTurns(false); }, text: 'Collapse all' }),
    ]));
    main.appendChild(timeline(run, 0));
    window.scrollTo(0, 0);
  }

  function setAllTurns(open) {
    var turns = document.querySelectorAll('#main .timeline > li > details.turn[data-depth="0"]');
    for (var i = 0; i < turns.length; i++) {
      turns[i].open = open;
    }
  }

  function renderMessage(title, message, kind) {
    var main = document.getElementById('main');
    clear(main);
    main.appendChild(h('div', { class: 'placeholder ' + (kind || '') }, [h('h1', { text: title }), message ? h('p', { text: message }) : null]));
  }

  // ------------------------------------------------------------------ the run list

  function renderList() {
    var list = document.getElementById('run-list');
    clear(list);
    var filter = state.filter.toLowerCase();
    var shown = state.runs.filter(function (r) {
      if (!filter) return true;
      return [r.file, r.rootModel, r.query, r.finalAnswer].some(function (s) { return s && s.toLowerCase().indexOf(filter) !== -1; });
    });
    document.getElementById('run-count').textContent = shown.length === state.runs.length ? plural(state.runs.length, 'run') : shown.length + ' of ' + state.runs.length + ' runs';
    if (state.runs.length === 0) {
      list.appendChild(h('li', { class: 'muted list-empty', text: 'No .jsonl trajectories in this directory.' }));
      return;
    }
    shown.forEach(function (run) {
      var status = run.error ? badge('unreadable', 'error') : run.finalAnswer !== null ? badge('answered', 'ok') : badge('no answer', 'error');
      var button = h('button', {
        type: 'button',
        class: 'run-item' + (state.current === run.file ? ' selected' : ''),
        'data-file': run.file,
        'aria-current': state.current === run.file ? 'true' : null,
        onclick: function () { openRun(run.file); },
      }, [
        h('div', { class: 'run-line1' }, [h('span', { class: 'run-query', text: run.query ? firstLine(run.query, 90) : run.file }), status]),
        h('div', { class: 'run-line2 muted' }, [
          h('span', { text: fmtTime(run.started || run.modified) }),
          run.rootModel ? h('span', { class: 'model', text: run.rootModel }) : null,
        ]),
        h('div', { class: 'run-line3 muted' }, [
          h('span', { text: plural(run.iterations, 'turn') }),
          run.totalTokens ? h('span', { text: fmtTokens(run.totalTokens) + ' tok' }) : null,
          run.costUsd !== null && run.totalTokens ? h('span', { text: fmtCost(run.costUsd) }) : null,
          run.errorCount ? h('span', { class: 'error-text', text: plural(run.errorCount, 'error') }) : null,
          run.problemCount ? h('span', { class: 'warn-text', text: plural(run.problemCount, 'bad line') }) : null,
        ]),
        run.query ? h('div', { class: 'run-file mono muted', text: run.file }) : null,
      ]);
      list.appendChild(h('li', null, button));
    });
  }

  function runButtons() {
    return Array.prototype.slice.call(document.querySelectorAll('#run-list .run-item'));
  }

  // ------------------------------------------------------------------ data

  function getJson(url) {
    return fetch(url, { headers: { accept: 'application/json' } }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + response.status);
        return body;
      });
    });
  }

  function loadList() {
    return getJson('/api/runs').then(function (body) {
      state.runs = body.runs;
      state.directory = body.directory;
      document.getElementById('directory').textContent = body.directory;
      renderList();
      return body;
    });
  }

  function openRun(file, options) {
    state.current = file;
    if (!options || !options.keepHash) history.replaceState(null, '', '#run=' + encodeURIComponent(file));
    renderList();
    renderMessage('Loading…', file);
    return getJson('/api/run?file=' + encodeURIComponent(file)).then(function (body) {
      if (state.current !== file) return;
      state.currentRun = body.run;
      document.title = (body.run.query ? firstLine(body.run.query, 60) : file) + ' · rlm view';
      renderRun(file, body.run);
      document.getElementById('main').focus({ preventScroll: true });
    }, function (error) {
      if (state.current !== file) return;
      renderMessage('Cannot open ' + file, error.message, 'error');
    });
  }

  function fileFromHash() {
    var match = /^#run=(.+)$/.exec(location.hash);
    if (!match) return null;
    try { return decodeURIComponent(match[1]); } catch (e) { return null; }
  }

  function reload() {
    return loadList().then(function () { if (state.current) openRun(state.current, { keepHash: true }); });
  }

  // ------------------------------------------------------------------ keyboard

  function focusTurn(step) {
    var turns = Array.prototype.slice.call(document.querySelectorAll('#main details.turn[data-depth="0"] > summary'));
    if (!turns.length) return;
    var index = turns.indexOf(document.activeElement);
    index = index === -1 ? (step > 0 ? 0 : turns.length - 1) : Math.min(turns.length - 1, Math.max(0, index + step));
    turns[index].focus();
    turns[index].scrollIntoView({ block: 'nearest' });
  }

  function moveRun(step) {
    var buttons = runButtons();
    if (!buttons.length) return;
    var index = buttons.indexOf(document.activeElement);
    if (index === -1) index = buttons.findIndex(function (b) { return b.getAttribute('data-file') === state.current; });
    index = index === -1 ? 0 : Math.min(buttons.length - 1, Math.max(0, index + step));
    buttons[index].focus();
    return buttons[index];
  }

  function toggleHelp(force) {
    var help = document.getElementById('help');
    help.hidden = force === undefined ? !help.hidden : !force;
  }

  document.addEventListener('keydown', function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA');
    if (typing) {
      if (event.key === 'Escape') target.blur();
      if (event.key === 'ArrowDown' && target.id === 'filter') { event.preventDefault(); moveRun(1); }
      return;
    }
    var inList = target && target.classList && target.classList.contains('run-item');
    switch (event.key) {
      case '/': event.preventDefault(); document.getElementById('filter').focus(); break;
      case '?': toggleHelp(); break;
      case 'Escape': toggleHelp(false); break;
      case 'j': focusTurn(1); break;
      case 'k': focusTurn(-1); break;
      case 'e': setAllTurns(true); break;
      case 'c': setAllTurns(false); break;
      case 'r': reload(); break;
      case ']': { var next = moveRun(1); if (next) openRun(next.getAttribute('data-file')); break; }
      case '[': { var prev = moveRun(-1); if (prev) openRun(prev.getAttribute('data-file')); break; }
      case 'ArrowDown': if (inList) { event.preventDefault(); moveRun(1); } break;
      case 'ArrowUp': if (inList) { event.preventDefault(); moveRun(-1); } break;
      default: break;
    }
  });

  // ------------------------------------------------------------------ start

  document.getElementById('filter').addEventListener('input', function (event) {
    state.filter = event.target.value;
    renderList();
  });
  document.getElementById('reload').addEventListener('click', function () { reload(); });
  document.getElementById('help-button').addEventListener('click', function () { toggleHelp(); });
  window.addEventListener('hashchange', function () {
    var file = fileFromHash();
    if (file && file !== state.current) openRun(file, { keepHash: true });
  });

  loadList().then(function (body) {
    var file = fileFromHash() || body.initial;
    if (file) openRun(file, { keepHash: !!fileFromHash() });
    else if (body.runs.length === 0) renderMessage('No runs yet', 'No .jsonl trajectories in ' + body.directory + '. Runs write them there when given a log directory (rlm --log-dir, or logDir in code).');
    else renderMessage('Select a run', 'Pick a run on the left (or press ] to open the first one).');
  }, function (error) {
    renderMessage('Cannot list the runs', error.message, 'error');
  });
})();
`;
