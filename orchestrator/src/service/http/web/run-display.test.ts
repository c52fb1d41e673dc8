import { describe, expect, it } from 'vitest';
import { RUN_STATUSES as STORE_STATUSES } from '../../service-types.js';
import { eventSummary, fmtDuration, isActive, listQuery, RUN_STATUSES, runIdFromPath, runPagePath, statusAfterEvent, toEpochMs } from './run-display.js';

describe('the web page’s run display', () => {
  it('knows the statuses the service has, in its order', () => {
    expect(RUN_STATUSES).toEqual(STORE_STATUSES);
    expect(RUN_STATUSES.filter(isActive)).toEqual(['queued', 'running']);
  });

  it('reads the status a stored event implies: queued, started, and the status a finished event carries', () => {
    expect(statusAfterEvent('queued', {})).toBe('queued');
    expect(statusAfterEvent('started', {})).toBe('running');
    expect(statusAfterEvent('finished', { status: 'succeeded' })).toBe('succeeded');
    expect(statusAfterEvent('finished', { status: 'exploded' })).toBeNull();
    expect(statusAfterEvent('turn_start', { turn: 1 })).toBeNull();
  });

  it('makes run links only of ids the API could have handed out', () => {
    expect(runPagePath('run_0123456789abcdefghijklmn')).toBe('/runs/run_0123456789abcdefghijklmn');
    for (const hostile of ['javascript:alert(1)', '../v1/runs', 'a/b', '', 'run_x?y', '<img src=x>', '//evil.example', 'x'.repeat(101)]) {
      expect(runPagePath(hostile)).toBeNull();
    }
  });

  it('reads the run id of a run page’s path, refusing anything else', () => {
    expect(runIdFromPath('/runs/run_abc')).toBe('run_abc');
    expect(runIdFromPath('/runs/run_abc/')).toBe('run_abc');
    expect(runIdFromPath('/runs/%3Cscript%3E')).toBeNull();
    expect(runIdFromPath('/runs/%E0%A4%A')).toBeNull();
    expect(runIdFromPath('/runs/a/b')).toBeNull();
    expect(runIdFromPath('/')).toBeNull();
  });

  it('builds the list’s query string', () => {
    expect(listQuery({})).toBe('');
    expect(listQuery({ status: 'running', limit: 25 })).toBe('?status=running&limit=25');
    expect(listQuery({ status: null, cursor: 'a b&c' })).toBe('?cursor=a+b%26c');
  });

  it('says durations and times', () => {
    expect(fmtDuration(null)).toBe('');
    expect(fmtDuration(-5)).toBe('');
    expect(fmtDuration(850)).toBe('850 ms');
    expect(fmtDuration(4_240)).toBe('4.2 s');
    expect(fmtDuration(185_000)).toBe('3m 05s');
    expect(fmtDuration(3_720_000)).toBe('1h 02m');
    expect(toEpochMs('2026-11-21T10:15:00.000Z')).toBe(Date.UTC(2026, 10, 21, 10, 15));
    expect(toEpochMs('not a time')).toBeNull();
    expect(toEpochMs(null)).toBeNull();
  });

  it('summarizes each kind of event on one line, model output cut short and a child’s events marked', () => {
    expect(eventSummary('turn_start', { turn: 2, depth: 0 })).toBe('Turn 2 started');
    expect(eventSummary('turn_start', { turn: 1, depth: 1 })).toBe('[child, depth 1] Turn 1 started');
    const long = eventSummary('model_response', { turn: 1, text: `${'x'.repeat(500)}\n\nmore`, inputTokens: 10, outputTokens: 5, durationMs: 1200 });
    expect(long).toMatch(/^Model answered \(turn 1, 15 tokens, 1\.2 s\): x+…$/);
    expect(long.length).toBeLessThan(200);
    expect(eventSummary('cell_end', { turn: 1, block: 2, result: { status: 'timeout' } })).toBe('Code block 2 of turn 1: timeout');
    expect(eventSummary('subcall_end', { kind: 'llm_query', model: 'm', ok: false, error: 'boom', durationMs: 20 })).toBe(
      'llm_query to m: failed (boom) (20 ms)',
    );
    expect(eventSummary('finished', { status: 'failed', error: 'interrupted' })).toBe('Finished: failed (interrupted)');
    expect(eventSummary('final', { answer: 'forty-two' })).toBe('Final answer: forty-two');
    expect(eventSummary('something_new', {})).toBe('something_new');
    // Fields of the wrong type are not trusted, and nothing throws.
    expect(eventSummary('turn_start', { turn: '<b>2</b>' })).toBe('Turn ? started');
    expect(eventSummary('cell_end', { result: null })).toBe('Code block ? of turn ?: done');
  });
});
