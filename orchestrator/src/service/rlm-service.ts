/**
 * One `rlm serve` process: the store, the notices, a worker running claimed runs through the
 * engine on the warm pool, and the HTTP app, assembled and shut down in the right order. The CLI
 * (cli/commands/serve-command.ts) builds the parts that need the outside world (the database, Docker,
 * the providers) and hands them here; tests do the same with fakes of the providers only.
 */
import os from 'node:os';
import type Dockerode from 'dockerode';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AbortedError, errorMessage } from '../errors.js';
import type { SandboxPool } from '../sandbox/pool/sandbox-pool.js';
import { pingDocker } from '../sandbox/docker-client.js';
import { createServiceApp } from './http/service-app.js';
import { registerWebPages } from './http/web-page.js';
import { createServiceNotices } from './service-notices.js';
import { ServiceMetrics } from './service-metrics.js';
import { type RunEngine, type RunWorker, type ServeSettings, ServiceError, type ServiceNotices, type ServiceStore } from './service-types.js';
import { createRunWorker } from './worker/run-worker.js';

/** How often a serving process with `settings.retainMs` prunes finished runs (after the prune at start). */
export const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/** What one process does: `all` (one machine: the API and a worker), `api` (the HTTP API only), `worker` (claims and runs runs; serves only /healthz, /readyz and /metrics). */
export type ServeRole = 'all' | 'api' | 'worker';

export interface RlmServiceOptions {
  settings: ServeSettings;
  /** Default `all`. */
  role?: ServeRole;
  /** Opened by the caller; the service closes it. */
  store: ServiceStore;
  /** Runs the claimed runs; required unless the role is `api`. */
  engine?: RunEngine;
  /** How processes hear of new runs, events and cancels; default in-process only. The service closes it when it has a `close()`. */
  notices?: ServiceNotices & { close?: () => Promise<void> };
  /** The worker's id in leases, the workers table and the metrics' `worker` label; default `<host>-<pid>`. */
  workerId?: string;
  /** The pool the engine takes sandboxes from; the service closes it last, after the runs. */
  pool?: SandboxPool;
  /** Asked by /readyz; without it Docker counts as reachable (tests with in-process REPLs). */
  docker?: Dockerode;
  logger: Logger;
  /** Directory for the runs' trajectories while they run (each run's own temporary directory under it). */
  trajectoryRoot?: string;
  /** Milliseconds between two prunes when `settings.retainMs` is set (default {@link PRUNE_INTERVAL_MS}). */
  pruneIntervalMs?: number;
}

/** A started service. `close()` (and `drain`) are safe to call twice. */
export interface RlmService extends AsyncDisposable {
  /** `http://host:port`, as listening. */
  readonly url: string;
  readonly app: FastifyInstance;
  /** Undefined for the `api` role. */
  readonly worker: RunWorker | undefined;
  readonly notices: ServiceNotices;
  readonly metrics: ServiceMetrics;
  readonly store: ServiceStore;
  /**
   * Stops taking work: new requests get 503 `shutting_down`, the worker claims nothing new and its
   * running runs get `graceMs` to finish before they are cancelled; then the HTTP server, the pool
   * (every sandbox removed) and the store close. Resolves when all of it is done.
   */
  drain(graceMs: number): Promise<void>;
  /** drain(0). */
  close(): Promise<void>;
}

