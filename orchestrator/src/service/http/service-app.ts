/**
 * The HTTP face of `rlm serve`: a Fastify 5 instance with the runs API and the OpenAI-compatible API
 * under `/v1` (bearer tokens), the operations routes (`/healthz`, `/readyz`, `/metrics`), and the web
 * page's routes registered through {@link ServiceAppOptions.registerPages}.
 *
 * Around every route: the service's pino logger with a request id (an incoming `x-request-id` of
 * at most 128 characters `[A-Za-z0-9._:-]` is kept, otherwise a random UUID; echoed in the
 * response's `x-request-id`), a body limit of `settings.maxBodyBytes` (413 `payload_too_large`),
 * every error as `{ "error": { "code", "message" } }` (http-errors.ts), every answered request
 * counted in `metrics.httpRequest` by route pattern (`unknown` for an unknown route), and a drain
 * switch: after `app.rlmDrain()` every request but the operations routes gets 503 `shutting_down`
 * with `Retry-After`, and `/readyz` answers 503. Closing the app (`app.close()`) ends the open event
 * streams and the chat requests still waiting (503) first.
 *
 * The factory resolves once the app is ready (every route registered, the pages' included: none
 * can be added afterwards) and does not listen: the caller does (`await app.listen({ port, host })`).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServiceMetrics } from '../service-metrics.js';
import { ServiceError, type ServeSettings, type ServiceNotices, type ServiceStore } from '../service-types.js';
import { authenticateRequest } from './auth.js';
import { installErrorHandling } from './http-errors.js';
import { registerOpenAiRoutes } from './openai-routes.js';
import { OPS_ROUTES, type Readiness, registerOpsRoutes } from './ops-routes.js';
import { type RoutesDeps, registerRunsRoutes } from './runs-routes.js';
import { registerAdminRoutes } from './admin-routes.js';

export type { Readiness } from './ops-routes.js';

export interface ServiceAppOptions {
  store: ServiceStore;
  notices: ServiceNotices;
  metrics: ServiceMetrics;
  settings: ServeSettings;
  logger: Logger;
  /** Whether the database and the Docker engine answer, for `/readyz`; must give up when `signal` aborts (after 5 s). */
  readiness: (signal: AbortSignal) => Promise<Readiness>;
  /**
   * HOOK FOR THE WEB PAGE (http/web-page*.ts): registers `GET /` and `GET /runs/:id` on the root
   * scope. It runs after the API's routes, under the same request id, drain, error and metrics
   * handling; the page calls the `/v1` API with the token the user pasted.
   */
  registerPages?: (app: FastifyInstance) => void | Promise<void>;
  /** Another drain switch, read at every request (the service's own); either it or {@link ServiceApp.rlmDrain} drains. */
  isDraining?: () => boolean;
  /**
   * Serve the API (`/v1`, the pages); default true. A worker process (`rlm serve --role worker`)
   * serves only `/healthz`, `/readyz` and `/metrics`.
   */
  api?: boolean;
  /** Milliseconds between SSE heartbeat comments (also how often a waiting stream re-reads the store). Default 15 000. */
  heartbeatMs?: number;
}

/** The app, with its drain switch. */
export type ServiceApp = FastifyInstance & {
  /** From now on, every request but `/healthz`, `/readyz` (which answers 503) and `/metrics` gets 503 `shutting_down`. Idempotent. */
  rlmDrain(): void;
  /** Whether the app drains ({@link ServiceApp.rlmDrain} was called, or `options.isDraining` says so). */
  rlmDraining(): boolean;
};

const INCOMING_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Seconds a client is told to wait on a 503 while the server drains (another replica, or this one restarted). */
const DRAIN_RETRY_AFTER_SECONDS = 5;

