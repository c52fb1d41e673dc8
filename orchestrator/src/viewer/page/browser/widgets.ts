/**
 * The page's building blocks: badges, long texts cut to their start with a "show all" toggle,
 * `<details>` whose body is built when first opened (so a run of thousands of turns and sub-calls
 * draws at once), and usage tables.
 */
import type { CallView, UsageView } from '../../viewed-run.js';
import { append, type Child, h } from './dom.js';
import { fmtBytes, fmtCost, fmtInt, plural } from './format.js';

/** A text longer than this (in characters, or lines) shows its start until "show all" is pressed. */
const TEXT_LIMIT_CHARS = 4000;
const TEXT_LIMIT_LINES = 80;

export type BadgeKind = 'ok' | 'error' | 'warn' | 'call' | 'child' | 'muted';

export function badge(text: string, kind: BadgeKind | null, title: string | null = null): HTMLSpanElement {
  return h('span', { class: `badge${kind ? ` badge-${kind}` : ''}`, title, text });
}

/**
 * A `<pre>` of `text` in a wrapper whose classes are `text ${kind}`; a long text shows its first
 * {@link TEXT_LIMIT_CHARS} characters or {@link TEXT_LIMIT_LINES} lines, with a toggle for the rest.
 */
export function textBlock(text: string, kind: string, emptyText = '(empty)'): HTMLDivElement {
  const wrap = h('div', { class: `text ${kind}` });
  if (text === '') {
    wrap.classList.add('text-empty');
    wrap.appendChild(h('span', { class: 'muted', text: emptyText }));
    return wrap;
  }
  let cut = Math.min(text.length, TEXT_LIMIT_CHARS);
  let lines = 0;
  for (let i = 0; i < cut; i++) {
    if (text.charCodeAt(i) === 10 && ++lines >= TEXT_LIMIT_LINES) {
      cut = i;
      break;
    }
  }
  const pre = h('pre', null, text.slice(0, cut));
  wrap.appendChild(pre);
  if (cut < text.length) {
    const rest = text.length - cut;
    let expanded = false;
    const button = h('button', { type: 'button', class: 'show-all' });
    const label = () => {
      button.textContent = expanded ? 'Show less' : `Show all (${fmtInt(rest)} more characters, ${fmtBytes(new Blob([text]).size)} in all)`;
    };
    label();
    pre.classList.add('truncated');
    button.addEventListener('click', () => {
      expanded = !expanded;
      pre.textContent = expanded ? text : text.slice(0, cut);
      pre.classList.toggle('truncated', !expanded);
      label();
    });
    wrap.appendChild(button);
  }
  return wrap;
}

/** A `<details>` of class `className` whose body is built by `build` the first time it opens (or now, when `open`). */
export function lazyDetails(className: string, summary: Child | readonly Child[], build: () => Child | readonly Child[], open = false): HTMLDetailsElement {
  const details = h('details', { class: className }, h('summary', null, summary));
  let built = false;
  const ensure = () => {
    if (built) return;
    built = true;
    const body = h('div', { class: 'details-body' });
    append(body, build());
    details.appendChild(body);
  };
  details.addEventListener('toggle', () => {
    if (details.open) ensure();
  });
  if (open) {
    ensure();
    details.open = true;
  }
  return details;
}

/** The root model of a run whose usage is shown, to say what the table leaves out when its turns' usage is not recorded. */
export interface RootUsage {
  model: string | null;
  turns: number;
  recorded: boolean;
}

/** A table of usage per model, with a total row when there are several. */
export function usageTable(usage: UsageView, root: RootUsage | null): HTMLDivElement {
  const models = Object.keys(usage);
  const note =
    root && !root.recorded && root.turns > 0
      ? h('p', {
          class: 'usage-note muted',
          text: `Not included: the root model's own ${plural(root.turns, 'call')} (${root.model ? `${root.model}, ` : ''}one per turn); trajectories record usage for sub-calls and child runs only.`,
        })
      : null;
  if (models.length === 0) return h('div', null, [h('p', { class: 'muted', text: 'No usage recorded.' }), note]);

  const table = h('table', { class: 'usage' });
  table.appendChild(
    h(
      'thead',
      null,
      h('tr', null, [
        h('th', { text: 'Model' }),
        h('th', { class: 'num', text: 'Calls' }),
        h('th', { class: 'num', text: 'Input tokens' }),
        h('th', { class: 'num', text: 'Output tokens' }),
        h('th', { class: 'num', text: 'Cost' }),
      ]),
    ),
  );
  const body = h('tbody');
  let calls = 0;
  let input = 0;
  let output = 0;
  let cost: number | null = 0;
  for (const [model, u] of Object.entries(usage)) {
    calls += u.calls;
    input += u.inputTokens;
    output += u.outputTokens;
    cost = cost === null || u.costUsd === null ? null : cost + u.costUsd;
    body.appendChild(
      h('tr', null, [
        h('td', null, h('span', { class: 'model', text: model })),
        h('td', { class: 'num', text: fmtInt(u.calls) }),
        h('td', { class: 'num', text: fmtInt(u.inputTokens) }),
        h('td', { class: 'num', text: fmtInt(u.outputTokens) }),
        h('td', { class: 'num', text: fmtCost(u.costUsd), title: u.costUsd === null ? 'no known price for this model' : null }),
      ]),
    );
  }
  table.appendChild(body);
  if (models.length > 1) {
    table.appendChild(
      h(
        'tfoot',
        null,
        h('tr', null, [
          h('td', { text: 'Total' }),
          h('td', { class: 'num', text: fmtInt(calls) }),
          h('td', { class: 'num', text: fmtInt(input) }),
          h('td', { class: 'num', text: fmtInt(output) }),
          h('td', { class: 'num', text: fmtCost(cost) }),
        ]),
      ),
    );
  }
  return h('div', null, [table, note]);
}

/** A call's input and output tokens, summed over its models. */
export function callTokens(call: CallView): { input: number; output: number } {
  let input = 0;
  let output = 0;
  for (const usage of Object.values(call.usage)) {
    input += usage.inputTokens;
    output += usage.outputTokens;
  }
  return { input, output };
}
