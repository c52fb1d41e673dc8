import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SAMPLE_ANSWER, SAMPLE_QUERY, writeSampleTrajectory } from '../testing/sample-trajectory.js';
import { costOf } from '../usage/pricing.js';
import { readRunText } from './trajectory-reader.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-viewer-reader-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('reading our trajectories', () => {
  it('gives turns, blocks, sub-calls and the nested child run, as TrajectoryWriter wrote them', async () => {
    const run = readRunText(await readFile(await writeSampleTrajectory(dir), 'utf8'));
    expect(run.problems).toEqual([]);
    expect(run.metadata).toMatchObject({ rootModel: 'claude-sonnet-4-5', backend: 'anthropic', maxDepth: 1, maxIterations: 30, environmentType: 'docker' });
    expect(run.query).toBe(SAMPLE_QUERY);
    expect(run.finalAnswer).toBe(SAMPLE_ANSWER);
    expect(run.turns.map((t) => t.iteration)).toEqual([1, 2]);
    expect(run.turns[0]?.prompt[0]).toEqual({ role: 'system', content: 'You are tasked with answering a query with associated context.' });

    const [listing, failed] = run.turns[0]?.blocks ?? [];
    expect(listing).toMatchObject({ stdout: 'fastnet.log\nskerries.log\ntuskar.log\n', status: 'ok', locals: { logs: '<Array(3)>' } });
    expect(failed).toMatchObject({ status: 'error', stderr: expect.stringContaining('ReferenceError: undefinedHelper is not defined') });

    const calls = run.turns[1]?.blocks[0]?.calls ?? [];
    expect(calls.map((c) => [c.kind, c.model, c.error])).toEqual([
      ['rlm_query', 'claude-sonnet-4-5', null],
      ['llm_query', 'claude-haiku-4-5', null],
      ['llm_query', 'claude-haiku-4-5', 'rate limited (429) after 3 attempts'],
    ]);
    const child = calls[0]?.child;
    expect(child?.metadata).toMatchObject({ runId: 'child-7f3a', depth: 1, rootModel: 'claude-sonnet-4-5' });
    expect(child?.query).toBe('Count the ships in the Fastnet log');
    expect(child?.finalAnswer).toBe('41');
    expect(child?.turns[0]?.blocks[0]?.calls[0]).toMatchObject({ model: 'claude-haiku-4-5', prompt: 'How many ships in: Fastnet log, March', response: '41' });
    // The child's usage is its whole run's, as the parent's call recorded it.
    expect(child?.usage).toEqual(calls[0]?.usage);
    expect(child?.rootUsageRecorded).toBe(true);

    // One failed cell and one failed sub-call; the child has none.
    expect(run.errorCount).toBe(2);
  });

  it('sums usage per model over the root turns and the sub-calls, a child counting its whole run, and prices it', async () => {
    const run = readRunText(await readFile(await writeSampleTrajectory(dir), 'utf8'));
    expect(run.usage).toEqual({
      // Two root turns (1,200 in / 80 out each) and the child run's call (2,400 / 60).
      'claude-sonnet-4-5': {
        calls: 3,
        inputTokens: 4_800,
        outputTokens: 220,
        costUsd: expect.closeTo(costOf('claude-sonnet-4-5', { inputTokens: 4_800, outputTokens: 220 }) ?? Number.NaN, 10),
      },
      'claude-haiku-4-5': {
        calls: 3,
        inputTokens: 800 + 600,
        outputTokens: 4 + 5,
        costUsd: expect.closeTo(costOf('claude-haiku-4-5', { inputTokens: 1_400, outputTokens: 9 }) ?? Number.NaN, 10),
      },
    });
    // Our iteration lines carry the root model's own usage.
    expect(run.rootUsageRecorded).toBe(true);
    expect(run.costUsd).toBeGreaterThan(0);
  });
});

