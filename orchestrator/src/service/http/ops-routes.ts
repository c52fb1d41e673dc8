/**
 * Operations routes, unauthenticated and answered even while draining:
 *
 *   GET /healthz   200 { status: 'ok' } while the process serves HTTP
 *   GET /readyz    200 { status: 'ready', checks } when the database and Docker answer; else 503 with
 *                  `error` and `checks` saying which is down (and 503 `shutting_down` while draining)
 *   GET /metrics   the Prometheus text of the service's registry
 */
import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from '../service-metrics.js';
import { ServiceError } from '../service-types.js';
import { errorBody, sendServiceError } from './http-errors.js';

export interface Readiness {
  database: boolean;
  docker: boolean;
}

export interface OpsDeps {
  metrics: ServiceMetrics;
  /** Whether the database and the Docker engine answer; must honour `signal`. */
  readiness: (signal: AbortSignal) => Promise<Readiness>;
  isDraining: () => boolean;
}

/** How long /readyz waits for its checks before calling them down. */
const READINESS_TIMEOUT_MS = 5000;

export const OPS_ROUTES: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

export function registerOpsRoutes(app: FastifyInstance, deps: OpsDeps): void {
  // Probed every few seconds by orchestrators (compose, Kubernetes): logged only when it fails.
  app.get('/healthz', { logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { logLevel: 'warn' }, async (request, reply) => {
    if (deps.isDraining()) return sendServiceError(reply, new ServiceError('shutting_down', 'the server is shutting down'));
    let checks: Readiness;
    try {
      checks = await deps.readiness(AbortSignal.any([AbortSignal.timeout(READINESS_TIMEOUT_MS), abortOnClose(reply.raw)]));
    } catch (error) {
      request.log.warn({ err: error }, 'readiness check failed');
      checks = { database: false, docker: false };
    }
    if (checks.database && checks.docker) return { status: 'ready', checks };
    const down = [checks.database ? undefined : 'the database', checks.docker ? undefined : 'the Docker engine'].filter(Boolean).join(' and ');
    return reply
      .code(503)
      .header('retry-after', '5')
      .send({ ...errorBody('unavailable', `not ready: ${down} did not answer`), checks });
  });

  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await deps.metrics.render();
    return reply.type(contentType).send(body);
  });
}

/** Aborts when the response closes before it was sent: the client went away. */
function abortOnClose(raw: { once(event: 'close', listener: () => void): unknown }): AbortSignal {
  const controller = new AbortController();
  raw.once('close', () => controller.abort());
  return controller.signal;
}
