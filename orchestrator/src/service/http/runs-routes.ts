/**
 * The runs API (under `/v1`, authenticated; see service-app.ts):
 *
 *   POST /v1/runs                  { query, context?, contexts?, model?, language?, limits? } → 202 { id, status: 'queued' }
 *   GET  /v1/runs?status=&limit=&cursor=   → { object: 'list', data: [run…], next_cursor } (newest first)
 *   GET  /v1/runs/:id              → the run (run-view.ts)
 *   POST /v1/runs/:id/cancel       → the run as it is after the request (idempotent)
 *   GET  /v1/runs/:id/trajectory   → application/x-ndjson; 404 while there is none
 *   GET  /v1/runs/:id/events       → text/event-stream: `id: <seq>`, `event: <type>`, `data: <json>`,
 *                                    from the start or after `Last-Event-ID` (header) / `?last_event_id=`,
 *                                    live until the `finished` event, which ends the stream
 *
 * Another team's run answers exactly as an unknown one: 404 `not_found`.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ServiceError, type ServiceNotices, type ServiceStore, type ServeSettings } from '../service-types.js';
import { teamOf } from './auth.js';
import { parseRequest } from './http-errors.js';
import { EventsQueryString, ListRunsQueryString, RunIdParams, SubmitRunBody } from './request-schemas.js';
import { followRunEvents } from './run-follower.js';
import { cancelRun, submitRun } from './run-submission.js';
import { publicRun, type PublicRunPage } from './run-view.js';
import { startSse } from './sse.js';

export interface RoutesDeps {
  store: ServiceStore;
  notices: ServiceNotices;
  settings: ServeSettings;
  /** Milliseconds between SSE heartbeat comments (and re-reads of the store while a stream waits). */
  heartbeatMs: number;
  /** Aborts when the server is closing: open streams and waits end. */
  closing: AbortSignal;
}

function notFound(id: string): ServiceError {
  return new ServiceError('not_found', `run ${id} not found`);
}

/** Registers the runs routes on the `/v1` scope. */
export function registerRunsRoutes(app: FastifyInstance, deps: RoutesDeps): void {
  const { store } = deps;

  const ownRun = async (request: FastifyRequest) => {
    const { id } = parseRequest(RunIdParams, request.params, 'path');
    const run = await store.getRun(teamOf(request).id, id);
    if (run === null) throw notFound(id);
    return run;
  };

  app.post('/runs', async (request, reply) => {
    const body = parseRequest(SubmitRunBody, request.body, 'body');
    const input: { query: string; context?: unknown; contexts?: unknown[] } = { query: body.query };
    if (body.context !== undefined) input.context = body.context;
    if (body.contexts !== undefined) input.contexts = body.contexts;
    const { run } = await submitRun(deps, teamOf(request), { input, model: body.model, language: body.language, limits: body.limits, source: 'runs' });
    request.log.info({ runId: run.id }, 'run queued');
    return reply.code(202).header('location', `/v1/runs/${run.id}`).send({ id: run.id, status: 'queued' });
  });

  app.get('/runs', async (request) => {
    const query = parseRequest(ListRunsQueryString, request.query, 'query');
    const page = await store.listRuns(teamOf(request).id, query);
    const answer: PublicRunPage = { object: 'list', data: page.runs.map(publicRun), next_cursor: page.nextCursor };
    return answer;
  });

  app.get('/runs/:id', async (request) => publicRun(await ownRun(request)));

  app.post('/runs/:id/cancel', async (request) => {
    const { id } = parseRequest(RunIdParams, request.params, 'path');
    const run = await cancelRun(deps, teamOf(request).id, id);
    if (run === null) throw notFound(id);
    request.log.info({ runId: id, status: run.status }, 'cancel requested');
    return publicRun(run);
  });

  app.get('/runs/:id/trajectory', async (request, reply) => {
    const run = await ownRun(request);
    const trajectory = await store.getTrajectory(run.id);
    if (trajectory === null) throw new ServiceError('not_found', `run ${run.id} has no trajectory (yet): one is written when the run ends`);
    return reply.type('application/x-ndjson; charset=utf-8').send(trajectory);
  });

  // No HEAD twin: it would follow the run to its end only to discard the stream.
  app.get('/runs/:id/events', { exposeHeadRoute: false }, async (request, reply) => {
    const run = await ownRun(request);
    const afterSeq = lastEventId(request);
    const sse = startSse(reply, { heartbeatMs: deps.heartbeatMs, closing: deps.closing });
    void (async () => {
      try {
        for await (const event of followRunEvents(deps, run.id, afterSeq, { signal: sse.signal, pollMs: deps.heartbeatMs })) {
          await sse.send({ id: event.seq, event: event.type, data: JSON.stringify(event.data) });
        }
      } catch (error) {
        request.log.error({ err: error, runId: run.id }, 'event stream failed');
        sse.comment('error: the stream failed; reconnect with Last-Event-ID to resume');
      } finally {
        sse.end();
      }
    })();
    return reply;
  });
}

/** Where a stream resumes: the `Last-Event-ID` header (what EventSource sends on reconnect), else `?last_event_id=`, else 0. */
function lastEventId(request: FastifyRequest): number {
  const header = request.headers['last-event-id'];
  if (typeof header === 'string' && header.trim() !== '') {
    const value = Number(header.trim());
    if (!Number.isSafeInteger(value) || value < 0) throw new ServiceError('invalid_request', 'Last-Event-ID: must be a non-negative integer (an event id)');
    return value;
  }
  return parseRequest(EventsQueryString, request.query, 'query').last_event_id ?? 0;
}
