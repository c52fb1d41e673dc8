import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../../engine/run-events.js';
import { EventUsage } from './event-usage.js';

const base = { runId: 'r0', depth: 0, time: 1 };

describe('usage summed from a run’s events', () => {
  it('adds root turns, sub-calls (cancelled ones apart) and compactions per model, and counts the root’s turns', () => {
    const events: RunEvent[] = [
      { ...base, type: 'run_start', query: 'q', rootModel: 'root-m', contextDescription: '' },
      { ...base, type: 'turn_start', turn: 1 },
      { ...base, type: 'model_response', turn: 1, model: 'root-m', text: 'x', inputTokens: 100, outputTokens: 10, costUsd: 0.5, durationMs: 1 },
      {
        ...base,
        type: 'subcall_end',
        callId: 'c1',
        kind: 'llm_query',
        model: 'sub-m',
        ok: true,
        durationMs: 1,
        usage: { inputTokens: 20, outputTokens: 2, costUsd: 0.1 },
      },
      {
        ...base,
        type: 'subcall_end',
        callId: 'c2',
        kind: 'llm_query',
        model: 'sub-m',
        ok: false,
        cancelled: true,
        durationMs: 1,
        usage: { inputTokens: 0, outputTokens: 0, costUsd: 0 },
      },
      // A child RLM's turn: its tokens count, its turns are not the root's iterations.
      { runId: 'r1', parentRunId: 'r0', depth: 1, time: 1, type: 'turn_start', turn: 5 },
      {
        runId: 'r1',
        depth: 1,
        time: 1,
        type: 'model_response',
        turn: 5,
        model: 'root-m',
        text: 'y',
        inputTokens: 1,
        outputTokens: 1,
        costUsd: 0.25,
        durationMs: 1,
      },
      { ...base, type: 'turn_start', turn: 2 },
      { ...base, type: 'compaction', turn: 2, messagesBefore: 4, summaryChars: 10, usage: { inputTokens: 50, outputTokens: 5, costUsd: 0.125 } },
    ];
    const usage = new EventUsage();
    for (const event of events) usage.add(event);
    expect(usage.usage()).toEqual({
      'root-m': { calls: 3, inputTokens: 151, outputTokens: 16, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.875 },
      'sub-m': { calls: 1, cancelledCalls: 1, inputTokens: 20, outputTokens: 2, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.1 },
    });
    expect(usage.costUsd()).toBeCloseTo(0.975);
    expect(usage.iterations()).toBe(2);
  });

  it('reports the total cost as unknown once any call’s price is unknown', () => {
    const usage = new EventUsage();
    usage.add({ ...base, type: 'model_response', turn: 1, model: 'a', text: '', inputTokens: 1, outputTokens: 1, costUsd: 0.1, durationMs: 1 });
    expect(usage.costUsd()).toBeCloseTo(0.1);
    usage.add({ ...base, type: 'model_response', turn: 2, model: 'b', text: '', inputTokens: 1, outputTokens: 1, costUsd: null, durationMs: 1 });
    expect(usage.costUsd()).toBeNull();
    expect(usage.usage().b?.costUsd).toBeNull();
  });

  it('reports nothing spent for a run without events', () => {
    const usage = new EventUsage();
    expect(usage.usage()).toEqual({});
    expect(usage.costUsd()).toBe(0);
    expect(usage.iterations()).toBe(0);
  });
});
