import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { RlmError } from '../errors.js';
import { LenientIterationLine, LenientMetadataLine, parseTrajectory, readTrajectory, TrajectoryLineSchema } from './trajectory-schema.js';

const metadata = {
  type: 'metadata',
  timestamp: '2026-11-21T20:30:05.123Z',
  root_model: 'claude-sonnet-4-5',
  max_depth: 1,
  max_iterations: 30,
  backend: 'anthropic',
  backend_kwargs: {},
  environment_type: 'docker',
  environment_kwargs: {},
  other_backends: null,
};

/** An iteration line as the reference's older versions wrote it. */
const referenceIteration = {
  iteration: 2,
  prompt: { messages: [{ role: 'user', content: 'Sum the numbers' }] },
  response: 'FINAL_VAR(total)',
  code_blocks: [{ code: 'total = sum(context)', result: { stdout: '', stderr: '', locals: { total: 42 }, execution_time: 0.001, llm_calls: [] } }],
  final_answer: ['total', '42'],
  iteration_time: null,
};

describe('parseTrajectory', () => {
  it('names the line that does not match', () => {
    expect(() => parseTrajectory('{"type":"metadata"}')).toThrow(/^trajectory line 1 is not a metadata or iteration line/);
    expect(() => parseTrajectory('\n{oops')).toThrow(/^trajectory line 2 is not JSON/);
  });

  it('throws rlm errors with a kind: invalid_trajectory for a bad line, trajectory_unreadable for a missing file', async () => {
    const bad = (() => {
      try {
        parseTrajectory('{oops');
      } catch (error) {
        return error;
      }
    })();
    expect(RlmError.isInstance(bad) && bad.kind).toBe('invalid_trajectory');
    const missing = await readTrajectory(path.join(os.tmpdir(), 'rlm-no-such-trajectory.jsonl')).catch((error: unknown) => error);
    expect(RlmError.isInstance(missing) && missing.kind).toBe('trajectory_unreadable');
    expect(RlmError.isInstance(missing) && missing.message).toMatch(/^cannot read the trajectory .*rlm-no-such-trajectory\.jsonl: ENOENT$/);
  });

  it('gives the fields it knows and drops the others', () => {
    const parsed = parseTrajectory(JSON.stringify({ ...metadata, run_id: 'child-1', depth: 1, from_a_later_version: true }));
    expect(parsed.metadata).toEqual({ ...metadata, run_id: 'child-1', depth: 1 });
  });
});

describe('the lenient schemas', () => {
  it("read the reference's iteration lines, which the strict schema refuses", () => {
    expect(TrajectoryLineSchema.safeParse({ type: 'iteration', ...referenceIteration }).success).toBe(false);
    const line = LenientIterationLine.parse(referenceIteration);
    expect(line.final_answer).toEqual(['total', '42']);
    expect(line.code_blocks?.[0]?.result?.locals).toEqual({ total: 42 });
    expect(line.code_blocks?.[0]?.result?.llm_calls).toEqual([]);
  });

  it('refuse an iteration line whose structure cannot be drawn', () => {
    expect(LenientIterationLine.safeParse({ ...referenceIteration, code_blocks: 'nope' }).success).toBe(false);
    expect(LenientIterationLine.safeParse({ ...referenceIteration, code_blocks: [{ code: 'x', result: { stdout: 5 } }] }).success).toBe(false);
  });

  it('read a metadata field of the wrong type as null, keeping the line and the fields they do not know', () => {
    const line = LenientMetadataLine.parse({ ...metadata, max_depth: 'two', other_backends: 'openai', recursive_max_depth: 3, custom: { a: 1 } });
    expect(line).toMatchObject({ root_model: 'claude-sonnet-4-5', max_depth: null, other_backends: null, recursive_max_depth: 3, custom: { a: 1 } });
  });
});
