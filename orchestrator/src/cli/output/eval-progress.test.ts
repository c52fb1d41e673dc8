import { describe, expect, it } from 'vitest';
import type { ResultLine } from '../../eval/eval-types.js';
import { NO_COLORS, stripAnsi } from './colors.js';
import { EvalProgress, type EvalProgressMode } from './eval-progress.js';

function line(overrides: Partial<ResultLine>): ResultLine {
  return {
    task_id: 't1',
    method: 'rlm',
    epoch: 1,
    answer: '42',
    expected: ['42'],
    score: 1,
    scorer: 'em',
    error: null,
    error_kind: null,
    cost_usd: 0.01,
    input_tokens: 10,
    output_tokens: 2,
    duration_ms: 1500,
    iterations: 1,
    trajectory_file: null,
    attempts: 1,
    context_chars: 0,
    finished_at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

function progress(mode: EvalProgressMode, total = 4, alreadyDone = 0) {
  const written: string[] = [];
  let now = 0;
  const display = new EvalProgress({ write: (t) => written.push(t), mode, palette: NO_COLORS, total, alreadyDone, now: () => now, tickMs: 3_600_000 });
  return { display, written, advance: (ms: number) => (now += ms) };
}

describe('rlm eval progress', () => {
  it('on a terminal, redraws one line: done/total, running, accuracy per method, cost and an ETA', () => {
    const { display, written, advance } = progress('live');
    display.started();
    display.started();
    advance(10_000);
    display.finished(line({ method: 'rlm', score: 1 }));
    display.finished(line({ method: 'direct', score: 0, cost_usd: 0.002 }));
    const text = stripAnsi(display.statusText());
    expect(text).toBe('eval 2/4  running 0  acc rlm 1.00, direct 0.00  $0.0120  10.0 s  ETA 10.0 s');
    // Drawn in place: every write starts by erasing the line; no newline.
    expect(written.every((w) => w.startsWith('\r\x1b[2K'))).toBe(true);
    expect(written.join('')).not.toContain('\n');
    display.stop();
    display.stop();
  });

  it('off a terminal, prints one line per finished result, errors with their kind', () => {
    const { display, written } = progress('lines', 3);
    display.started();
    display.finished(line({ task_id: 'a' }));
    display.finished(line({ task_id: 'b', method: 'direct', score: null, error: 'sandbox start failed\nstack', error_kind: 'infra', cost_usd: null }));
    display.finished(line({ task_id: 'c', epoch: 2, score: 0, answer: null, error: 'iteration limit', error_kind: 'model' }));
    expect(written).toEqual([
      '[1/3] a rlm: score 1  $0.0100  1.5 s\n',
      '[2/3] b direct: infra error: sandbox start failed  $?  1.5 s\n',
      '[3/3] c rlm #2: score 0 (iteration limit)  $0.0100  1.5 s\n',
    ]);
  });

  it('counts results of a resumed evaluation without printing them, and prints nothing with --quiet', () => {
    const resumed = progress('lines', 4, 2);
    resumed.display.seed([line({ score: 1 }), line({ score: 0 })]);
    expect(resumed.written).toEqual([]);
    expect(stripAnsi(resumed.display.statusText())).toContain('eval 2/4');
    expect(stripAnsi(resumed.display.statusText())).toContain('acc 0.50');

    const quiet = progress('quiet');
    quiet.display.started();
    quiet.display.finished(line({}));
    quiet.display.note('retrying');
    expect(quiet.written).toEqual([]);
  });
});
