import { describe, expect, it } from 'vitest';
import { publicRun } from '../run-view.js';
import type { RunRecord } from '../../service-types.js';
import { ApiErrorBody, ApiRun, ApiRunPage, parseApi } from './api-schemas.js';

const record: RunRecord = {
  id: 'run_0123456789abcdefghijklmn',
  teamId: 'team_x',
  status: 'succeeded',
  query: 'How many?',
  model: null,
  language: 'javascript',
  limits: { maxIterations: 5 },
  source: 'runs',
  answer: '42',
  error: null,
  usage: { 'gpt-5-mini': { calls: 2, inputTokens: 100, outputTokens: 20, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.001 } },
  costUsd: 0.001,
  iterations: 2,
  createdAt: Date.UTC(2026, 10, 21, 10, 0),
  startedAt: Date.UTC(2026, 10, 21, 10, 1),
  finishedAt: Date.UTC(2026, 10, 21, 10, 2),
  attempts: 1,
  cancelRequested: false,
  workerId: null,
  leaseExpiresAt: null,
};

describe('the web page’s API schemas', () => {
  it('read a run exactly as the server serializes it (http/run-view.ts)', () => {
    const run = parseApi(ApiRun, JSON.parse(JSON.stringify(publicRun(record))), 'GET /v1/runs/:id');
    expect(run).toMatchObject({
      id: record.id,
      status: 'succeeded',
      query: 'How many?',
      model: 'rlm',
      answer: '42',
      cost_usd: 0.001,
      started_at: '2026-11-21T10:01:00.000Z',
    });
    const queued = publicRun({ ...record, status: 'queued', answer: null, usage: {}, costUsd: null, startedAt: null, finishedAt: null });
    expect(parseApi(ApiRunPage, { object: 'list', data: [queued], next_cursor: null }, 'GET /v1/runs').data[0]?.status).toBe('queued');
  });

  it('name the field that does not match', () => {
    expect(() => parseApi(ApiRun, { ...publicRun(record), status: 'paused' }, 'GET /v1/runs/:id')).toThrow(/GET \/v1\/runs\/:id[\s\S]*status/);
  });

  it('read the service’s error body', () => {
    expect(ApiErrorBody.parse({ error: { code: 'unauthorized', message: 'invalid or revoked token' } }).error.code).toBe('unauthorized');
    expect(ApiErrorBody.safeParse({ error: 'nope' }).success).toBe(false);
  });
});
