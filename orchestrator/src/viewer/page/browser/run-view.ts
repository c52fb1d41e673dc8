/**
 * One run drawn: its header (query, facts, final answer, usage) and its timeline of turns, each
 * turn's code blocks and sub-calls, and a child RLM's run nested in the call that started it.
 * Turn and call bodies are built when first opened.
 */
import { type BlockView, type CallView, isFailedCell, type LineProblem, type RunView, type TurnView } from '../../viewed-run.js';
import { byId, type Child, clear, h } from './dom.js';
import { firstLine, fmtCost, fmtSeconds, fmtTime, fmtTokens, plural, responsePreview } from './format.js';
import { badge, callTokens, lazyDetails, textBlock, usageTable } from './widgets.js';

/** Variables listed per code block; the rest are counted. */
const MAX_LISTED_LOCALS = 60;
/** Unreadable lines listed per run; the rest are counted. */
const MAX_LISTED_PROBLEMS = 50;

function countCalls(turn: TurnView): number {
  let n = 0;
  for (const block of turn.blocks) n += block.calls.length;
  return n;
}

function turnErrors(turn: TurnView): number {
  let n = 0;
  for (const block of turn.blocks) {
    if (isFailedCell(block)) n++;
    for (const call of block.calls) {
      if (call.error !== null) n++;
      if (call.child) n += call.child.errorCount;
    }
  }
  return n;
}

/** The turns of `run` as a list, a divider before each completion when a session had several. */
function timeline(run: RunView, depth: number): HTMLOListElement {
  const list = h('ol', { class: `timeline${depth > 0 ? ' timeline-child' : ''}` });
  let contextIndex = 0;
  run.turns.forEach((turn, index) => {
    let context = run.contexts[contextIndex];
    while (context !== undefined && context.firstTurn === index + 1) {
      if (run.contexts.length > 1) {
        list.appendChild(
          h('li', { class: 'completion-divider' }, [
            h('span', { class: 'label', text: `Completion ${contextIndex + 1}` }),
            context.query ? h('span', { class: 'query', text: firstLine(context.query, 160) }) : null,
          ]),
        );
      }
      contextIndex += 1;
      context = run.contexts[contextIndex];
    }
    list.appendChild(h('li', null, turnItem(turn, depth)));
  });
  if (run.turns.length === 0) list.appendChild(h('li', { class: 'muted empty-turns', text: 'No turns recorded.' }));
  return list;
}

function turnItem(turn: TurnView, depth: number): HTMLDetailsElement {
  const errors = turnErrors(turn);
  const calls = countCalls(turn);
  const summary = [
    h('span', { class: 'turn-no', text: `Turn ${turn.iteration}` }),
    h('span', { class: 'turn-preview', text: responsePreview(turn.response) }),
    h('span', { class: 'badges' }, [
      turn.blocks.length ? badge(plural(turn.blocks.length, 'block'), 'muted') : null,
      calls ? badge(plural(calls, 'sub-call'), 'call') : null,
      errors ? badge(plural(errors, 'error'), 'error') : null,
      turn.finalAnswer !== null ? badge('final', 'ok') : null,
      turn.iterationTime !== null ? h('span', { class: 'time', text: fmtSeconds(turn.iterationTime) }) : null,
    ]),
  ];
  const className = `turn${errors ? ' has-error' : ''}${turn.finalAnswer !== null ? ' is-final' : ''}`;
  const details = lazyDetails(className, summary, () => turnBody(turn, depth));
  details.dataset.turn = String(turn.iteration);
  details.dataset.depth = String(depth);
  return details;
}

