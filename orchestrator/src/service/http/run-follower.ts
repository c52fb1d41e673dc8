/**
 * Following a run as it goes, for SSE streams and chat completions. The stored events are the
 * truth; notices only say "read again". So a follower subscribes to the notices BEFORE it reads the
 * store (an event appended between the read and the subscription would otherwise be missed), reads
 * after the last `seq` it saw (duplicates cannot happen), and re-reads on each notice for its run —
 * and every `pollMs` regardless, so that a notice lost (another process, later) delays, never stalls.
 */
import { TERMINAL_STATUSES, type RunRecord, ServiceError, type ServiceNotices, type ServiceStore, type StoredRunEvent } from '../service-types.js';

/** Events read per store query. */
const PAGE = 500;

/** A one-shot "something changed" latch: `set` wakes the current or the next `wait`. */
class Wakeup {
  #pending = false;
  #wake: (() => void) | undefined;

  set(): void {
    this.#pending = true;
    this.#wake?.();
  }

  /** Forget earlier wake-ups; call before reading, so one arriving during the read wakes the next wait. */
  clear(): void {
    this.#pending = false;
  }

  /** Resolves on `set`, after `ms`, or when `signal` aborts; true when woken by `set`. */
  wait(ms: number, signal: AbortSignal): Promise<boolean> {
    if (this.#pending) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (woken: boolean): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        this.#wake = undefined;
        resolve(woken);
      };
      const onAbort = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.#wake = () => done(true);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

export interface FollowDeps {
  store: ServiceStore;
  notices: ServiceNotices;
}

export interface FollowOptions {
  signal: AbortSignal;
  /** Re-read the store at least this often, ms. */
  pollMs: number;
}

/**
 * The run's events after `afterSeq`, oldest first: those stored, then each as it is appended,
 * until the `finished` event (yielded last) or until `signal` aborts (then it just ends). A run
 * that ended without a `finished` event (marked failed by a crash recovery that wrote none) ends
 * the stream with one made from its record, carrying the last seq seen.
 */
export async function* followRunEvents(deps: FollowDeps, runId: string, afterSeq: number, options: FollowOptions): AsyncGenerator<StoredRunEvent> {
  const { signal, pollMs } = options;
  let seen = afterSeq;
  const wakeup = new Wakeup();
  const unsubscribe = deps.notices.subscribe((notice) => {
    if (notice.kind === 'run_events' && notice.runId === runId && notice.lastSeq > seen) wakeup.set();
  });
  try {
    let checkRecord = true;
    while (!signal.aborted) {
      wakeup.clear();
      let fresh = 0;
      for (;;) {
        const batch = await deps.store.readEvents(runId, seen, PAGE);
        for (const event of batch) {
          if (event.seq <= seen) continue;
          seen = event.seq;
          fresh++;
          yield event;
          if (event.type === 'finished') return;
          if (signal.aborted) return;
        }
        if (batch.length < PAGE) break;
      }
      if (fresh === 0 && checkRecord) {
        const run = await deps.store.getRun(null, runId);
        if (run === null) return;
        if (TERMINAL_STATUSES.includes(run.status)) {
          // One more read: its `finished` event may have landed after ours.
          const late = await deps.store.readEvents(runId, seen, PAGE);
          if (late.length > 0) continue;
          // Resumed after the `finished` event itself: nothing more to say.
          const [last] = seen > 0 ? await deps.store.readEvents(runId, seen - 1, 1) : [];
          if (last?.type === 'finished') return;
          yield { runId, seq: seen, type: 'finished', data: finishedData(run), createdAt: run.finishedAt ?? Date.now() };
          return;
        }
      }
      // After a notice, the events say it all; after a quiet poll period, look at the record too.
      checkRecord = !(await wakeup.wait(pollMs, signal));
    }
  } finally {
    unsubscribe();
  }
}

/** What a `finished` event made from a run's record carries. */
function finishedData(run: RunRecord): Record<string, unknown> {
  return { status: run.status, answer: run.answer, error: run.error, usage: run.usage, costUsd: run.costUsd, iterations: run.iterations };
}

/**
 * Waits until the team's run has ended and answers its record; null when `signal` aborted first.
 * @throws {ServiceError} `not_found` when the run is not (or no longer) the team's.
 */
export async function waitForRunEnd(deps: FollowDeps, teamId: string, runId: string, options: FollowOptions): Promise<RunRecord | null> {
  const wakeup = new Wakeup();
  const unsubscribe = deps.notices.subscribe((notice) => {
    if (notice.kind === 'run_events' && notice.runId === runId) wakeup.set();
  });
  try {
    while (!options.signal.aborted) {
      wakeup.clear();
      const run = await deps.store.getRun(teamId, runId);
      if (run === null) throw new ServiceError('not_found', `run ${runId} not found`);
      if (TERMINAL_STATUSES.includes(run.status)) return run;
      await wakeup.wait(options.pollMs, options.signal);
    }
    return null;
  } finally {
    unsubscribe();
  }
}