/** Starts the worker and the HTTP server on `settings.host:settings.port`. On a failure to listen everything started is closed again. */
export async function startRlmService(options: RlmServiceOptions): Promise<RlmService> {
  const { settings, store, engine, pool, docker, logger } = options;
  const role = options.role ?? 'all';
  if (role !== 'all' && store.kind !== 'postgres')
    throw new ServiceError(
      'invalid_request',
      `--role ${role} needs PostgreSQL (--database postgres://…): the embedded database serves one process on one machine`,
    );
  const notices: ServiceNotices & { close?: () => Promise<void> } =
    options.notices ?? createServiceNotices({ onError: (error) => logger.error({ err: error }, 'a notice listener failed') });
  const workerId = options.workerId ?? `${os.hostname()}-${process.pid}`;
  const metrics = new ServiceMetrics({
    storeStats: () => store.stats(),
    ...(pool ? { poolStats: () => pool.stats() } : {}),
    // Several processes share one database: each worker's series are told apart.
    ...(role !== 'api' && store.kind === 'postgres' ? { worker: workerId } : {}),
  });
  let worker: RunWorker | undefined;
  if (role !== 'api') {
    if (!engine) throw new ServiceError('invalid_request', `the ${role} role runs runs and needs an engine`);
    worker = createRunWorker({
      store,
      engine,
      notices,
      metrics,
      settings,
      logger: logger.child({ component: 'worker' }),
      workerId,
      // The embedded database belongs to one process: at start, no run marked running has a live worker.
      recoverEveryRunning: store.kind === 'embedded',
      // On a shared database the operators see the workers (GET /v1/admin/workers).
      heartbeat: store.kind === 'postgres',
      ...(options.trajectoryRoot ? { trajectoryRoot: options.trajectoryRoot } : {}),
    });
  }
  let draining = false;
  const app = await createServiceApp({
    store,
    notices,
    metrics,
    settings,
    logger,
    isDraining: () => draining,
    api: role !== 'worker',
    readiness: async (signal) => ({
      database: await store.ping(signal).then(
        () => true,
        () => false,
      ),
      docker: docker
        ? await pingDocker(docker, { signal }).then(
            () => true,
            () => false,
          )
        : true,
    }),
    registerPages: (instance) => registerWebPages(instance),
  });
  try {
    await worker?.start();
    await app.listen({ host: settings.host, port: settings.port });
  } catch (error) {
    await worker?.close().catch(() => {});
    await app.close().catch(() => {});
    throw error;
  }
  const retention = role === 'worker' ? undefined : startRetention(store, settings.retainMs, options.pruneIntervalMs ?? PRUNE_INTERVAL_MS, logger);
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : settings.port;
  const url = `http://${settings.host.includes(':') ? `[${settings.host}]` : settings.host}:${port}`;

  let drained: Promise<void> | undefined;
  const drain = (graceMs: number): Promise<void> => {
    drained ??= (async () => {
      draining = true;
      logger.info({ graceMs }, 'draining: new requests get 503; running runs finish or are cancelled');
      // Before the store closes under it: a prune in progress stops after its current batch.
      await retention?.stop();
      // A worker among others hands what outlives its grace back to the queue, for another worker;
      // a lone server has nobody to hand it to and cancels it.
      await worker
        ?.drain(graceMs, { handBack: role === 'worker' })
        .catch((error: unknown) => logger.error({ err: error }, `draining the worker failed: ${errorMessage(error)}`));
      // Open SSE streams and waiting chat completions end once their runs have.
      await app.close().catch((error: unknown) => logger.error({ err: error }, `closing the HTTP server failed: ${errorMessage(error)}`));
      await pool?.close().catch((error: unknown) => logger.error({ err: error }, `closing the sandbox pool failed: ${errorMessage(error)}`));
      await notices.close?.().catch((error: unknown) => logger.error({ err: error }, `closing the notice connection failed: ${errorMessage(error)}`));
      await store.close().catch((error: unknown) => logger.error({ err: error }, `closing the database failed: ${errorMessage(error)}`));
      logger.info('stopped');
    })();
    return drained;
  };
  return {
    url,
    app,
    worker,
    notices,
    metrics,
    store,
    drain,
    close: () => drain(0),
    [Symbol.asyncDispose]: () => drain(0),
  };
}

/**
 * Prunes the runs that finished more than `retainMs` ago: once now (not awaited: a first prune of a
 * large database must not delay the start) and then every `intervalMs`. What each prune deleted is
 * logged; a failure is logged and the next prune tries again. Nothing when `retainMs` is undefined.
 * `stop()` clears the timer and aborts a prune in progress (between its batches), resolving when it
 * has ended; safe to call twice.
 */
function startRetention(store: ServiceStore, retainMs: number | undefined, intervalMs: number, logger: Logger): { stop(): Promise<void> } | undefined {
  if (retainMs === undefined) return undefined;
  const log = logger.child({ component: 'retention' });
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  const prune = () => {
    // A prune that outlasts the interval is not run twice at once.
    if (running !== undefined || stopping.signal.aborted) return;
    const finishedBefore = Date.now() - retainMs;
    running = store
      .pruneRuns({ finishedBefore, signal: stopping.signal })
      .then(
        ({ runs, events }) => {
          const before = new Date(finishedBefore).toISOString();
          if (runs > 0) log.info({ runs, events, finishedBefore: before }, `pruned ${runs} runs (${events} events) finished before ${before}`);
          else log.debug({ finishedBefore: before }, `no run finished before ${before} to prune`);
        },
        (error: unknown) => {
          if (AbortedError.isInstance(error) && stopping.signal.aborted) log.info(errorMessage(error));
          else log.error({ err: error }, `pruning finished runs failed (the next prune tries again): ${errorMessage(error)}`);
        },
      )
      .finally(() => {
        running = undefined;
      });
  };
  prune();
  const timer = setInterval(prune, intervalMs);
  // The timer alone keeps no process alive: the server does, until it is closed.
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      stopping.abort(new Error('the service is stopping'));
      await running;
    },
  };
}