function turnBody(turn: TurnView, depth: number): Child[] {
  const parts: Child[] = [];
  if (turn.prompt.length) {
    const summary = [
      h('span', { class: 'section-label', text: 'Prompt' }),
      ' ',
      h('span', { class: 'muted', text: `${plural(turn.prompt.length, 'message')} sent to the model` }),
    ];
    parts.push(
      lazyDetails('prompt', summary, () =>
        turn.prompt.map((message) =>
          h('div', { class: `message role-${message.role.replace(/[^a-z]/gi, '')}` }, [
            h('div', { class: 'role', text: message.role }),
            textBlock(message.content, 'prose'),
          ]),
        ),
      ),
    );
  }
  parts.push(
    h('div', { class: 'section' }, [h('div', { class: 'section-label', text: 'Response' }), textBlock(turn.response, 'prose response', '(empty response)')]),
  );
  turn.blocks.forEach((block, i) => {
    parts.push(blockView(block, i, turn.blocks.length, depth));
  });
  if (turn.finalAnswer !== null) {
    parts.push(h('div', { class: 'final-card' }, [h('div', { class: 'section-label', text: 'Final answer' }), textBlock(turn.finalAnswer, 'prose')]));
  }
  return parts;
}

function blockStatus(block: BlockView, failed: boolean): HTMLSpanElement | null {
  if (block.status === 'timeout') return badge('timed out', 'error');
  if (block.status === 'error') return badge('error', 'error');
  if (failed) return badge('stderr', 'error');
  if (block.status === 'ok') return badge('ok', 'ok');
  return null;
}

function blockView(block: BlockView, index: number, count: number, depth: number): HTMLDivElement {
  const failed = isFailedCell(block);
  const element = h('div', { class: `block${failed ? ' has-error' : ''}` }, [
    h('div', { class: 'block-head' }, [
      h('span', { class: 'section-label', text: `Code block ${index + 1}${count > 1 ? ` of ${count}` : ''}` }),
      blockStatus(block, failed),
      block.stateLost ? badge('REPL restarted: variables lost', 'warn') : null,
      block.executionTime !== null ? h('span', { class: 'time', text: fmtSeconds(block.executionTime) }) : null,
    ]),
    textBlock(block.code, 'code', '(no code)'),
  ]);
  const outputs = h('div', { class: 'outputs' }, [h('div', { class: 'output-label', text: 'stdout' }), textBlock(block.stdout, 'stdout', '(no output)')]);
  if (block.stderr !== '') {
    outputs.appendChild(h('div', { class: `output-label${failed ? ' error-text' : ''}`, text: 'stderr' }));
    outputs.appendChild(textBlock(block.stderr, `stderr${failed ? ' failed' : ''}`));
  }
  if (block.value !== null && block.value !== '') {
    outputs.appendChild(h('div', { class: 'output-label', text: 'value' }));
    outputs.appendChild(textBlock(block.value, 'stdout'));
  }
  element.appendChild(outputs);
  const names = Object.keys(block.locals);
  if (names.length) {
    element.appendChild(
      h('div', { class: 'locals' }, [
        h('span', { class: 'output-label', text: 'variables' }),
        ...names.slice(0, MAX_LISTED_LOCALS).map((name) => {
          const value = block.locals[name] ?? '';
          return h('span', { class: 'chip', title: value }, [
            h('span', { class: 'chip-name', text: name }),
            ' ',
            h('span', { class: 'muted', text: firstLine(value, 40) }),
          ]);
        }),
        names.length > MAX_LISTED_LOCALS ? h('span', { class: 'muted', text: `+${names.length - MAX_LISTED_LOCALS} more` }) : null,
      ]),
    );
  }
  if (block.calls.length) {
    element.appendChild(
      h('div', { class: 'calls' }, [
        h('div', { class: 'section-label', text: plural(block.calls.length, 'sub-call') }),
        ...block.calls.map((call, i) => callView(call, i, depth)),
      ]),
    );
  }
  return element;
}

