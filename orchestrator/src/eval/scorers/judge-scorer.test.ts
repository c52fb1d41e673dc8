import { describe, expect, it } from 'vitest';
import { ModelCallError } from '../../models/model-backend.js';
import { ScriptedBackend } from '../../models/scripted-backend.js';
import type { EvalTask } from '../eval-types.js';
import { DEFAULT_JUDGE_SYSTEM, judgeScorer, parseVerdict } from './judge-scorer.js';
import { ScorerError } from './scorer-error.js';

const task: EvalTask = { id: 'q7', query: 'What is the capital of France?', expected: ['Paris', 'Paris, France'], metadata: {}, row: 7 };

function judge(replies: readonly string[], prompt?: string) {
  const backend = new ScriptedBackend(replies);
  const scorer = judgeScorer({ role: { backend, model: 'judge-model', maxOutputTokens: 200 }, ...(prompt === undefined ? {} : { prompt }) });
  return { backend, scorer };
}

describe('judge', () => {
  it('asks the judge model with the question, the expected answers and the answer, and scores its verdict', async () => {
    const { backend, scorer } = judge(['REASON: Both name Paris.\nVERDICT: CORRECT']);
    const score = await scorer.score({ answer: 'It is Paris.', expected: task.expected, task, signal: new AbortController().signal });
    expect(score).toEqual({ score: 1, note: 'Both name Paris.' });
    expect(backend.requests).toHaveLength(1);
    const [request] = backend.requests;
    expect(request?.model).toBe('judge-model');
    expect(request?.system).toBe(DEFAULT_JUDGE_SYSTEM);
    expect(request?.maxOutputTokens).toBe(200);
    const content = request?.messages[0]?.content ?? '';
    expect(content).toContain('What is the capital of France?');
    expect(content).toContain('- Paris\n- Paris, France');
    expect(content).toContain('Answer to grade:\nIt is Paris.');
  });

  it('scores INCORRECT 0 and a numeric grade as given', async () => {
    const { scorer } = judge(['REASON: Wrong city.\nVERDICT: INCORRECT', '**VERDICT:** 0.5']);
    const signal = new AbortController().signal;
    expect(await scorer.score({ answer: 'Lyon', expected: ['Paris'], task, signal })).toEqual({ score: 0, note: 'Wrong city.' });
    expect((await scorer.score({ answer: 'Paris or Lyon', expected: ['Paris'], task, signal })).score).toBe(0.5);
  });

  it('fills a custom prompt once, without expanding placeholders inside the answer, and sends no system prompt', async () => {
    const { backend, scorer } = judge(['VERDICT: CORRECT'], 'Q={question} E={expected} A={answer}');
    await scorer.score({ answer: 'see {question}', expected: ['Paris'], task, signal: new AbortController().signal });
    expect(backend.requests[0]?.messages[0]?.content).toBe('Q=What is the capital of France? E=Paris A=see {question}');
    expect(backend.requests[0]?.system).toBeUndefined();
  });

  it('scores a missing answer 0 without asking the judge', async () => {
    const { backend, scorer } = judge([]);
    expect(await scorer.score({ answer: null, expected: ['Paris'], task, signal: new AbortController().signal })).toEqual({ score: 0, note: 'no answer' });
    expect(backend.requests).toHaveLength(0);
  });

  it('throws a ScorerError quoting a reply without a verdict', async () => {
    const { scorer } = judge(['I think it is probably fine.']);
    const scoring = scorer.score({ answer: 'Paris', expected: ['Paris'], task, signal: new AbortController().signal });
    await expect(scoring).rejects.toThrow(ScorerError);
    await expect(scoring).rejects.toThrow(/judge: the judge's reply has no verdict line .*"I think it is probably fine\."/);
  });

  it('passes the signal to the backend, whose call then fails', async () => {
    const { scorer } = judge(['VERDICT: CORRECT']);
    await expect(scorer.score({ answer: 'Paris', expected: ['Paris'], task, signal: AbortSignal.abort() })).rejects.toThrow(ModelCallError);
  });
});

describe('parseVerdict', () => {
  it('reads verdicts strictly', () => {
    expect(parseVerdict('VERDICT: correct.')).toEqual({ score: 1 });
    expect(parseVerdict('The answer matches.\nGRADE: 0.75')).toEqual({ score: 0.75, note: 'The answer matches.' });
    expect(parseVerdict('INCORRECT')).toEqual({ score: 0 });
    expect(parseVerdict('VERDICT: CORRECT\nVERDICT: CORRECT')).toEqual({ score: 1 });
  });

  it('throws on a missing, contradictory or out-of-range verdict', () => {
    expect(() => parseVerdict('Looks correct to me')).toThrow(/has no verdict line/);
    expect(() => parseVerdict('VERDICT: CORRECT\nVERDICT: INCORRECT')).toThrow(/contradictory verdicts/);
    expect(() => parseVerdict('VERDICT: 7')).toThrow(/neither CORRECT, INCORRECT nor a grade from 0 to 1/);
    expect(() => parseVerdict('VERDICT: PARTIALLY CORRECT')).toThrow(ScorerError);
  });
});
