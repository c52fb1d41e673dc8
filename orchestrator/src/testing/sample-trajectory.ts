/**
 * A small but complete run, written with the real {@link TrajectoryWriter}, for the viewer's
 * tests: two root turns, a failed cell, an `llm_query`, a failed sub-call, and an `rlm_query`
 * whose child run has a turn of its own with a sub-call. Texts are distinctive so tests can
 * look for them.
 */
import type { ExecuteResult } from '@rlm/shared';
import type { TurnRecord } from '../engine/run-records.js';
import { TrajectoryWriter, type TrajectoryMetadata } from '../trajectory/trajectory-writer.js';
import { executeResult } from './execute-result.js';

export const SAMPLE_QUERY = 'Which lighthouse logged the most ships in March?';
export const SAMPLE_ANSWER = 'Fastnet Rock logged the most ships in March (41).';

const result = (overrides: Partial<ExecuteResult> = {}): ExecuteResult => executeResult({ durationMs: 120, ...overrides });

const out = (text: string) => ({ text, truncatedChars: 0 });

export const SAMPLE_METADATA: TrajectoryMetadata = {
  rootModel: 'claude-sonnet-4-5',
  maxDepth: 1,
  maxIterations: 30,
  backend: 'anthropic',
  backendKwargs: { model: 'claude-sonnet-4-5', sub_model: 'claude-haiku-4-5', sub_backend: 'anthropic' },
  environmentKwargs: { language: 'javascript' },
  otherBackends: ['anthropic'],
};

const childTurn: TurnRecord = {
  turn: 1,
  system: 'You are a child RLM.',
  prompt: [{ role: 'user', content: 'Turn 1. … answer the original query: "Count the ships in the Fastnet log"' }],
  response: 'The child counts the Fastnet entries.\n```repl\nconst n = llm_query("How many ships in: " + context)\nFINAL(n)\n```',
  blocks: [
    {
      code: 'const n = llm_query("How many ships in: " + context)\nFINAL(n)',
      result: result({ final: { value: '41', via: 'FINAL' }, durationMs: 310 }),
      subcalls: [
        {
          kind: 'llm_query',
          model: 'claude-haiku-4-5',
          prompt: 'How many ships in: Fastnet log, March',
          promptChars: 37,
          response: '41',
          error: null,
          usage: { inputTokens: 800, outputTokens: 4 },
          durationMs: 290,
        },
      ],
    },
  ],
  finalAnswer: '41',
  model: 'claude-sonnet-4-5',
  usage: { inputTokens: 1_200, outputTokens: 80 },
  durationMs: 1_400,
};

/** The root run's turns; `response` of turn 1 can be replaced to plant hostile text. */
export function sampleTurns(options: { firstResponse?: string } = {}): TurnRecord[] {
  return [
    {
      turn: 1,
      system: 'You are tasked with answering a query with associated context.',
      prompt: [{ role: 'user', content: `Your context is an object of 3 files. … answer the original query: "${SAMPLE_QUERY}"` }],
      response:
        options.firstResponse ??
        'First I look at which logs the context holds.\n```repl\nprint(Object.keys(context).join("\\n"))\n```\n```repl\nundefinedHelper()\n```',
      blocks: [
        {
          code: 'print(Object.keys(context).join("\\n"))',
          result: result({ stdout: out('fastnet.log\nskerries.log\ntuskar.log\n'), variables: [{ name: 'logs', type: 'Array(3)' }] }),
          subcalls: [],
        },
        {
          code: 'undefinedHelper()',
          result: result({
            status: 'error',
            error: { type: 'ReferenceError', message: 'undefinedHelper is not defined', stack: ['at cell 2, line 1:1'] },
          }),
          subcalls: [],
        },
      ],
      finalAnswer: null,
      model: 'claude-sonnet-4-5',
      usage: { inputTokens: 1_200, outputTokens: 80 },
      durationMs: 2_300,
    },
    {
      turn: 2,
      system: 'You are tasked with answering a query with associated context.',
      prompt: [
        { role: 'user', content: `Your context is an object of 3 files. … answer the original query: "${SAMPLE_QUERY}"` },
        { role: 'assistant', content: 'First I look at which logs the context holds.' },
        { role: 'user', content: 'REPL output of block 1 of 2: fastnet.log …' },
      ],
      response:
        'I delegate the Fastnet count to a child RLM and ask for the others directly.\n```repl\nconst fastnet = rlm_query("Count the ships in the Fastnet log")\nconst others = llm_query_batched(["Skerries ships?", "Tuskar ships?"])\nprint(fastnet, others)\n```',
      blocks: [
        {
          code: 'const fastnet = rlm_query("Count the ships in the Fastnet log")\nconst others = llm_query_batched(["Skerries ships?", "Tuskar ships?"])\nprint(fastnet, others)',
          result: result({ stdout: out('41 [ "Skerries: 17", "Error: rate limited" ]\n'), durationMs: 2_050 }),
          subcalls: [
            {
              kind: 'rlm_query',
              model: 'claude-sonnet-4-5',
              prompt: 'Count the ships in the Fastnet log',
              promptChars: 34,
              response: '41',
              error: null,
              usage: { inputTokens: 0, outputTokens: 0 },
              durationMs: 1_600,
              child: {
                runId: 'child-7f3a',
                depth: 1,
                rootModel: 'claude-sonnet-4-5',
                turns: [childTurn],
                answer: '41',
                usage: {
                  'claude-sonnet-4-5': { calls: 1, inputTokens: 2_400, outputTokens: 60, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.0081 },
                  'claude-haiku-4-5': { calls: 1, inputTokens: 800, outputTokens: 4, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.00082 },
                },
              },
            },
            {
              kind: 'llm_query',
              model: 'claude-haiku-4-5',
              prompt: 'Skerries ships?',
              promptChars: 15,
              response: 'Skerries: 17',
              error: null,
              usage: { inputTokens: 600, outputTokens: 5 },
              durationMs: 400,
            },
            {
              kind: 'llm_query',
              model: 'claude-haiku-4-5',
              prompt: 'Tuskar ships?',
              promptChars: 13,
              response: null,
              error: 'rate limited (429) after 3 attempts',
              usage: { inputTokens: 0, outputTokens: 0 },
              durationMs: 380,
            },
          ],
        },
        {
          code: `FINAL(${JSON.stringify(SAMPLE_ANSWER)})`,
          result: result({ final: { value: SAMPLE_ANSWER, via: 'FINAL' } }),
          subcalls: [],
        },
      ],
      finalAnswer: SAMPLE_ANSWER,
      model: 'claude-sonnet-4-5',
      usage: { inputTokens: 1_200, outputTokens: 80 },
      durationMs: 4_100,
    },
  ];
}

/** Writes the sample run into `logDir` and returns the file's path. */
export async function writeSampleTrajectory(
  logDir: string,
  options: { firstResponse?: string; fileNamePrefix?: string; now?: () => Date } = {},
): Promise<string> {
  const writer = new TrajectoryWriter({
    logDir,
    metadata: SAMPLE_METADATA,
    ...(options.fileNamePrefix ? { fileNamePrefix: options.fileNamePrefix } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  for (const turn of sampleTurns(options.firstResponse === undefined ? {} : { firstResponse: options.firstResponse })) writer.writeTurn(turn);
  await writer.flush();
  return writer.path;
}