function callView(call: CallView, index: number, depth: number): HTMLDetailsElement {
  const tokens = callTokens(call);
  const kind = call.kind ?? (call.child ? 'rlm_query' : 'sub-call');
  const childErrors = call.child ? call.child.errorCount : 0;
  const summary = [
    badge(kind, call.child ? 'child' : 'call'),
    h('span', { class: 'model', text: call.model }),
    h('span', { class: 'call-preview', text: firstLine(call.prompt, 110) }),
    h('span', { class: 'badges' }, [
      call.error !== null ? badge('failed', 'error') : null,
      call.child ? badge(`child run · ${plural(call.child.turns.length, 'turn')}`, 'child') : null,
      childErrors ? badge(`${plural(childErrors, 'error')} inside`, 'error') : null,
      tokens.input + tokens.output > 0
        ? h('span', { class: 'tokens', title: 'input / output tokens', text: `${fmtTokens(tokens.input)} / ${fmtTokens(tokens.output)} tok` })
        : null,
      call.executionTime !== null ? h('span', { class: 'time', text: fmtSeconds(call.executionTime) }) : null,
    ]),
  ];
  const className = `call${call.error !== null ? ' has-error' : ''}${call.child ? ' has-child' : ''}`;
  const details = lazyDetails(className, summary, () => {
    const parts: Child[] = [h('div', { class: 'section' }, [h('div', { class: 'section-label', text: 'Prompt' }), textBlock(call.prompt, 'prose')])];
    if (call.error !== null)
      parts.push(h('div', { class: 'error-card' }, [h('div', { class: 'section-label', text: 'Error' }), textBlock(call.error, 'prose')]));
    parts.push(
      h('div', { class: 'section' }, [
        h('div', { class: 'section-label', text: 'Response' }),
        textBlock(call.response, 'prose response', call.error !== null ? '(no response)' : '(empty response)'),
      ]),
    );
    parts.push(
      h('div', { class: 'section' }, [
        h('div', { class: 'section-label', text: call.child ? 'Usage of the child run' : 'Usage' }),
        usageTable(call.usage, null),
      ]),
    );
    if (call.child) parts.push(childRunView(call.child, depth + 1));
    return parts;
  });
  details.dataset.call = String(index + 1);
  return details;
}

function childRunView(run: RunView, depth: number): HTMLElement {
  const meta = run.metadata;
  return h('section', { class: 'child-run' }, [
    h('div', { class: 'child-head' }, [
      h('span', { class: 'section-label', text: 'Child run' }),
      badge(`depth ${meta?.depth ?? depth}`, 'child'),
      meta?.rootModel ? h('span', { class: 'model', text: meta.rootModel }) : null,
      h('span', { class: 'muted', text: plural(run.turns.length, 'turn') }),
      meta?.runId ? h('span', { class: 'muted mono', text: meta.runId }) : null,
    ]),
    run.problems.length ? problemsCard(run.problems) : null,
    timeline(run, depth),
    run.finalAnswer !== null
      ? h('div', { class: 'final-card small' }, [h('div', { class: 'section-label', text: 'Child answer' }), textBlock(run.finalAnswer, 'prose')])
      : h('div', { class: 'error-card small' }, h('div', { class: 'section-label', text: 'The child run has no final answer' })),
  ]);
}

function problemsCard(problems: readonly LineProblem[]): HTMLDivElement {
  return h('div', { class: 'warn-card' }, [
    h('div', { class: 'section-label', text: `${plural(problems.length, 'line')} could not be read` }),
    h(
      'ul',
      { class: 'problems' },
      problems
        .slice(0, MAX_LISTED_PROBLEMS)
        .map((problem) => h('li', null, [h('span', { class: 'mono', text: problem.where }), ': ', h('span', { text: problem.message })])),
    ),
    problems.length > MAX_LISTED_PROBLEMS ? h('div', { class: 'muted', text: `+${problems.length - MAX_LISTED_PROBLEMS} more` }) : null,
  ]);
}

/**
 * Draws `run` in #main. `file` names where it was read from, shown as the fact `sourceLabel`: the
 * viewer's file, or the run id for `rlm serve`'s page (which fetches the trajectory at runtime).
 */
