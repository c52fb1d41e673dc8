import { afterEach, describe, expect, it } from 'vitest';
import { type Harness, startHarness, json } from './http-test-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(options: Parameters<typeof startHarness>[0] = {}): Promise<Harness> {
  harness = await startHarness(options);
  return harness;
}

async function submit(h: Harness, token: string, body: unknown): Promise<string> {
  const response = await h.call(token, 'POST', '/v1/runs', body);
  expect(response.status, await response.clone().text()).toBe(202);
  const answer = await json(response);
  expect(answer.status).toBe('queued');
  expect(response.headers.get('location')).toBe(`/v1/runs/${answer.id}`);
  return answer.id;
}

describe('the runs API', () => {
  it('takes a run (202 queued), tells the workers, and shows it through its life: queued, running, succeeded, with usage and trajectory', async () => {
    const h = await start();
    const { team, token } = await h.team('alpha');
    const id = await submit(h, token, { query: 'How many?', context: 'one two three', contexts: [['a'], { b: 1 }] });
    expect(h.published).toContainEqual({ kind: 'run_queued', runId: id, teamId: team.id });
    expect(await h.store.getRunInput(id)).toEqual({ query: 'How many?', context: 'one two three', contexts: [['a'], { b: 1 }] });

    const queued = await json(await h.call(token, 'GET', `/v1/runs/${id}`));
    expect(queued).toMatchObject({
      id,
      object: 'run',
      status: 'queued',
      query: 'How many?',
      model: 'rlm',
      language: 'javascript',
      source: 'runs',
      // The server's limits are the defaults of a run that asks for none.
      limits: { maxIterations: 20, timeoutSeconds: 600, maxCostUsd: 5 },
      answer: null,
      error: null,
      usage: {},
      cost_usd: null,
      iterations: 0,
      cancel_requested: false,
      started_at: null,
      finished_at: null,
    });
    expect(new Date(queued.created_at).toISOString()).toBe(queued.created_at);

    const trajectoryBefore = await h.call(token, 'GET', `/v1/runs/${id}/trajectory`);
    expect(trajectoryBefore.status).toBe(404);
    expect((await json(trajectoryBefore)).error.code).toBe('not_found');

    await h.claim();
    expect(await json(await h.call(token, 'GET', `/v1/runs/${id}`))).toMatchObject({ status: 'running', started_at: expect.any(String) });

    const trajectory = '{"type":"run_start"}\n{"type":"run_end"}\n';
    await h.finish(id, {
      status: 'succeeded',
      answer: 'three',
      usage: { 'fake-root': { calls: 2, inputTokens: 100, outputTokens: 20, cacheReadTokens: 10, cacheWriteTokens: 0, costUsd: 0.25 } },
      costUsd: 0.25,
      iterations: 2,
      trajectory,
    });
    const done = await json(await h.call(token, 'GET', `/v1/runs/${id}`));
    expect(done).toMatchObject({
      status: 'succeeded',
      answer: 'three',
      error: null,
      usage: { 'fake-root': { calls: 2, input_tokens: 100, output_tokens: 20, cache_read_tokens: 10, cache_write_tokens: 0, cost_usd: 0.25 } },
      cost_usd: 0.25,
      iterations: 2,
      finished_at: expect.any(String),
    });
    const ndjson = await h.call(token, 'GET', `/v1/runs/${id}/trajectory`);
    expect(ndjson.status).toBe(200);
    expect(ndjson.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(await ndjson.text()).toBe(trajectory);
  });

  it('passes a failed run’s error on exactly as the worker stored it', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await submit(h, token, { query: 'q' });
    await h.claim();
    await h.finish(id, { status: 'failed', error: 'model_error: the provider answered 500 (request req_123)' });
    expect(await json(await h.call(token, 'GET', `/v1/runs/${id}`))).toMatchObject({
      status: 'failed',
      error: 'model_error: the provider answered 500 (request req_123)',
    });
  });

  it('caps asked-for limits by the server’s ceilings and maxCostUsd by what is left of the team’s budget', async () => {
    const h = await start();
    const { token } = await h.team('alpha', { budgetUsd: 2 });
    const first = await submit(h, token, { query: 'q', limits: { maxIterations: 500, maxDepth: 2, timeoutSeconds: 30, maxCostUsd: 100 } });
    expect((await json(await h.call(token, 'GET', `/v1/runs/${first}`))).limits).toEqual({
      maxIterations: 20,
      maxDepth: 2,
      timeoutSeconds: 30,
      maxCostUsd: 2,
    });
    await h.claim();
    await h.finish(first, { status: 'succeeded', answer: 'a', costUsd: 1.5 });
    const second = await submit(h, token, { query: 'q' });
    expect((await json(await h.call(token, 'GET', `/v1/runs/${second}`))).limits.maxCostUsd).toBe(0.5);
  });

  it('refuses a run once the team’s budget is spent: 429 budget_exhausted', async () => {
    const h = await start();
    const { token } = await h.team('alpha', { budgetUsd: 1 });
    const id = await submit(h, token, { query: 'q' });
    await h.claim();
    await h.finish(id, { status: 'succeeded', answer: 'a', costUsd: 1 });
    const refused = await h.call(token, 'POST', '/v1/runs', { query: 'again' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-should-retry')).toBe('false');
    const { error } = await json(refused);
    expect(error.code).toBe('budget_exhausted');
  });

  it('refuses a run beyond the team’s queue: 429 queue_full with Retry-After', async () => {
    const h = await start();
    const { token } = await h.team('alpha', { maxQueued: 2 });
    await submit(h, token, { query: 'one' });
    await submit(h, token, { query: 'two' });
    const refused = await h.call(token, 'POST', '/v1/runs', { query: 'three' });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await json(refused)).error.code).toBe('queue_full');
  });

  it('resolves models: rlm, rlm:<name> and a bare configured name; an unknown one is 400, one the team may not use 400 model_not_allowed', async () => {
    const h = await start();
    const { token } = await h.team('alpha', { models: ['fast'] });
    const byId = await submit(h, token, { query: 'q', model: 'rlm:fast', language: 'python' });
    expect(await json(await h.call(token, 'GET', `/v1/runs/${byId}`))).toMatchObject({ model: 'rlm:fast', language: 'python' });
    const byName = await submit(h, token, { query: 'q', model: 'fast' });
    expect((await json(await h.call(token, 'GET', `/v1/runs/${byName}`))).model).toBe('rlm:fast');
    const byDefault = await submit(h, token, { query: 'q', model: 'rlm' });
    expect((await json(await h.call(token, 'GET', `/v1/runs/${byDefault}`))).model).toBe('rlm');

    const unknown = await h.call(token, 'POST', '/v1/runs', { query: 'q', model: 'gpt-9' });
    expect(unknown.status).toBe(400);
    expect((await json(unknown)).error).toEqual({ code: 'invalid_request', message: 'model: "gpt-9" is not served here; use one of rlm, rlm:fast, rlm:big' });
    const forbidden = await h.call(token, 'POST', '/v1/runs', { query: 'q', model: 'rlm:big' });
    expect(forbidden.status).toBe(400);
    expect((await json(forbidden)).error).toEqual({ code: 'model_not_allowed', message: 'model: team "alpha" may not use rlm:big; it may use rlm, rlm:fast' });
  });

  it('lists the team’s runs newest first, filtered by status, in pages', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const other = await h.team('beta');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit(h, token, { query: `q${i}` }));
    await submit(h, other.token, { query: 'not yours' });
    await h.call(token, 'POST', `/v1/runs/${ids[1]}/cancel`);

    const first = await json(await h.call(token, 'GET', '/v1/runs?limit=2'));
    expect(first.object).toBe('list');
    expect(first.data.map((r: { id: string }) => r.id)).toEqual([ids[4], ids[3]]);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = await json(await h.call(token, 'GET', `/v1/runs?limit=2&cursor=${encodeURIComponent(first.next_cursor)}`));
    expect(second.data.map((r: { id: string }) => r.id)).toEqual([ids[2], ids[1]]);
    const third = await json(await h.call(token, 'GET', `/v1/runs?limit=2&cursor=${encodeURIComponent(second.next_cursor)}`));
    expect(third.data.map((r: { id: string }) => r.id)).toEqual([ids[0]]);
    expect(third.next_cursor).toBeNull();

    const cancelled = await json(await h.call(token, 'GET', '/v1/runs?status=cancelled'));
    expect(cancelled.data.map((r: { id: string }) => r.id)).toEqual([ids[1]]);

    const bad = await h.call(token, 'GET', '/v1/runs?status=done&limit=0');
    expect(bad.status).toBe(400);
    const { message } = (await json(bad)).error;
    expect(message).toContain('status: must be one of');
    expect(message).toContain('limit: must be at least 1');
    expect((await h.call(token, 'GET', '/v1/runs?cursor=garbage')).status).toBe(400);
  });

  it('cancels a queued run at once and a running one through its worker; cancelling again changes nothing', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const queued = await submit(h, token, { query: 'q' });
    const cancelled = await h.call(token, 'POST', `/v1/runs/${queued}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(await json(cancelled)).toMatchObject({ id: queued, status: 'cancelled', finished_at: expect.any(String) });
    const again = await h.call(token, 'POST', `/v1/runs/${queued}/cancel`, '', { 'content-type': 'application/json' });
    expect(again.status).toBe(200);
    expect((await json(again)).status).toBe('cancelled');
    // Its followers were told of its `finished` event.
    const events = await h.store.readEvents(queued, 0);
    expect(events.at(-1)?.type).toBe('finished');
    expect(h.published).toContainEqual({ kind: 'run_events', runId: queued, lastSeq: events.at(-1)!.seq });

    const running = await submit(h, token, { query: 'q' });
    await h.claim();
    const asked = await json(await h.call(token, 'POST', `/v1/runs/${running}/cancel`));
    expect(asked).toMatchObject({ status: 'running', cancel_requested: true });
    expect(h.published).toContainEqual({ kind: 'run_cancel', runId: running });
    await h.finish(running, { status: 'cancelled', error: 'cancelled' });
    expect(await json(await h.call(token, 'POST', `/v1/runs/${running}/cancel`))).toMatchObject({ status: 'cancelled', error: 'cancelled' });
  });

  it('answers another team’s run exactly as an unknown one: 404 on every run route', async () => {
    const h = await start();
    const alpha = await h.team('alpha');
    const beta = await h.team('beta');
    const id = await submit(h, alpha.token, { query: 'secret question' });
    await h.claim();
    await h.finish(id, { status: 'succeeded', answer: 'secret answer', trajectory: '{}\n' });
    const unknown = 'run_0000000000000000000000aa';
    for (const [method, suffix] of [
      ['GET', ''],
      ['POST', '/cancel'],
      ['GET', '/trajectory'],
      ['GET', '/events'],
    ] as const) {
      const theirs = await h.call(beta.token, method, `/v1/runs/${id}${suffix}`);
      const none = await h.call(beta.token, method, `/v1/runs/${unknown}${suffix}`);
      expect(theirs.status, suffix).toBe(404);
      expect(none.status, suffix).toBe(404);
      const theirsBody = await json(theirs);
      const noneBody = await json(none);
      expect(theirsBody.error.code).toBe('not_found');
      expect(theirsBody.error.message.replace(id, 'ID')).toBe(noneBody.error.message.replace(unknown, 'ID'));
    }
    expect((await json(await h.call(beta.token, 'GET', '/v1/runs'))).data).toEqual([]);
    // Still the owner's, and not cancelled by the other team's try.
    expect((await json(await h.call(alpha.token, 'GET', `/v1/runs/${id}`))).status).toBe('succeeded');
  });
});
