import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecuteResult } from '@rlm/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TurnRecord } from '../engine/run-records.js';
import { setLogSink } from '../logging.js';
import { parseTrajectory, readTrajectory } from './trajectory-schema.js';
import { TRAJECTORY_TEXT_LIMIT_CHARS, type TrajectoryMetadata, TrajectoryWriter } from './trajectory-writer.js';
import { executeResult } from '../testing/execute-result.js';

const API_KEY = 'sk-ant-api03-THISISASECRETKEYTHATMUSTNOTLEAK0123456789';

let dir: string;
let logged: string[];
let restore: ReturnType<typeof setLogSink>;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-trajectory-'));
  logged = [];
  restore = setLogSink((line) => logged.push(line));
});
afterEach(async () => {
  setLogSink(restore);
  await rm(dir, { recursive: true, force: true });
});

const result = (overrides: Partial<ExecuteResult> = {}): ExecuteResult => executeResult({ durationMs: 1_500, ...overrides });

const metadata: TrajectoryMetadata = {
  rootModel: 'claude-sonnet-4-5',
  maxDepth: 2,
  maxIterations: 30,
  backend: 'anthropic',
  backendKwargs: {
    model: 'claude-sonnet-4-5',
    apiKey: API_KEY,
    max_tokens: 4096,
    headers: { Authorization: `Bearer ${API_KEY}` },
    baseURL: 'http://127.0.0.1:9',
  },
  environmentKwargs: { image: 'rlm-sandbox:abc', memoryBytes: 1024 ** 3, env: { OPENAI_API_KEY: API_KEY, NOTE: `key is ${API_KEY}` } },
  otherBackends: ['openai'],
};

const childTurn: TurnRecord = {
  turn: 1,
  system: 'child system prompt',
  prompt: [{ role: 'user', content: 'child first message' }],
  response: '```repl\nFINAL(llm_query("sum up"))\n```',
  blocks: [
    {
      code: 'FINAL(llm_query("sum up"))',
      result: result({ final: { value: 'summed', via: 'FINAL' } }),
      subcalls: [
        {
          kind: 'llm_query',
          model: 'gpt-5-mini',
          prompt: 'sum up',
          promptChars: 6,
          response: 'summed',
          error: null,
          usage: { inputTokens: 10, outputTokens: 2 },
          durationMs: 250,
        },
      ],
    },
  ],
  finalAnswer: 'summed',
  model: 'claude-sonnet-4-5',
  usage: { inputTokens: 1_200, outputTokens: 80 },
  durationMs: 900,
};

const turns: TurnRecord[] = [
  {
    turn: 1,
    system: 'root system prompt',
    prompt: [{ role: 'user', content: 'Your context is a string with 12 total characters. … original query: "Q"' }],
    response: '```repl\nprint(context.slice(0, 5))\nconst parts = rlm_query_batched(["a", "b"])\n```',
    blocks: [
      {
        code: 'print(context.slice(0, 5))\nconst parts = rlm_query_batched(["a", "b"])',
        result: result({
          stdout: { text: 'hello\n', truncatedChars: 0 },
          variables: [{ name: 'parts', type: 'Array(2)' }],
        }),
        subcalls: [
          {
            kind: 'rlm_query',
            model: 'claude-haiku-4-5',
            prompt: 'a',
            promptChars: 1,
            response: 'summed',
            error: null,
            usage: { inputTokens: 110, outputTokens: 12 },
            durationMs: 1_234,
            child: {
              runId: 'child-1',
              depth: 1,
              rootModel: 'claude-haiku-4-5',
              turns: [childTurn],
              answer: 'summed',
              usage: {
                'claude-haiku-4-5': { calls: 1, inputTokens: 100, outputTokens: 10, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.00015 },
                'gpt-5-mini': { calls: 1, inputTokens: 10, outputTokens: 2, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.0000065 },
              },
            },
          },
          {
            kind: 'rlm_query',
            model: 'claude-haiku-4-5',
            prompt: 'b',
            promptChars: 1,
            response: null,
            error: 'Error: budget exceeded',
            usage: { inputTokens: 0, outputTokens: 0 },
            durationMs: 3,
          },
        ],
      },
    ],
    finalAnswer: null,
    model: 'claude-sonnet-4-5',
    usage: { inputTokens: 1_200, outputTokens: 80 },
    durationMs: 4_321,
  },
  {
    turn: 2,
    system: 'root system prompt',
    prompt: [
      { role: 'user', content: 'first' },
      { role: 'assistant', content: 'response 1' },
      { role: 'user', content: 'REPL output of block 1 of 1:\nhello' },
    ],
    response: 'FINAL(done)',
    blocks: [
      {
        code: 'nope()',
        result: result({
          status: 'error',
          stderr: { text: 'warned\n', truncatedChars: 0 },
          error: { type: 'ReferenceError', message: 'nope is not defined', stack: ['at cell 2, line 1:1'] },
        }),
        subcalls: [],
      },
    ],
    finalAnswer: 'done',
    model: 'claude-sonnet-4-5',
    usage: { inputTokens: 1_200, outputTokens: 80 },
    durationMs: 800,
  },
];

