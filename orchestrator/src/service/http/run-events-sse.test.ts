import { afterEach, describe, expect, it } from 'vitest';
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

async function queuedRun(h: Harness, token: string): Promise<string> {
  const response = await h.call(token, 'POST', '/v1/runs', { query: 'q' });
  expect(response.status).toBe(202);
  return (await json(response)).id;
}

async function openEvents(h: Harness, token: string, runId: string, query = '', headers: Record<string, string> = {}): Promise<SseReader> {
  const response = await h.call(token, 'GET', `/v1/runs/${runId}/events${query}`, undefined, headers);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
  return new SseReader(response);
}

describe('GET /v1/runs/:id/events', () => {
  it('replays the stored events, then follows the live ones, and ends after `finished`', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    await h.claim();
    const stream = await openEvents(h, token, id);
    expect(await stream.next()).toEqual({ id: '1', event: 'queued', data: expect.any(String) });
    expect(await stream.next()).toMatchObject({ id: '2', event: 'started' });

    await h.emit(id, [
      { type: 'turn_start', data: { turn: 1 } },
      { type: 'model_response', data: { turn: 1, text: 'line one\nline two' } },
    ]);
    expect(await stream.next()).toEqual({ id: '3', event: 'turn_start', data: '{"turn":1}' });
    const response = await stream.next();
    expect(response).toMatchObject({ id: '4', event: 'model_response' });
    expect(JSON.parse(response!.data)).toEqual({ turn: 1, text: 'line one\nline two' });

    await h.finish(id, { status: 'succeeded', answer: '42', iterations: 1 });
    const finished = await stream.next();
    expect(finished).toMatchObject({ id: '5', event: 'finished' });
    expect(JSON.parse(finished!.data)).toMatchObject({ status: 'succeeded', answer: '42', iterations: 1 });
    expect(await stream.next()).toBeNull();
    await eventually(() => (h.subscriptions() === 0 ? true : undefined), 'the stream to unsubscribe');
  });

  it('resumes after Last-Event-ID (the header, else ?last_event_id=)', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    await h.claim();
    await h.emit(id, [
      { type: 'turn_start', data: { turn: 1 } },
      { type: 'turn_start', data: { turn: 2 } },
    ]);
    await h.finish(id, { status: 'succeeded', answer: 'a' });

    const byHeader = await (await openEvents(h, token, id, '?last_event_id=1', { 'last-event-id': '3' })).rest();
    expect(byHeader.map((m) => [m.id, m.event])).toEqual([
      ['4', 'turn_start'],
      ['5', 'finished'],
    ]);
    const byQuery = await (await openEvents(h, token, id, '?last_event_id=2')).rest();
    expect(byQuery.map((m) => m.id)).toEqual(['3', '4', '5']);
    const afterAll = await (await openEvents(h, token, id, '', { 'last-event-id': '5' })).rest();
    expect(afterAll).toEqual([]);

    const bad = await h.call(token, 'GET', `/v1/runs/${id}/events`, undefined, { 'last-event-id': 'abc' });
    expect(bad.status).toBe(400);
    expect((await json(bad)).error.message).toContain('Last-Event-ID');
  });

  it('replays a run that already ended and ends', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    await h.call(token, 'POST', `/v1/runs/${id}/cancel`);
    const events = await (await openEvents(h, token, id)).rest();
    expect(events.map((m) => m.event)).toEqual(['queued', 'finished']);
    expect(JSON.parse(events[1]!.data)).toMatchObject({ status: 'cancelled' });
  });

  it('follows a cancel of a queued run to its end', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    const stream = await openEvents(h, token, id);
    expect(await stream.next()).toMatchObject({ event: 'queued' });
    await h.call(token, 'POST', `/v1/runs/${id}/cancel`);
    expect(await stream.next()).toMatchObject({ event: 'finished' });
    expect(await stream.next()).toBeNull();
  });

  it('sends heartbeat comments while nothing happens, and re-reads the store even when no notice comes', async () => {
    const h = await start({ heartbeatMs: 50 });
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    await h.claim();
    const stream = await openEvents(h, token, id);
    await stream.next();
    await stream.next();
    const pending = stream.next();
    await eventually(() => (stream.comments.includes('keep-alive') ? true : undefined), 'a heartbeat comment');
    // Appended without a notice (as by another process): the periodic re-read finds it.
    await h.store.appendEvents(id, [{ type: 'turn_start', data: { turn: 1 } }]);
    expect(await pending).toMatchObject({ id: '3', event: 'turn_start' });
  });

  it('lets go of everything when the client goes away', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    const stream = await openEvents(h, token, id);
    await stream.next();
    expect(h.subscriptions()).toBe(1);
    await stream.cancel();
    await eventually(() => (h.subscriptions() === 0 ? true : undefined), 'the stream to unsubscribe');
    await eventually(
      async () => ((await (await h.call(null, 'GET', '/metrics')).text()).includes('route="/v1/runs/:id/events",code="200"} 1') ? true : undefined),
      'the stream to be counted in /metrics',
    );
    expect(h.logs.filter((line) => /"level":(50|60)/.test(line))).toEqual([]);
  });

  it('ends open streams when the server closes', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const id = await queuedRun(h, token);
    const stream = await openEvents(h, token, id);
    await stream.next();
    await h.close();
    expect(await stream.next()).toBeNull();
  });
});
