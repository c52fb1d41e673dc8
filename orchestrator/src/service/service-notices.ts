/**
 * The in-process fan-out of {@link ServiceNotice}s: the worker publishes that a run's events were
 * stored, the HTTP layer that a run was queued or cancelled, and whoever listens (SSE streams, the
 * worker) reacts. Notices are hints to look at the store, which holds the truth; losing one delays a
 * reader, it never loses data. PostgreSQL's LISTEN/NOTIFY can carry the same notices across
 * processes behind this interface later.
 */
import type { ServiceNotice, ServiceNotices } from './service-types.js';

export interface ServiceNoticesOptions {
  /** Told when a listener throws; the publisher and the other listeners never see the error. */
  onError?: (error: unknown, notice: ServiceNotice) => void;
}

/**
 * A synchronous fan-out: `publish` calls every listener subscribed at that moment, in the order they
 * subscribed, before it returns. A listener subscribed or unsubscribed during a publish takes effect
 * from the next one. A listener's throw is caught and passed to `onError`.
 */
export function createServiceNotices(options: ServiceNoticesOptions = {}): ServiceNotices {
  const listeners = new Set<(notice: ServiceNotice) => void>();
  return {
    publish(notice) {
      for (const listener of [...listeners]) {
        try {
          listener(notice);
        } catch (error) {
          try {
            options.onError?.(error, notice);
          } catch {
            // An error reporter that throws has nowhere left to report to.
          }
        }
      }
    },
    subscribe(listener) {
      // A wrapper per subscription, so subscribing one function twice gives two independent subscriptions.
      const entry = (notice: ServiceNotice) => listener(notice);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
  };
}
