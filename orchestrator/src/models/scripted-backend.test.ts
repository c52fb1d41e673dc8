import { afterEach, describe, expect, it, vi } from 'vitest';
import { type ChatMessage, ModelCallError } from './model-backend.js';
import { ScriptedBackend } from './scripted-backend.js';
import { errorMessage } from '../errors.js';

const ask = (content: string, system?: string) => ({
  model: 'test-model',
  ...(system === undefined ? {} : { system }),
  messages: [{ role: 'user' as const, content }],
});

describe('ScriptedBackend', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers from a list in order, estimating usage at four characters per token', async () => {
    const backend = new ScriptedBackend(['first answer', 'second']);
    const first = await backend.complete(ask('12345678', 'sys!'), {});
    expect(first).toEqual({ text: 'first answer', model: 'test-model', usage: { inputTokens: 3, outputTokens: 3 }, stopReason: 'end_turn' });
    expect((await backend.complete(ask('x'), {})).text).toBe('second');
    expect(backend.name).toBe('scripted');
  });

  it('returns a full response as given, usage included', async () => {
    const response = { text: 'hi', model: 'served-model', usage: { inputTokens: 1_000, outputTokens: 7, cacheReadTokens: 500, reportedCostUsd: 0.01 } };
    const backend = new ScriptedBackend([response]);
    expect(await backend.complete(ask('q'), {})).toBe(response);
  });

  it('throws a scripted error as given', async () => {
    const failure = new ModelCallError('rate limited', 'scripted', 'test-model', { statusCode: 429, isRetryable: true });
    const backend = new ScriptedBackend([failure, 'after']);
    await expect(backend.complete(ask('q'), {})).rejects.toBe(failure);
    expect((await backend.complete(ask('q'), {})).text).toBe('after');
  });

  it('answers from a function of the request and the call index', async () => {
    const backend = new ScriptedBackend((request, index) => `${index}:${request.messages.at(-1)?.content}`);
    expect((await backend.complete(ask('a'), {})).text).toBe('0:a');
    expect((await backend.complete(ask('b'), {})).text).toBe('1:b');
  });

  it('records every request as it was sent, even if the caller changes its messages later', async () => {
    const backend = new ScriptedBackend(['ok', 'ok']);
    const messages: ChatMessage[] = [{ role: 'user', content: 'one' }];
    await backend.complete({ model: 'm', system: 's', messages }, {});
    messages.push({ role: 'assistant', content: 'ok' });
    await backend.complete({ model: 'm', messages }, {});
    expect(backend.calls.map((c) => c.index)).toEqual([0, 1]);
    expect(backend.requests[0]).toEqual({ model: 'm', system: 's', messages: [{ role: 'user', content: 'one' }] });
    expect(backend.requests[1]?.messages).toHaveLength(2);
  });

  it('throws a clear, non-retryable error when the script runs out', async () => {
    const backend = new ScriptedBackend(['only one']);
    await backend.complete(ask('q'), {});
    const error = await backend.complete(ask('q'), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error).toMatchObject({ backend: 'scripted', model: 'test-model', details: { isRetryable: false } });
    expect(errorMessage(error)).toBe('scripted: the script has 1 response and call #2 asked for another (model test-model); add responses to the script');
  });

  it('holds each answer back until latencyMs has passed', async () => {
    vi.useFakeTimers();
    const slow = new ScriptedBackend(['late'], { latencyMs: 50 });
    let answer: string | undefined;
    const pending = slow.complete(ask('q'), {}).then((response) => (answer = response.text));
    await vi.advanceTimersByTimeAsync(49);
    expect(answer).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(answer).toBe('late');
    await pending;
  });

  it('stops waiting out its latency when the signal fires, with a cancellation error', async () => {
    const never = new ScriptedBackend(['never'], { latencyMs: 60_000, name: 'fake' });
    const controller = new AbortController();
    const pending = never.complete(ask('q'), { signal: controller.signal });
    controller.abort(new Error('user cancelled'));
    const error = await pending.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelCallError);
    expect(error).toMatchObject({ message: 'fake: the call to test-model was cancelled', cause: new Error('user cancelled') });
    await expect(never.complete(ask('q'), { signal: AbortSignal.abort() })).rejects.toThrow(/was cancelled/);
  });
});
