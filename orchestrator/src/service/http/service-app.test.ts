import { once } from 'node:events';
import { type AddressInfo, connect } from 'node:net';
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

describe('the service app: request ids, errors, auth, drain, operations', () => {
  it('gives every request an id, echoes it, and keeps a sane incoming x-request-id', async () => {
    const h = await start();
    // /metrics: /healthz and /readyz are logged only when they fail (probed every few seconds).
    const generated = await h.call(null, 'GET', '/metrics');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const kept = await h.call(null, 'GET', '/metrics', undefined, { 'x-request-id': 'trace-abc.123' });
    expect(kept.headers.get('x-request-id')).toBe('trace-abc.123');
    const insane = await h.call(null, 'GET', '/metrics', undefined, { 'x-request-id': 'a b<script>' });
    expect(insane.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(h.logs.some((line) => line.includes('"reqId":"trace-abc.123"'))).toBe(true);
  });

  it('answers an unknown route with 404 not_found in the error shape, counted under route "unknown"', async () => {
    const h = await start();
    const response = await h.call(null, 'GET', '/nope/at/all?token=secret');
    expect(response.status).toBe(404);
    const body = await json(response);
    expect(body).toEqual({ error: { code: 'not_found', message: 'no route GET /nope/at/all' } });
    const metrics = await (await h.call(null, 'GET', '/metrics')).text();
    expect(metrics).toMatch(/rlm_http_requests_total\{method="GET",route="unknown",code="404"\} 1/);
  });

  it('refuses a request without a token, with a bad one and with a revoked one: 401 unauthorized with WWW-Authenticate', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const missing = await h.call(null, 'GET', '/v1/runs');
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    expect((await json(missing)).error.code).toBe('unauthorized');

    const malformed = await h.call(null, 'GET', '/v1/runs', undefined, { authorization: `Basic ${token}` });
    expect(malformed.status).toBe(401);

    const bad = await h.call('rlm_not-a-real-token-at-all', 'GET', '/v1/runs');
    expect(bad.status).toBe(401);
    expect((await json(bad)).error).toEqual({ code: 'unauthorized', message: 'invalid or revoked token' });

    expect((await h.call(token, 'GET', '/v1/runs')).status).toBe(200);
    const [record] = await h.store.listTokens('alpha');
    expect(await h.store.revokeToken(record!.id)).toBe(true);
    const revoked = await h.call(token, 'GET', '/v1/runs');
    expect(revoked.status).toBe(401);
    expect((await json(revoked)).error.code).toBe('unauthorized');

    // The token never reaches a log line, nor the bad one.
    expect(h.logs.join('\n')).not.toContain(token);
    expect(h.logs.join('\n')).not.toContain('rlm_not-a-real-token-at-all');
  });

  it('lists the workers on GET /v1/admin/workers for an admin token only: 403 forbidden for a team token, 401 without one', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const admin = await h.store.createToken('alpha', { admin: true });
    await h.store.heartbeatWorker({ id: 'w-1', host: 'machine-1', capacity: 4, running: 2, draining: false, startedAt: Date.now() });
    const listed = await h.call(admin.token, 'GET', '/v1/admin/workers');
    expect(listed.status).toBe(200);
    expect(await json(listed)).toEqual({
      object: 'list',
      data: [{ id: 'w-1', host: 'machine-1', capacity: 4, running: 2, draining: false, started_at: expect.any(String), last_heartbeat_at: expect.any(String) }],
    });
    const refused = await h.call(token, 'GET', '/v1/admin/workers');
    expect(refused.status).toBe(403);
    expect((await json(refused)).error.code).toBe('forbidden');
    expect((await h.call(null, 'GET', '/v1/admin/workers')).status).toBe(401);
  });

  it('answers malformed JSON with 400 invalid_request', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const response = await h.call(token, 'POST', '/v1/runs', '{"query": "hi",');
    expect(response.status).toBe(400);
    expect(await json(response)).toEqual({ error: { code: 'invalid_request', message: 'the request body is not valid JSON' } });
  });

  it('answers a body that is not JSON by its content type with 400 saying to send JSON', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const form = await h.call(token, 'POST', '/v1/runs', 'query=hi', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(400);
    expect(await json(form)).toEqual({ error: { code: 'invalid_request', message: 'unsupported Content-Type; send the body as application/json' } });
    const text = await h.call(token, 'POST', '/v1/runs', 'hi', { 'content-type': 'text/plain' });
    expect((await json(text)).error).toEqual({ code: 'invalid_request', message: 'body: must be an object' });
  });

  it('answers a body above maxBodyBytes with 413 payload_too_large', async () => {
    const h = await start({ settings: { maxBodyBytes: 10_000 } });
    const { token } = await h.team('alpha');
    const response = await h.call(token, 'POST', '/v1/runs', { query: 'q', context: 'x'.repeat(20_000) });
    expect(response.status).toBe(413);
    const body = await json(response);
    expect(body.error.code).toBe('payload_too_large');
    expect(body.error.message).toContain('10000 bytes');
    expect(await h.store.listRuns((await h.store.teamByName('alpha'))!.id, {})).toMatchObject({ runs: [] });
  });

  it('names the offending fields of a body that does not match', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    const response = await h.call(token, 'POST', '/v1/runs', { query: '', language: 'ruby', limits: { maxIterations: 2.5, maxIteration: 3 } });
    expect(response.status).toBe(400);
    const { error } = await json(response);
    expect(error.code).toBe('invalid_request');
    expect(error.message).toContain('query: must not be empty');
    expect(error.message).toContain('language: must be one of "javascript", "python"');
    expect(error.message).toContain('limits.maxIterations: must be an integer');
    expect(error.message).toContain('limits.maxIteration: is not a known field');

    const missing = await h.call(token, 'POST', '/v1/runs', {});
    expect((await json(missing)).error.message).toBe('query: is required');
    const notObject = await h.call(token, 'POST', '/v1/runs', [1, 2]);
    expect((await json(notObject)).error.message).toBe('body: must be an object');
  });

  it('passes a store failure on as the store worded it (a closed database: 503 unavailable)', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    await h.store.close();
    const response = await h.call(token, 'GET', '/v1/runs');
    expect(response.status).toBe(503);
    expect((await json(response)).error.code).toBe('unavailable');
  });

  it('serves /healthz, /readyz (200 when the database and Docker answer, 503 naming what is down) and /metrics', async () => {
    let docker = true;
    const h = await start({ readiness: async () => ({ database: true, docker }) });
    expect(await json(await h.call(null, 'GET', '/healthz'))).toEqual({ status: 'ok' });
    const ready = await h.call(null, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(await json(ready)).toEqual({ status: 'ready', checks: { database: true, docker: true } });
    docker = false;
    const notReady = await h.call(null, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(await json(notReady)).toEqual({
      error: { code: 'unavailable', message: 'not ready: the Docker engine did not answer' },
      checks: { database: true, docker: false },
    });
    const metrics = await h.call(null, 'GET', '/metrics');
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    const text = await metrics.text();
    expect(text).toMatch(/rlm_http_requests_total\{method="GET",route="\/readyz",code="503"\} 1/);
    expect(text).toMatch(/rlm_http_requests_total\{method="GET",route="\/readyz",code="200"\} 1/);
    expect(text).toContain('rlm_runs{status="queued"} 0');
  });

  it('counts requests by route pattern, never by raw URL', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    await h.call(token, 'GET', '/v1/runs/run_doesnotexist');
    await h.call(token, 'GET', '/v1/runs/run_another');
    const text = await (await h.call(null, 'GET', '/metrics')).text();
    expect(text).toMatch(/rlm_http_requests_total\{method="GET",route="\/v1\/runs\/:id",code="404"\} 2/);
    expect(text).not.toContain('run_doesnotexist');
  });

  it('once draining answers 503 shutting_down with Retry-After to everything but /healthz and /metrics, and /readyz 503', async () => {
    const h = await start();
    const { token } = await h.team('alpha');
    expect(h.app.rlmDraining()).toBe(false);
    h.app.rlmDrain();
    expect(h.app.rlmDraining()).toBe(true);
    for (const [method, path] of [
      ['POST', '/v1/runs'],
      ['GET', '/v1/runs'],
      ['GET', '/v1/models'],
      ['GET', '/nope'],
    ] as const) {
      const response = await h.call(token, method, path, method === 'POST' ? { query: 'q' } : undefined);
      expect(response.status, path).toBe(503);
      expect(response.headers.get('retry-after'), path).toBe('5');
      expect((await json(response)).error.code, path).toBe('shutting_down');
    }
    expect((await h.call(null, 'GET', '/healthz')).status).toBe(200);
    expect((await h.call(null, 'GET', '/metrics')).status).toBe(200);
    const readyz = await h.call(null, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect((await json(readyz)).error.code).toBe('shutting_down');
  });

  it('closes without waiting for a connection that never sent a request', async () => {
    const h = await start();
    const { port } = h.app.server.address() as AddressInfo;
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    const closedByServer = once(socket, 'close');
    await h.close();
    await closedByServer;
  });

  it('drains when the isDraining option says so', async () => {
    let draining = false;
    const { createServiceApp } = await import('./service-app.js');
    const h = await start();
    const app = await createServiceApp({
      store: h.store,
      notices: h.notices,
      metrics: new (await import('../service-metrics.js')).ServiceMetrics(),
      settings: (await import('./http-test-harness.js')).TEST_SETTINGS,
      logger: (await import('pino')).pino({ level: 'silent' }),
      readiness: async () => ({ database: true, docker: true }),
      isDraining: () => draining,
    });
    try {
      expect((await app.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(401);
      draining = true;
      const drained = await app.inject({ method: 'GET', url: '/v1/models' });
      expect(drained.statusCode).toBe(503);
      expect(drained.json().error.code).toBe('shutting_down');
    } finally {
      await app.close();
    }
  });

  it('calls registerPages with the root instance, its routes under the same error handling', async () => {
    const { createServiceApp } = await import('./service-app.js');
    const h = await start();
    const app = await createServiceApp({
      store: h.store,
      notices: h.notices,
      metrics: h.metrics,
      settings: (await import('./http-test-harness.js')).TEST_SETTINGS,
      logger: (await import('pino')).pino({ level: 'silent' }),
      readiness: async () => ({ database: true, docker: true }),
      registerPages: (root) => {
        root.get('/', async (_request, reply) => reply.type('text/html').send('<p>page</p>'));
        root.get('/runs/:id', async () => {
          throw new Error('a page bug');
        });
      },
    });
    try {
      expect((await app.inject({ method: 'GET', url: '/' })).body).toBe('<p>page</p>');
      // An unexpected error is a 500 that says nothing of it but the request id (the log has it).
      const failed = await app.inject({ method: 'GET', url: '/runs/run_x', headers: { 'x-request-id': 'req-500' } });
      expect(failed.statusCode).toBe(500);
      expect(failed.json()).toEqual({ error: { code: 'internal', message: 'internal error; quote request id req-500 to the operator' } });
    } finally {
      await app.close();
    }
  });
});