export function renderRun(file: string, run: RunView, sourceLabel = 'file'): void {
  const main = byId('main');
  clear(main);
  const meta = run.metadata;
  let totalTime = 0;
  for (const turn of run.turns) totalTime += turn.iterationTime ?? 0;
  const facts: Array<[string, string | number | null | undefined]> = [
    [sourceLabel, file],
    ['started', fmtTime(meta?.timestamp || run.turns[0]?.timestamp)],
    ['root model', meta?.rootModel],
    ['backend', meta?.backend],
    ['environment', meta?.environmentType],
    ['max depth', meta?.maxDepth],
    ['max iterations', meta?.maxIterations],
    ['turns', String(run.turns.length)],
    ['time', totalTime ? fmtSeconds(totalTime) : null],
    ['cost', run.costUsd !== null && Object.keys(run.usage).length ? fmtCost(run.costUsd) + (run.rootUsageRecorded ? '' : ' (sub-calls)') : null],
  ];
  const head = h('section', { class: 'run-head' }, [
    h('h1', { class: 'run-title', text: run.query ? firstLine(run.query, 300) : file }),
    h(
      'dl',
      { class: 'facts' },
      facts
        .filter((fact): fact is [string, string | number] => fact[1] !== null && fact[1] !== undefined && fact[1] !== '')
        .map(([name, value]) => h('div', null, [h('dt', { text: name }), h('dd', { text: String(value) })])),
    ),
  ]);
  if (run.query && run.query.length > 300) head.appendChild(textBlock(run.query, 'prose'));
  if (run.finalAnswer !== null) {
    head.appendChild(
      h('div', { class: 'final-card', id: 'final-answer' }, [h('div', { class: 'section-label', text: 'Final answer' }), textBlock(run.finalAnswer, 'prose')]),
    );
  } else {
    head.appendChild(
      h('div', { class: 'error-card', id: 'final-answer' }, [
        h('div', { class: 'section-label', text: 'No final answer' }),
        h('div', { class: 'muted', text: 'The run ended without FINAL (it failed, hit a limit, was interrupted, or is still running).' }),
      ]),
    );
  }
  if (run.problems.length) head.appendChild(problemsCard(run.problems));
  if (run.errorCount) {
    head.appendChild(
      h('div', {
        class: 'error-note',
        text: `${plural(run.errorCount, 'error')} in this run (failed cells, timeouts, failed sub-calls), marked in red below.`,
      }),
    );
  }
  head.appendChild(
    h('div', { class: 'section usage-section' }, [
      h('div', { class: 'section-label', text: 'Usage per model' }),
      usageTable(run.usage, { model: meta?.rootModel ?? null, turns: run.turns.length, recorded: run.rootUsageRecorded }),
    ]),
  );
  main.appendChild(head);
  main.appendChild(
    h('div', { class: 'toolbar' }, [
      h('h2', { text: 'Timeline' }),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', onclick: () => setAllTurns(true), text: 'Expand all' }),
      h('button', { type: 'button', onclick: () => setAllTurns(false), text: 'Collapse all' }),
    ]),
  );
  main.appendChild(timeline(run, 0));
  window.scrollTo(0, 0);
}

/** Moves the focus `step` top-level turns on (from the focused one, or the first/last). */
export function focusTurn(step: number): void {
  const turns = [...document.querySelectorAll<HTMLElement>('#main details.turn[data-depth="0"] > summary')];
  if (!turns.length) return;
  const current = turns.indexOf(document.activeElement as HTMLElement);
  const index = current === -1 ? (step > 0 ? 0 : turns.length - 1) : Math.min(turns.length - 1, Math.max(0, current + step));
  const turn = turns[index];
  turn?.focus();
  turn?.scrollIntoView({ block: 'nearest' });
}

/** Opens or closes every top-level turn. */
export function setAllTurns(open: boolean): void {
  for (const turn of document.querySelectorAll<HTMLDetailsElement>('#main .timeline > li > details.turn[data-depth="0"]')) turn.open = open;
}

/** A title and a message in #main, instead of a run. */
/** The turn keys every page showing a run shares: j/k move between turns, e/c expand or collapse them all. True when `key` was one. */
export function handleTurnKey(key: string): boolean {
  switch (key) {
    case 'j':
      focusTurn(1);
      return true;
    case 'k':
      focusTurn(-1);
      return true;
    case 'e':
      setAllTurns(true);
      return true;
    case 'c':
      setAllTurns(false);
      return true;
    default:
      return false;
  }
}

export function renderMessage(title: string, message: string | null, kind: 'error' | null = null): void {
  const main = byId('main');
  clear(main);
  main.appendChild(h('div', { class: `placeholder ${kind ?? ''}` }, [h('h1', { text: title }), message ? h('p', { text: message }) : null]));
}