export async function createServiceApp(options: ServiceAppOptions): Promise<ServiceApp> {
  const { store, notices, metrics, settings } = options;
  const app = Fastify({
    // The service's logger as Fastify's: pino's Logger is Fastify's base logger type.
    loggerInstance: options.logger as FastifyBaseLogger,
    bodyLimit: settings.maxBodyBytes,
    requestIdHeader: false,
    routerOptions: { ignoreTrailingSlash: true },
    // While closing, requests on open keep-alive connections get our 503 (the onRequest hook), not Fastify's own body.
    return503OnClosing: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && INCOMING_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
  });

  let drainCalled = false;
  const external = options.isDraining;
  const isDraining = (): boolean => drainCalled || external?.() === true;
  const closing = new AbortController();
  const dropUnused = trackUnusedConnections(app);
  app.addHook('preClose', async () => {
    closing.abort();
    dropUnused();
    // Once more after Fastify stopped accepting connections (it does right after the preClose hooks).
    setImmediate(dropUnused);
  });

  installErrorHandling(app, { maxBodyBytes: settings.maxBodyBytes });
  installJsonParser(app);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    // Counted when the response closes, which also covers a stream the client walked away from
    // (Fastify's onResponse fires only on a finished response).
    const started = process.hrtime.bigint();
    reply.raw.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.httpRequest(request.method, request.routeOptions.url ?? 'unknown', reply.statusCode, seconds);
    });
    if ((isDraining() || closing.signal.aborted) && !OPS_ROUTES.has(request.routeOptions.url ?? ''))
      throw new ServiceError('shutting_down', 'the server is shutting down; try again shortly', { retryAfterSeconds: DRAIN_RETRY_AFTER_SECONDS });
  });

  registerOpsRoutes(app, { metrics, readiness: options.readiness, isDraining });

  const deps: RoutesDeps = { store, notices, settings, heartbeatMs: options.heartbeatMs ?? 15_000, closing: closing.signal };
  if (options.api !== false) await registerApi(app, deps, options);
  const drainSwitch: Pick<ServiceApp, 'rlmDrain' | 'rlmDraining'> = {
    rlmDrain: () => {
      drainCalled = true;
    },
    rlmDraining: isDraining,
  };
  // Loaded now: a Fastify instance is a thenable (its `then` waits for `ready()`), so an async
  // function returning it would await that anyway; saying so keeps it visible.
  await app.ready();
  // Typed without Fastify's PromiseLike, which would make the promise's type unwrap to a plain instance.
  return Object.assign(app as FastifyInstance, drainSwitch);
}

/** The `/v1` API (authenticated) and the pages. */
async function registerApi(app: FastifyInstance, deps: RoutesDeps, options: ServiceAppOptions): Promise<void> {
  const { store } = options;
  await app.register(
    async (v1) => {
      v1.addHook('onRequest', async (_request, reply) => {
        // Answers carry a team's data: never cached by anything in between.
        reply.header('cache-control', 'no-store');
      });
      v1.addHook('onRequest', authenticateRequest(store));
      registerRunsRoutes(v1, deps);
      registerOpenAiRoutes(v1, deps);
      registerAdminRoutes(v1, { store });
    },
    { prefix: '/v1' },
  );
  if (options.registerPages) await options.registerPages(app);
}

/**
 * Connections that never carried a request (an HTTP client's pre-opened spare, a port scanner)
 * hold `server.close()` until Node's headers timeout (a minute or more), since Node closes only the
 * idle keep-alive ones; the returned function destroys them, for a prompt shutdown.
 */
function trackUnusedConnections(app: FastifyInstance): () => void {
  const unused = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    unused.add(socket);
    socket.once('close', () => unused.delete(socket));
  });
  app.server.on('request', (request: IncomingMessage) => {
    unused.delete(request.socket);
  });
  return () => {
    for (const socket of unused) socket.destroy();
    unused.clear();
  };
}

/**
 * Fastify's JSON parser (prototype-poisoning guards included), except that an empty body is no
 * body: `POST /v1/runs/:id/cancel` sent with a JSON content type and nothing else is fine, and a
 * route that needs a body says which field is missing.
 */
function installJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') done(null, undefined);
    else parseJson(request, text, done);
  });
}
