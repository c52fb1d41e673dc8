import OpenAI from 'openai';
import type { ChatCompletionChunk } from 'openai/resources/chat/completions';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunUsage } from '../service-types.js';
import { eventually, type Harness, SseReader, startHarness, json } from './http-test-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  harness = await startHarness(options);
  return harness;
}

function client(h: Harness, token: string): OpenAI {
  return new OpenAI({ baseURL: `${h.url}/v1`, apiKey: token });
}

const USAGE: RunUsage = {
  'fake-root': { calls: 2, inputTokens: 1000, outputTokens: 50, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.01 },
  'fake-fast': { calls: 5, inputTokens: 300, outputTokens: 30, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: null },
};

describe('the OpenAI-compatible API, through the official openai SDK', () => {
  it('answers chat.completions.create with the run’s answer and its usage summed over models', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const pending = client(h, token).chat.completions.create({
      model: 'rlm',
      messages: [
        { role: 'system', content: 'Answer briefly.' },
        { role: 'user', content: 'The document: alpha beta gamma.' },
        { role: 'assistant', content: 'Noted.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'How many words' },
            { type: 'text', text: 'are in it?' },
          ],
        },
      ],
      temperature: 0.2,
    });
    const run = await h.claimWhenQueued();
    expect(run).toMatchObject({ source: 'chat', model: null, query: 'How many words\nare in it?' });
    expect(await h.store.getRunInput(run.id)).toEqual({
      query: 'How many words\nare in it?',
      context: [
        { role: 'system', content: 'Answer briefly.' },
        { role: 'user', content: 'The document: alpha beta gamma.' },
        { role: 'assistant', content: 'Noted.' },
      ],
    });
    await h.finish(run.id, { status: 'succeeded', answer: 'Three.', usage: USAGE, costUsd: null, iterations: 2 });

    const completion = await pending;
    expect(completion).toMatchObject({
      id: `chatcmpl-${run.id}`,
      object: 'chat.completion',
      created: Math.floor(run.createdAt / 1000),
      model: 'rlm',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Three.' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 1300, completion_tokens: 80, total_tokens: 1380 },
    });
  });

  it('streams with stream: true: a role chunk, the answer, finish_reason stop, the usage chunk, then [DONE]', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const chunks: ChatCompletionChunk[] = [];
    const streamed = (async () => {
      const stream = await client(h, token).chat.completions.create({
        model: 'rlm:fast',
        messages: [{ role: 'user', content: 'Summarise the context.' }],
        stream: true,
        stream_options: { include_usage: true },
        // An extension: the context, as in POST /v1/runs.
        ...({ context: { 'a.txt': 'first file' } } as object),
      });
      for await (const chunk of stream) chunks.push(chunk);
    })();
    const run = await h.claimWhenQueued();
    expect(run).toMatchObject({ source: 'chat', model: 'fast' });
    expect(await h.store.getRunInput(run.id)).toEqual({ query: 'Summarise the context.', context: { 'a.txt': 'first file' } });
    await h.finish(run.id, { status: 'succeeded', answer: 'A file.', usage: USAGE });
    await streamed;

    expect(chunks.every((c) => c.id === `chatcmpl-${run.id}` && c.object === 'chat.completion.chunk' && c.model === 'rlm:fast')).toBe(true);
    expect(chunks[0]!.choices[0]!.delta).toEqual({ role: 'assistant', content: '' });
    expect(chunks.flatMap((c) => c.choices.map((choice) => choice.delta.content ?? '')).join('')).toBe('A file.');
    expect(chunks.flatMap((c) => c.choices.map((choice) => choice.finish_reason)).filter(Boolean)).toEqual(['stop']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 1300, completion_tokens: 80, total_tokens: 1380 });
  });

  it('ends a raw stream with data: [DONE], without usage unless asked', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const response = await h.call(token, 'POST', '/v1/chat/completions', { model: 'rlm', messages: [{ role: 'user', content: 'q' }], stream: true });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = new SseReader(response);
    const first = JSON.parse((await reader.next())!.data);
    expect(first.choices[0].delta.role).toBe('assistant');
    expect(first).not.toHaveProperty('usage');
    const run = await h.claim();
    await h.finish(run.id, { status: 'succeeded', answer: 'done' });
    const rest = await reader.rest();
    expect(rest.at(-1)!.data).toBe('[DONE]');
    expect(rest.slice(0, -1).every((m) => !('usage' in JSON.parse(m.data)))).toBe(true);
  });

  it('answers a failed run with 502 run_failed carrying the stored error, which the SDK does not retry', async () => {
    const h = await start();
    const { team, token } = await h.team('alpha');
    const pending = client(h, token)
      .chat.completions.create({ model: 'rlm', messages: [{ role: 'user', content: 'q' }] })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    const run = await h.claimWhenQueued();
    await h.finish(run.id, { status: 'failed', error: 'model_error: the provider refused the request' });
    const error = await pending;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error).toMatchObject({ status: 502, code: 'run_failed' });
    expect((error as Error).message).toContain(`run ${run.id} failed: model_error: the provider refused the request`);
    expect((await h.store.listRuns(team.id, {})).runs).toHaveLength(1);
  });

  it('throws the failure of a streamed run from the SDK’s iterator', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const consumed = (async () => {
      const stream = await client(h, token).chat.completions.create({ model: 'rlm', messages: [{ role: 'user', content: 'q' }], stream: true });
      for await (const _chunk of stream) {
        // Only the role chunk arrives before the failure.
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    const run = await h.claimWhenQueued();
    await h.finish(run.id, { status: 'cancelled', error: 'cancelled' });
    const error = await consumed;
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as Error).message).toContain(`run ${run.id} was cancelled: cancelled`);
  });

  it('lists the models the team may use, and retrieves one', async () => {
    const h = await start();
    const open = await h.team('alpha');
    const restricted = await h.team('beta', { models: ['rlm:big'] });
    const all = [];
    for await (const model of client(h, open.token).models.list()) all.push(model);
    expect(all.map((m) => m.id)).toEqual(['rlm', 'rlm:fast', 'rlm:big']);
    expect(all[0]).toMatchObject({ object: 'model', owned_by: 'rlm', created: expect.any(Number) });
    const some = [];
    for await (const model of client(h, restricted.token).models.list()) some.push(model.id);
    expect(some).toEqual(['rlm', 'rlm:big']);
    expect((await client(h, restricted.token).models.retrieve('rlm:big')).id).toBe('rlm:big');
    await expect(client(h, restricted.token).models.retrieve('rlm:fast')).rejects.toMatchObject({ status: 404 });
  });

  it('cancels the run of a client that goes away while it waits (queued: cancelled; running: asked to stop)', async () => {
    const h = await start();
    const { team, token } = await h.team('alpha');
    const body = { model: 'rlm', messages: [{ role: 'user', content: 'q' }] };

    // Queued: the client gives up before a worker took the run.
    const controller = new AbortController();
    const aborted = fetch(`${h.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: controller.signal,
    }).catch((error: unknown) => error);
    const queued = await eventually(async () => (await h.store.listRuns(team.id, { status: 'queued' })).runs[0], 'the run to be queued');
    controller.abort();
    await aborted;
    await eventually(async () => ((await h.store.getRun(team.id, queued.id))?.status === 'cancelled' ? true : undefined), 'the queued run to be cancelled');

    // Running: the client of a stream walks away.
    const streamed = await h.call(token, 'POST', '/v1/chat/completions', { ...body, stream: true });
    const reader = new SseReader(streamed);
    await reader.next();
    const running = await h.claim();
    await reader.cancel();
    await eventually(async () => ((await h.store.getRun(team.id, running.id))?.cancelRequested ? true : undefined), 'the running run to be asked to stop');
    expect(h.published).toContainEqual({ kind: 'run_cancel', runId: running.id });
    expect(h.logs.filter((line) => /"level":(50|60)/.test(line))).toEqual([]);
  });

  it('refuses a bad chat body with 400 naming the field', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const cases: [unknown, string][] = [
      [{ model: 'rlm', messages: [] }, 'messages: must not be empty'],
      [{ messages: [{ role: 'user', content: 'q' }] }, 'model: is required'],
      [{ model: 'rlm', messages: [{ role: 'system', content: 's' }] }, 'messages: must contain a user message (the last one is the query)'],
      [
        { model: 'rlm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] },
        'messages[0].content[0].type: only "text" parts are supported (got "image_url")',
      ],
      [{ model: 'rlm', messages: [{ role: 'wizard', content: 'q' }] }, 'messages[0].role: must be one of'],
      [{ model: 'gpt-4o', messages: [{ role: 'user', content: 'q' }] }, 'model: "gpt-4o" is not served here'],
    ];
    for (const [body, message] of cases) {
      const response = await h.call(token, 'POST', '/v1/chat/completions', body);
      expect(response.status, message).toBe(400);
      const { error } = await json(response);
      expect(error.code).toBe('invalid_request');
      expect(error.message).toContain(message);
    }
  });

  it('answers a chat request still waiting when the server closes with 503 shutting_down', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const pending = h.call(token, 'POST', '/v1/chat/completions', { model: 'rlm', messages: [{ role: 'user', content: 'q' }] });
    await h.claimWhenQueued();
    const closed = h.app.close();
    const response = await pending;
    await closed;
    expect(response.status).toBe(503);
    expect((await json(response)).error.code).toBe('shutting_down');
  });
});
