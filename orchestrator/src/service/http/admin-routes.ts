/**
 * The operators' API under `/v1/admin` (authenticated as every `/v1` route, and then only for an
 * admin token: `rlm serve tokens create --team T --admin`; any other token gets 403 `forbidden`):
 *
 *   GET /v1/admin/workers   → { object: 'list', data: [{ id, host, capacity, running, draining,
 *                              started_at, last_heartbeat_at }] }: the worker processes that sent a
 *                              heartbeat in the last five minutes, by id
 */
import type { FastifyInstance } from 'fastify';
import { ServiceError, type ServiceStore, type WorkerRecord } from '../service-types.js';
import { bearerToken } from './auth.js';

/** Workers silent for longer are left out of the list (their process is gone; their row stays until one with that id starts again). */
export const WORKER_LIST_STALE_MS = 5 * 60_000;

export function registerAdminRoutes(v1: FastifyInstance, deps: { store: ServiceStore }): void {
  const { store } = deps;
  v1.register(
    async (admin) => {
      admin.addHook('onRequest', async (request) => {
        const token = bearerToken(request.headers.authorization);
        if (token === undefined || !(await store.isAdminToken(token)))
          throw new ServiceError('forbidden', 'this route needs an admin token (rlm serve tokens create --team TEAM --admin)');
      });
      admin.get('/workers', async () => ({ object: 'list', data: (await store.listWorkers({ staleMs: WORKER_LIST_STALE_MS })).map(publicWorker) }));
    },
    { prefix: '/admin' },
  );
}

function publicWorker(worker: WorkerRecord) {
  return {
    id: worker.id,
    host: worker.host,
    capacity: worker.capacity,
    running: worker.running,
    draining: worker.draining,
    started_at: new Date(worker.startedAt).toISOString(),
    last_heartbeat_at: new Date(worker.lastHeartbeatAt).toISOString(),
  };
}