describe('TrajectoryWriter', () => {
  it('writes a run with two iterations and a nested child, and reads it back', async () => {
    const writer = new TrajectoryWriter({ logDir: path.join(dir, 'logs', 'nested'), metadata, now: () => new Date('2026-11-21T20:30:05.123Z') });
    expect(path.basename(writer.path)).toMatch(/^rlm_2026-11-21_20-30-05_[0-9a-f]{8}\.jsonl$/);
    for (const turn of turns) writer.writeTurn(turn);
    await writer.flush();

    const text = await readFile(writer.path, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trim().split('\n')).toHaveLength(3);
    const { metadata: meta, iterations } = parseTrajectory(text);
    expect(meta).toMatchObject({
      type: 'metadata',
      timestamp: '2026-11-21T20:30:05.123Z',
      root_model: 'claude-sonnet-4-5',
      max_depth: 2,
      max_iterations: 30,
      backend: 'anthropic',
      environment_type: 'docker',
      other_backends: ['openai'],
      backend_kwargs: { model: 'claude-sonnet-4-5', max_tokens: 4096, baseURL: 'http://127.0.0.1:9' },
      environment_kwargs: { image: 'rlm-sandbox:abc', memoryBytes: 1024 ** 3 },
    });

    expect(iterations.map((i) => i.iteration)).toEqual([1, 2]);
    const [first, second] = iterations;
    expect(first?.prompt[0]).toEqual({ role: 'system', content: 'root system prompt' });
    expect(first?.iteration_time).toBe(4.321);
    expect(first?.final_answer).toBeNull();
    const block = first?.code_blocks[0];
    expect(block?.result).toMatchObject({ stdout: 'hello\n', stderr: '', locals: { parts: '<Array(2)>' }, execution_time: 1.5, status: 'ok' });

    const [childCall, failedCall] = block?.result.rlm_calls ?? [];
    expect(childCall).toMatchObject({
      root_model: 'claude-haiku-4-5',
      prompt: 'a',
      prompt_chars: 1,
      response: 'summed',
      execution_time: 1.234,
      prompt_tokens: 110,
      completion_tokens: 12,
      kind: 'rlm_query',
      usage_summary: {
        model_usage_summaries: {
          'claude-haiku-4-5': { total_calls: 1, total_input_tokens: 100, total_output_tokens: 10 },
          'gpt-5-mini': { total_calls: 1, total_input_tokens: 10, total_output_tokens: 2 },
        },
      },
    });
    expect(failedCall).toMatchObject({ response: '', error: 'Error: budget exceeded' });
    expect(failedCall).not.toHaveProperty('trajectory');

    const nested = parseTrajectory((childCall?.trajectory ?? []).map((line) => JSON.stringify(line)).join('\n'));
    expect(nested.metadata).toMatchObject({ root_model: 'claude-haiku-4-5', run_id: 'child-1', depth: 1, max_depth: 2 });
    expect(nested.iterations).toHaveLength(1);
    expect(nested.iterations[0]?.prompt[0]).toEqual({ role: 'system', content: 'child system prompt' });
    expect(nested.iterations[0]?.final_answer).toBe('summed');
    expect(nested.iterations[0]?.code_blocks[0]?.result.rlm_calls[0]).toMatchObject({ root_model: 'gpt-5-mini', response: 'summed', prompt_tokens: 10 });

    expect(second?.final_answer).toBe('done');
    expect(second?.prompt.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(second?.code_blocks[0]?.result).toMatchObject({
      status: 'error',
      stderr: 'warned\nReferenceError: nope is not defined\n    at cell 2, line 1:1',
    });

    expect(await readTrajectory(writer.path)).toEqual({ metadata: meta, iterations });
  });

  it('never writes an API key, whatever field holds it', async () => {
    const writer = new TrajectoryWriter({ logDir: dir, metadata });
    for (const turn of turns) writer.writeTurn(turn);
    await writer.flush();
    const text = await readFile(writer.path, 'utf8');
    expect(text).not.toContain('THISISASECRETKEY');
    expect(text).toContain('"apiKey":"[redacted]"');
    expect(text).toContain('"OPENAI_API_KEY":"[redacted]"');
    expect(text).toContain('"Authorization":"[redacted]"');
    expect(text).toContain('"NOTE":"[redacted]"');
  });

  it('appends each line as it comes, so a crash leaves the lines so far', async () => {
    const writer = new TrajectoryWriter({ logDir: dir, metadata });
    writer.writeMetadata();
    await writer.flush();
    expect(parseTrajectory(await readFile(writer.path, 'utf8'))).toMatchObject({ iterations: [] });
    writer.writeTurn(turns[0] as TurnRecord);
    await writer.flush();
    expect(parseTrajectory(await readFile(writer.path, 'utf8')).iterations).toHaveLength(1);
    writer.writeMetadata();
    writer.writeTurn(turns[1] as TurnRecord);
    await writer.flush();
    const text = await readFile(writer.path, 'utf8');
    expect(text.match(/^\{"type":"metadata"/gm)).toHaveLength(1);
    expect(parseTrajectory(text).iterations.map((i) => i.iteration)).toEqual([1, 2]);
    expect((await stat(writer.path)).mode & 0o777).toBe(0o600);
  });

  it('keeps lines in call order when turns are written back to back', async () => {
    const writer = new TrajectoryWriter({ logDir: dir, metadata });
    const many = Array.from({ length: 50 }, (_, i) => ({ ...(turns[1] as TurnRecord), turn: i + 1 }));
    for (const turn of many) writer.writeTurn(turn);
    await writer.flush();
    const { iterations } = await readTrajectory(writer.path);
    expect(iterations.map((i) => i.iteration)).toEqual(many.map((t) => t.turn));
  });

  it('reports every line it could not write, through warn and onWriteError, and does not fail the run', async () => {
    const blocker = path.join(dir, 'not-a-directory');
    await writeFile(blocker, '');
    const reported: string[] = [];
    const writer = new TrajectoryWriter({ logDir: blocker, metadata, onWriteError: (message) => reported.push(message) });
    expect(() => {
      for (const turn of turns) writer.writeTurn(turn);
    }).not.toThrow();
    await expect(writer.close()).resolves.toBeUndefined();
    expect(reported).toHaveLength(3);
    expect(reported[0]).toMatch(/^the metadata line could not be written to the trajectory .*not-a-directory/);
    expect(reported[1]).toMatch(/^turn 1 could not be written/);
    expect(reported[2]).toMatch(/^turn 2 could not be written/);
    expect(logged).toEqual(reported.map((message) => `rlm: warning: ${message}; the run goes on`));
    expect(await readdir(dir)).toEqual(['not-a-directory']);
  });

  it('writes a turn it cannot serialise in a reduced form with a note, leaving no partial line behind', async () => {
    const reported: string[] = [];
    const writer = new TrajectoryWriter({ logDir: dir, metadata, onWriteError: (message) => reported.push(message) });
    const [first, second] = turns as [TurnRecord, TurnRecord];
    // A bigint deep in the line fails its serialisation halfway, after pieces of it were written.
    const broken: TurnRecord = { ...first, usage: { inputTokens: 10n as unknown as number, outputTokens: 1 } };
    writer.writeTurn(broken);
    writer.writeTurn(second);
    await writer.close();
    const { iterations } = await readTrajectory(writer.path);
    expect(iterations.map((i) => i.iteration)).toEqual([1, 2]);
    expect(iterations[0]).toMatchObject({
      prompt: [],
      response: first.response,
      code_blocks: [{ code: first.blocks[0]?.code, result: { stdout: 'hello\n', rlm_calls: [] } }],
      note: expect.stringMatching(/^the full line could not be written \(a bigint cannot be serialised as JSON\)/),
    });
    expect(iterations[1]?.note).toBeUndefined();
    expect(reported).toEqual([expect.stringMatching(/^turn 1 of the trajectory .* was written in a reduced form: a bigint cannot be serialised as JSON$/)]);
  });

  it('keeps a text of a line at most TRAJECTORY_TEXT_LIMIT_CHARS long, with its beginning, its end and its full length', async () => {
    const writer = new TrajectoryWriter({ logDir: dir, metadata });
    const [first] = turns as [TurnRecord];
    const huge = `BEGIN${'x'.repeat(3 * TRAJECTORY_TEXT_LIMIT_CHARS)}END`;
    const block = first.blocks[0] as TurnRecord['blocks'][number];
    writer.writeTurn({
      ...first,
      blocks: [{ ...block, result: { ...block.result, stdout: { text: huge, truncatedChars: 0 } }, subcallsNotRecorded: 7 }],
    });
    await writer.close();
    const { iterations } = await readTrajectory(writer.path);
    const result = iterations[0]?.code_blocks[0]?.result;
    expect(result?.stdout.length).toBeLessThan(TRAJECTORY_TEXT_LIMIT_CHARS + 200);
    expect(result?.stdout).toMatch(/^BEGINx+\n… \[[\d,]+ characters not recorded; 3,145,736 in all\] …\nx+END$/);
    expect(result?.rlm_calls_not_recorded).toBe(7);
  });
});

describe('cancelled sub-calls', () => {
  it('marks a cancelled call `cancelled: true` and counts the prompts never sent in `rlm_calls_not_started`', async () => {
    const writer = new TrajectoryWriter({ logDir: dir, metadata });
    const [first] = turns as [TurnRecord];
    const block = first.blocks[0] as TurnRecord['blocks'][number];
    const call = {
      kind: 'llm_query' as const,
      model: 'm',
      prompt: 'p',
      promptChars: 1,
      response: null,
      error: 'cancelled: the cell that made the call ended',
      usage: { inputTokens: 0, outputTokens: 0 },
      durationMs: 5,
      cancelled: true as const,
    };
    writer.writeTurn({ ...first, blocks: [{ ...block, subcalls: [call], subcallsNotStarted: 9 }] });
    await writer.close();
    const { iterations } = await readTrajectory(writer.path);
    const result = iterations[0]?.code_blocks[0]?.result;
    expect(result?.rlm_calls_not_started).toBe(9);
    expect(result?.rlm_calls?.[0]).toMatchObject({ cancelled: true, error: 'cancelled: the cell that made the call ended' });
  });
});
