/**
 * The service's Prometheus metrics (prom-client), one registry per service so that two services in
 * one process (tests) never share counters. The worker and the HTTP layer report through the
 * methods here; gauges that mirror state (runs by status, queue depth, sandboxes) are read from the
 * store and the pool when /metrics is scraped, so they are true even across restarts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SandboxPoolStats } from '../sandbox/pool/sandbox-pool.js';
import { RUN_STATUSES, type RunUsage, type StoreStats } from './service-types.js';

/** Seconds: from a fraction of a second (a warm claim) to a long run. */
const DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800];

export interface ServiceMetricsSources {
  /** Counts from the store, read at each scrape. */
  storeStats?: () => Promise<StoreStats>;
  /** The pool's counts, read at each scrape (absent in a process without sandboxes). */
  poolStats?: () => SandboxPoolStats;
  /** A label every series carries (the worker's id once there are several); none by default. */
  worker?: string;
}

export class ServiceMetrics {
  /** The registry /metrics serializes. */
  readonly registry = new Registry();
  readonly #httpRequests: Counter<'method' | 'route' | 'code'>;
  readonly #httpDuration: Histogram<'method' | 'route'>;
  readonly #runsFinished: Counter<'team' | 'status'>;
  readonly #queueWait: Histogram<'team'>;
  readonly #runDuration: Histogram<'team' | 'status'>;
  readonly #tokens: Counter<'team' | 'model' | 'direction'>;
  readonly #cost: Counter<'team' | 'model'>;

  constructor(sources: ServiceMetricsSources = {}) {
    if (sources.worker !== undefined) this.registry.setDefaultLabels({ worker: sources.worker });
    collectDefaultMetrics({ register: this.registry, prefix: 'rlm_process_' });
    const registers = [this.registry];
    this.#httpRequests = new Counter({
      name: 'rlm_http_requests_total',
      help: 'HTTP requests answered, by method, route pattern and status code.',
      labelNames: ['method', 'route', 'code'],
      registers,
    });
    this.#httpDuration = new Histogram({
      name: 'rlm_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (an SSE stream counts until it ends).',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers,
    });
    this.#runsFinished = new Counter({
      name: 'rlm_runs_finished_total',
      help: 'Runs that ended, by team and final status.',
      labelNames: ['team', 'status'],
      registers,
    });
    this.#queueWait = new Histogram({
      name: 'rlm_run_queue_wait_seconds',
      help: 'Time from a run being accepted to a worker claiming it.',
      labelNames: ['team'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#runDuration = new Histogram({
      name: 'rlm_run_duration_seconds',
      help: 'Time from a claim to the end of the run.',
      labelNames: ['team', 'status'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#tokens = new Counter({
      name: 'rlm_model_tokens_total',
      help: 'Model tokens of finished runs, by team, model and direction (input or output).',
      labelNames: ['team', 'model', 'direction'],
      registers,
    });
    this.#cost = new Counter({
      name: 'rlm_model_cost_usd_total',
      help: 'USD spent on model calls by finished runs, by team and model (calls of unknown price count 0).',
      labelNames: ['team', 'model'],
      registers,
    });

    const { storeStats, poolStats } = sources;
    if (storeStats) {
      // One store query per scrape feeds the three gauges; each collect awaits the same answer.
      let pending: Promise<StoreStats> | undefined;
      const read = (): Promise<StoreStats> => {
        pending ??= storeStats().finally(() => {
          setImmediate(() => {
            pending = undefined;
          });
        });
        return pending;
      };
      new Gauge({
        name: 'rlm_runs',
        help: 'Runs in the store, by status.',
        labelNames: ['status'],
        registers,
        async collect() {
          const stats = await read();
          for (const status of RUN_STATUSES) this.set({ status }, stats.runsByStatus[status]);
        },
      });
      new Gauge({
        name: 'rlm_queue_depth',
        help: 'Runs waiting, by team.',
        labelNames: ['team'],
        registers,
        async collect() {
          const stats = await read();
          this.reset();
          for (const [team, count] of Object.entries(stats.queuedByTeam)) this.set({ team }, count);
        },
      });
      new Gauge({
        name: 'rlm_queue_oldest_wait_seconds',
        help: 'How long the oldest waiting run has waited.',
        registers,
        async collect() {
          this.set((await read()).oldestQueuedSeconds);
        },
      });
    }
    if (poolStats) {
      new Gauge({
        name: 'rlm_sandboxes',
        help: 'Sandboxes of this process: live (warm, starting, in use, being removed) and warm, and the bound.',
        labelNames: ['state'],
        registers,
        collect() {
          const stats = poolStats();
          this.set({ state: 'live' }, stats.live);
          this.set({ state: 'warm' }, stats.warm.javascript + stats.warm.python);
          this.set({ state: 'max' }, stats.maxSandboxes);
        },
      });
    }
  }

  /** An HTTP request answered; `route` is the route's pattern (`/v1/runs/:id`), never the raw URL. */
  httpRequest(method: string, route: string, code: number, seconds: number): void {
    this.#httpRequests.inc({ method, route, code: String(code) });
    this.#httpDuration.observe({ method, route }, seconds);
  }

  /** A worker claimed a run that waited `waitSeconds`. */
  runStarted(team: string, waitSeconds: number): void {
    this.#queueWait.observe({ team }, Math.max(0, waitSeconds));
  }

  /** A run ended with `status` after `seconds` of running (0 for one cancelled while queued). */
  runFinished(team: string, status: string, seconds: number, usage: RunUsage): void {
    this.#runsFinished.inc({ team, status });
    if (seconds > 0) this.#runDuration.observe({ team, status }, seconds);
    for (const [model, u] of Object.entries(usage)) {
      this.#tokens.inc({ team, model, direction: 'input' }, u.inputTokens);
      this.#tokens.inc({ team, model, direction: 'output' }, u.outputTokens);
      this.#cost.inc({ team, model }, u.costUsd ?? 0);
    }
  }

  /** The text /metrics answers, and its content type. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
