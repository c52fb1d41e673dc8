/**
 * For the http layer's tests (not part of the package's API): the real app on a real port over the
 * real embedded store in a temporary directory, with helpers to act as the worker
 * (claim/appendEvents/finishRun, publishing the notices a worker publishes), to call the API, and
 * to read an SSE stream. Log lines are kept, so a test can check that no secret reached them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createServiceNotices } from '../service-notices.js';
import { ServiceMetrics } from '../service-metrics.js';
import type {
  NewTeam,
  RunOutcome,
  RunRecord,
  ServeSettings,
  ServiceNotice,
  ServiceNotices,
  ServiceStore,
  StoredRunEvent,
  TeamRecord,
} from '../service-types.js';
import { openServiceStore } from '../store/service-store.js';
import { createServiceApp, type Readiness, type ServiceApp } from './service-app.js';

export const TEST_SETTINGS: ServeSettings = {
  host: '127.0.0.1',
  port: 0,
  maxBodyBytes: 256 * 1024,
  graceSeconds: 1,
  models: [
    { id: 'rlm', name: null, providerModel: 'fake-root' },
    { id: 'rlm:fast', name: 'fast', providerModel: 'fake-fast' },
    { id: 'rlm:big', name: 'big', providerModel: 'fake-big' },
  ],
  defaultLanguage: 'javascript',
  limits: { maxIterations: 20, timeoutSeconds: 600, maxCostUsd: 5 },
  maxRunningRuns: 4,
  leaseMs: 60_000,
  retryInterrupted: false,
  maxAttempts: 3,
};

export const WORKER_ID = 'test-worker';

export interface HarnessOptions {
  settings?: Partial<ServeSettings>;
  heartbeatMs?: number;
  readiness?: (signal: AbortSignal) => Promise<Readiness>;
}

export interface Harness extends AsyncDisposable {
  readonly store: ServiceStore;
  readonly notices: ServiceNotices;
  /** Every notice published since the start. */
  readonly published: ServiceNotice[];
  /** How many notice subscriptions are open. */
  subscriptions(): number;
  readonly metrics: ServiceMetrics;
  readonly app: ServiceApp;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every log line the app wrote. */
  readonly logs: string[];
  /** A team and a token of it. */
  team(name: string, options?: Omit<NewTeam, 'name'>): Promise<{ team: TeamRecord; token: string }>;
  /** `fetch` of `url + path` with the token (JSON body when given). */
  call(token: string | null, method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  /** Claims the next run as the worker; fails when none is queued. */
  claim(): Promise<RunRecord>;
  /** Claims as soon as a run is queued (polls), for a request that submits one while the test waits. */
  claimWhenQueued(): Promise<RunRecord>;
  /** Appends events as the worker does and tells the followers. */
  emit(runId: string, events: readonly { type: string; data: Record<string, unknown> }[]): Promise<StoredRunEvent[]>;
  /** Finishes a claimed run as the worker does and tells the followers. */
  finish(runId: string, outcome: Partial<RunOutcome> & Pick<RunOutcome, 'status'>): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'rlm-http-test-'));
  const store = await openServiceStore({ dataDir });
  const base = createServiceNotices();
  const published: ServiceNotice[] = [];
  let open = 0;
  const notices: ServiceNotices = {
    publish(notice) {
      published.push(notice);
      base.publish(notice);
    },
    subscribe(listener) {
      open++;
      const unsubscribe = base.subscribe(listener);
      let done = false;
      return () => {
        if (!done) open--;
        done = true;
        unsubscribe();
      };
    },
  };
  const metrics = new ServiceMetrics({ storeStats: () => store.stats() });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      logs.push(chunk.toString('utf8'));
      callback();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  const settings = { ...TEST_SETTINGS, ...options.settings };
  const app = await createServiceApp({
    store,
    notices,
    metrics,
    settings,
    logger,
    readiness: options.readiness ?? (async () => ({ database: true, docker: true })),
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the app is not listening on a TCP port');
  const url = `http://127.0.0.1:${address.port}`;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      await app.close();
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    })();
    return closed;
  };

  const tellFollowers = (runId: string, stored: readonly StoredRunEvent[]): void => {
    const last = stored.at(-1);
    if (last) notices.publish({ kind: 'run_events', runId, lastSeq: last.seq });
  };

  return {
    store,
    notices,
    published,
    subscriptions: () => open,
    metrics,
    app,
    url,
    logs,
    async team(name, teamOptions = {}) {
      const team = await store.createTeam({ name, ...teamOptions });
      const { token } = await store.createToken(name);
      return { team, token };
    },
    call(token, method, urlPath, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (token !== null) (init.headers as Record<string, string>).authorization = `Bearer ${token}`;
      if (body !== undefined) {
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
      }
      return fetch(`${url}${urlPath}`, init);
    },
    async claim() {
      const run = await store.claimRun(WORKER_ID, settings.leaseMs);
      if (run === null) throw new Error('no run is queued');
      return run;
    },
    async claimWhenQueued() {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const run = await store.claimRun(WORKER_ID, settings.leaseMs);
        if (run !== null) return run;
        if (Date.now() > deadline) throw new Error('no run was queued within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async emit(runId, events) {
      const stored = await store.appendEvents(runId, events);
      tellFollowers(runId, stored);
      return stored;
    },
    async finish(runId, outcome) {
      const ok = await store.finishRun(WORKER_ID, runId, {
        answer: null,
        error: null,
        usage: {},
        costUsd: null,
        iterations: 0,
        trajectory: null,
        ...outcome,
      });
      if (!ok) throw new Error(`the worker no longer holds run ${runId}`);
      tellFollowers(runId, await store.readEvents(runId, 0));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

// ---------------------------------------------------------------------------------------------
// SSE

export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

/** Reads an event stream as it arrives: `next()` answers the next event, or null once the stream ended. Comments are collected. */
export class SseReader {
  readonly comments: string[] = [];
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';
  #done = false;

  constructor(response: Response) {
    if (!response.body) throw new Error('the response has no body');
    this.#reader = response.body.getReader();
  }

  async next(): Promise<SseMessage | null> {
    for (;;) {
      const frame = this.#takeFrame();
      if (frame !== undefined) {
        const message = this.#parse(frame);
        if (message) return message;
        continue;
      }
      if (this.#done) return null;
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      else this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Every remaining event, until the stream ends. */
  async rest(): Promise<SseMessage[]> {
    const all: SseMessage[] = [];
    for (let m = await this.next(); m !== null; m = await this.next()) all.push(m);
    return all;
  }

  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }

  #takeFrame(): string | undefined {
    const end = this.#buffer.indexOf('\n\n');
    if (end === -1) return undefined;
    const frame = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 2);
    return frame;
  }

  #parse(frame: string): SseMessage | undefined {
    const message: SseMessage = { data: '' };
    let hasData = false;
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('id: ')) message.id = line.slice(4);
      else if (line.startsWith('event: ')) message.event = line.slice(7);
      else if (line.startsWith('data: ')) {
        message.data = hasData ? `${message.data}\n${line.slice(6)}` : line.slice(6);
        hasData = true;
      }
    }
    return hasData ? message : undefined;
  }
}

/** Polls `check` until it answers a value other than undefined (generous deadline). */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A JSON answer's body, for tests that read a few fields of it. */
// biome-ignore lint/suspicious/noExplicitAny: tests read fields of answers whose shape the assertions check.
export type JsonBody = any;

export async function json(response: Response): Promise<JsonBody> {
  return response.json();
}