describe("reading the reference implementation's trajectories", () => {
  it('reads metadata, run_context, dict prompts, failed calls with error_type, and stderr as a failed cell', async () => {
    const run = readRunText(await readFile(path.join(fixtures, 'reference-run.jsonl'), 'utf8'));
    expect(run.problems).toEqual([]);
    expect(run.metadata).toMatchObject({ rootModel: 'gpt-5', backend: 'openai', environmentType: 'local', otherBackends: null });
    expect(run.metadata?.settings).toMatchObject({ backend_kwargs: { model_name: 'gpt-5' } });
    expect(run.contexts).toEqual([
      {
        timestamp: '2026-01-14T10:02:11.482301',
        query: 'How many ships did the keeper count?',
        sessionMode: false,
        contextPreview: 'Chapter 1. The lighthouse keeper counted ships...',
        firstTurn: 1,
      },
    ]);
    expect(run.query).toBe('How many ships did the keeper count?');
    expect(run.turns).toHaveLength(3);
    expect(run.finalAnswer).toBe('12 ships');

    const block = run.turns[1]?.blocks[0];
    expect(block?.status).toBeNull();
    expect(block?.stderr).toContain('NameError');
    expect(block?.locals.answers).toContain('12 ships');
    expect(block?.calls[0]).toMatchObject({ kind: null, model: 'gpt-5-mini', response: '12 ships', error: null, child: null });
    expect(block?.calls[1]?.error).toBe('Error code: 429 - rate limited');
    expect(block?.calls[1]?.prompt).toContain('"messages"');
    expect(run.usage).toEqual({
      'gpt-5-mini': { calls: 1, inputTokens: 12_040, outputTokens: 35, costUsd: costOf('gpt-5-mini', { inputTokens: 12_040, outputTokens: 35 }) },
    });
    // stderr without a status counts as a failed cell; plus the failed call.
    expect(run.errorCount).toBe(2);
  });

  it('reads older files: no metadata, no type field, a [variable, value] final answer', async () => {
    const run = readRunText(await readFile(path.join(fixtures, 'reference-legacy.jsonl'), 'utf8'));
    expect(run.problems).toEqual([]);
    expect(run.metadata).toBeNull();
    expect(run.query).toBe('Sum the numbers');
    expect(run.turns.map((t) => t.finalAnswer)).toEqual([null, '42']);
    expect(run.finalAnswer).toBe('42');
    expect(run.turns[0]?.blocks[0]?.locals).toEqual({ total: '42' });
  });

  it('reads iterations whose prompt is a string and whose response is an object', () => {
    const run = readRunText(
      `${JSON.stringify({ type: 'iteration', iteration: 1, prompt: 'just text', response: { text: 'hi' }, code_blocks: [], final_answer: null })}\n`,
    );
    expect(run.turns[0]?.prompt).toEqual([{ role: 'user', content: 'just text' }]);
    expect(run.turns[0]?.response).toContain('"text": "hi"');
  });
});

describe('broken lines', () => {
  it('reports a line that is not JSON, or not a usable iteration, and reads the others', async () => {
    const good = (await readFile(await writeSampleTrajectory(dir), 'utf8')).trim().split('\n');
    const text = [
      good[0],
      '{"type":"iteration","iteration":1,"respo',
      good[1],
      JSON.stringify({ type: 'iteration', code_blocks: 'nope' }),
      '42',
      good[2],
      '',
    ].join('\n');
    const run = readRunText(text);
    expect(run.turns).toHaveLength(2);
    expect(run.finalAnswer).toBe(SAMPLE_ANSWER);
    expect(run.problems).toEqual([
      { where: 'line 2', message: expect.stringMatching(/^not JSON \(.*\): \{"type":"iteration","iteration":1,"respo$/) },
      { where: 'line 4', message: expect.stringMatching(/^not a usable iteration line: .*code_blocks/) },
      { where: 'line 5', message: 'not a JSON object: 42' },
    ]);
  });

  it('reports a broken line inside a nested child trajectory with its path, and skips unknown line types', () => {
    const line = {
      type: 'iteration',
      iteration: 1,
      response: 'r',
      code_blocks: [
        {
          code: 'x',
          result: {
            stdout: '',
            stderr: '',
            rlm_calls: [{ root_model: 'm', prompt: 'p', response: 'a', trajectory: [{ type: 'metadata', root_model: 'm' }, 'garbage'] }],
          },
        },
      ],
      final_answer: null,
    };
    const run = readRunText([JSON.stringify({ type: 'something_new', x: 1 }), JSON.stringify(line)].join('\n'));
    expect(run.turns).toHaveLength(1);
    expect(run.problems).toEqual([{ where: 'line 2 › block 1 › call 1 › child line 2', message: 'not a JSON object: "garbage"' }]);
  });
});
