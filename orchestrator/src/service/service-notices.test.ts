import { describe, expect, it } from 'vitest';
import { createServiceNotices } from './service-notices.js';
import type { ServiceNotice } from './service-types.js';

const queued: ServiceNotice = { kind: 'run_queued', runId: 'run_1', teamId: 'team_1' };

describe('service notices', () => {
  it('delivers a notice to every listener, in the order they subscribed, before publish returns', () => {
    const notices = createServiceNotices();
    const seen: string[] = [];
    notices.subscribe((notice) => seen.push(`a:${notice.kind}`));
    notices.subscribe((notice) => seen.push(`b:${notice.kind}`));
    notices.publish(queued);
    expect(seen).toEqual(['a:run_queued', 'b:run_queued']);
  });

  it('stops delivering to a listener once it unsubscribes; unsubscribing twice is harmless', () => {
    const notices = createServiceNotices();
    const seen: ServiceNotice[] = [];
    const unsubscribe = notices.subscribe((notice) => seen.push(notice));
    notices.publish(queued);
    unsubscribe();
    unsubscribe();
    notices.publish({ kind: 'run_cancel', runId: 'run_1' });
    expect(seen).toEqual([queued]);
  });

  it('catches a listener that throws, reports it through onError, and still delivers to the others', () => {
    const errors: Array<{ error: unknown; notice: ServiceNotice }> = [];
    const notices = createServiceNotices({ onError: (error, notice) => errors.push({ error, notice }) });
    const seen: ServiceNotice[] = [];
    notices.subscribe(() => {
      throw new Error('listener broke');
    });
    notices.subscribe((notice) => seen.push(notice));
    expect(() => notices.publish(queued)).not.toThrow();
    expect(seen).toEqual([queued]);
    expect(errors).toEqual([{ error: new Error('listener broke'), notice: queued }]);
  });

  it('never throws at the publisher, even without onError or when onError itself throws', () => {
    const silent = createServiceNotices();
    silent.subscribe(() => {
      throw new Error('x');
    });
    expect(() => silent.publish(queued)).not.toThrow();
    const loud = createServiceNotices({
      onError: () => {
        throw new Error('reporter broke');
      },
    });
    loud.subscribe(() => {
      throw new Error('x');
    });
    expect(() => loud.publish(queued)).not.toThrow();
  });

  it('applies a subscription made during a publish from the next publish on', () => {
    const notices = createServiceNotices();
    const late: ServiceNotice[] = [];
    notices.subscribe(() => {
      notices.subscribe((notice) => late.push(notice));
    });
    notices.publish(queued);
    expect(late).toEqual([]);
    const cancel: ServiceNotice = { kind: 'run_cancel', runId: 'run_2' };
    notices.publish(cancel);
    expect(late).toEqual([cancel]);
  });

  it('gives the same function subscribed twice two independent subscriptions', () => {
    const notices = createServiceNotices();
    let calls = 0;
    const listener = () => {
      calls += 1;
    };
    const first = notices.subscribe(listener);
    notices.subscribe(listener);
    notices.publish(queued);
    expect(calls).toBe(2);
    first();
    notices.publish(queued);
    expect(calls).toBe(3);
  });
});
