import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../engine/run-events.js';
import { COLORS, colorEnabled, paletteFor, stripAnsi } from './colors.js';
import { formatCost, formatDuration, formatTokens } from './format.js';
import { RunReporter, proseOf } from './run-reporter.js';
import { StatusLine, truncateVisible } from './status-line.js';

describe('colour', () => {
  it('is on for a terminal, off for a pipe, NO_COLOR turns it off and FORCE_COLOR on', () => {
    expect(colorEnabled({}, true)).toBe(true);
    expect(colorEnabled({}, false)).toBe(false);
    expect(colorEnabled({ NO_COLOR: '1' }, true)).toBe(false);
    expect(colorEnabled({ NO_COLOR: '' }, true)).toBe(true);
    expect(colorEnabled({ FORCE_COLOR: '1' }, false)).toBe(true);
    expect(colorEnabled({ FORCE_COLOR: '0' }, true)).toBe(false);
    expect(colorEnabled({ FORCE_COLOR: '1', NO_COLOR: '1' }, false)).toBe(true);
    expect(colorEnabled({ TERM: 'dumb' }, true)).toBe(false);
  });

  it('wraps text in SGR codes only when enabled, whatever the environment or stdout of this process says', () => {
    // styleText would check process.stdout and NO_COLOR itself; the palette must not: the choice is colorEnabled's.
    const saved = { NO_COLOR: process.env.NO_COLOR, NODE_DISABLE_COLORS: process.env.NODE_DISABLE_COLORS, FORCE_COLOR: process.env.FORCE_COLOR };
    try {
      process.env.NO_COLOR = '1';
      process.env.NODE_DISABLE_COLORS = '1';
      delete process.env.FORCE_COLOR;
      const on = paletteFor(true);
      expect([on.bold('x'), on.dim('x'), on.red('x'), on.green('x'), on.yellow('x'), on.blue('x'), on.magenta('x'), on.cyan('x')]).toEqual([
        '\x1b[1mx\x1b[22m',
        '\x1b[2mx\x1b[22m',
        '\x1b[31mx\x1b[39m',
        '\x1b[32mx\x1b[39m',
        '\x1b[33mx\x1b[39m',
        '\x1b[34mx\x1b[39m',
        '\x1b[35mx\x1b[39m',
        '\x1b[36mx\x1b[39m',
      ]);
      const off = paletteFor(false);
      expect([off.bold('x'), off.red('x'), off.cyan('x')]).toEqual(['x', 'x', 'x']);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    expect(stripAnsi(COLORS.bold(COLORS.green('ok')))).toBe('ok');
  });
});

describe('formatting', () => {
  it('shortens tokens, cost and durations', () => {
    expect([formatTokens(812), formatTokens(4_512), formatTokens(45_200), formatTokens(1_310_000)]).toEqual(['812', '4.51k', '45.2k', '1.31M']);
    expect([formatCost(null), formatCost(0), formatCost(0.01234), formatCost(12.5)]).toEqual(['$?', '$0', '$0.0123', '$12.50']);
    expect([formatDuration(420), formatDuration(12_400), formatDuration(123_000)]).toEqual(['0.4 s', '12.4 s', '2m 03s']);
  });

  it("keeps a model response's prose and drops its code", () => {
    expect(proseOf('Let me look.\n```repl\nprint(1)\n```\nThen more.')).toBe('Let me look.\n\nThen more.');
  });
});

describe('the status line', () => {
  it('redraws in place and lets logged lines scroll above it', () => {
    const out: string[] = [];
    const status = new StatusLine({ write: (t) => out.push(t), enabled: true, columns: () => 40 });
    status.update('turn 1');
    status.log('hello\n');
    status.stop();
    expect(out).toEqual(['\r\x1b[2Kturn 1', '\r\x1b[2K', 'hello\n', '\r\x1b[2Kturn 1', '\r\x1b[2K']);
  });

  it('draws nothing off a terminal', () => {
    const out: string[] = [];
    const status = new StatusLine({ write: (t) => out.push(t), enabled: false });
    status.update('turn 1');
    status.log('hello\n');
    status.stop();
    expect(out).toEqual(['hello\n']);
  });

  it('cuts a line to the terminal width without breaking colour codes', () => {
    const cut = truncateVisible(COLORS.bold('a'.repeat(50)), 10);
    expect(stripAnsi(cut)).toBe(`${'a'.repeat(9)}…`);
    expect(cut.endsWith('\x1b[0m')).toBe(true);
  });
});

describe('the run reporter', () => {
  const base = { runId: 'r1', depth: 0, time: 0 };
  const events: RunEvent[] = [
    { ...base, type: 'turn_start', turn: 2 },
    {
      ...base,
      type: 'model_response',
      turn: 2,
      model: 'gpt-5',
      text: 'Splitting.\n```repl\nprint(1)\n```',
      inputTokens: 1200,
      outputTokens: 300,
      costUsd: 0.0045,
      durationMs: 2300,
    },
    { ...base, type: 'cell_start', turn: 2, block: 1, code: 'print(1)' },
    { ...base, type: 'subcall_start', callId: 'c1', kind: 'llm_query', model: 'small', promptChars: 10 },
    { ...base, type: 'subcall_end', callId: 'c1', kind: 'llm_query', model: 'small', ok: true, durationMs: 5 },
    {
      ...base,
      type: 'cell_end',
      turn: 2,
      block: 1,
      result: {
        status: 'error',
        stdout: { text: '1\n', truncatedChars: 0 },
        stderr: { text: '', truncatedChars: 0 },
        error: { type: 'TypeError', message: 'x is not a function', stack: [] },
        final: null,
        stateLost: false,
        variables: [],
        durationMs: 3,
      },
    },
  ];

  function run(verbose: boolean, colour: boolean) {
    const out: string[] = [];
    const status = new StatusLine({ write: (t) => out.push(t), enabled: false });
    const reporter = new RunReporter({ status, palette: paletteFor(colour), verbose, now: () => 0 });
    for (const event of events) reporter.onEvent(event);
    reporter.stop();
    return { text: out.join(''), status: reporter.statusText() };
  }

  it('prints each turn readably with --verbose, coloured only when asked', () => {
    const plain = run(true, false).text;
    expect(plain).toContain('── turn 2 · gpt-5 · 1.20k in / 300 out · 2.3 s');
    expect(plain).toContain('Splitting.');
    expect(plain).toContain('▸ code (block 1)\n  │ print(1)');
    expect(plain).toContain('1 sub-call (llm_query → small)');
    expect(plain).toContain('TypeError: x is not a function');
    expect(plain).not.toContain('\x1b[');
    const coloured = run(true, true).text;
    expect(coloured).toContain('\x1b[31m');
    expect(stripAnsi(coloured)).toBe(plain);
  });

  it('prints nothing per turn without --verbose', () => {
    expect(run(false, true).text).toBe('');
  });

  it('sums turn, sub-calls, tokens, cost and elapsed time in the status text', () => {
    expect(stripAnsi(run(false, true).status)).toMatch(/^● turn 2 · running code · 1 sub-call · 1.50k tokens · \$0\.\d{4} · 0\.0 s$/);
  });
});
