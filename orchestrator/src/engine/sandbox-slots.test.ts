import { describe, expect, it } from 'vitest';
import { AbortedError } from '../errors.js';
import { SandboxSlots, type SlotGrant } from './sandbox-slots.js';

const never = new AbortController().signal;

function granted(grant: SlotGrant) {
  if (!grant.granted) throw new Error(`expected a slot, got a refusal: ${grant.message}`);
  return grant;
}

/** Whether `promise` has settled, checked after pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  return done;
}

describe('SandboxSlots', () => {
  it('grants slots up to the cap, the root included, and makes the next child wait until one is released', async () => {
    const slots = new SandboxSlots(2);
    const root = slots.takeRoot();
    const first = granted(await slots.acquire(root.holder, never));
    // The root waits for `first`, but `first` is busy with its own work: no deadlock, `third` waits.
    const third = slots.acquire(root.holder, never);
    expect(slots.inUse).toBe(2);
    expect(slots.waiting).toBe(1);
    expect(await settled(third)).toBe(false);
    // Now `first` waits for a child too: every holder waits, so the deepest waiter is refused.
    const refused = await slots.acquire(first.holder, never);
    expect(refused).toMatchObject({ granted: false, reason: 'deadlock' });
    expect(!refused.granted && refused.message).toMatch(
      /^rlm_query at depth 2 was answered as a plain llm_query: all 2 sandboxes of the run \(maxSandboxes\) were held by runs waiting for child RLMs of their own; raise limits.maxSandboxes \(--max-sandboxes\)/,
    );
    expect(await settled(third)).toBe(false);
    first.release();
    first.release();
    expect(granted(await third).holder.depth).toBe(1);
    expect(slots.peak).toBe(2);
  });

  it('gives a freed slot to the deepest waiting child, the oldest first among equals', async () => {
    const slots = new SandboxSlots(3);
    const root = slots.takeRoot();
    const a = granted(await slots.acquire(root.holder, never));
    const b = granted(await slots.acquire(root.holder, never));
    const order: string[] = [];
    const shallow = slots.acquire(root.holder, never).then((grant) => order.push(`shallow:${grant.granted}`));
    const deepA = slots.acquire(a.holder, never).then((grant) => order.push(`deepA:${grant.granted}`));
    // b is not waiting for a child, so nothing is refused; b ends and frees a slot.
    b.release();
    await deepA;
    expect(order).toEqual(['deepA:true']);
    await settled(shallow);
    expect(order).toEqual(['deepA:true']);
  });

  it('refuses every child when the cap is 1: the root waiting for a child can never free its slot', async () => {
    const slots = new SandboxSlots(1);
    const root = slots.takeRoot();
    const grants = await Promise.all([slots.acquire(root.holder, never), slots.acquire(root.holder, never)]);
    expect(grants.map((grant) => grant.granted)).toEqual([false, false]);
    expect(slots.inUse).toBe(1);
  });

  it('refuses a child that waited half the time the run had left', async () => {
    const slots = new SandboxSlots(2, { remainingMs: () => 0 });
    const root = slots.takeRoot();
    granted(await slots.acquire(root.holder, never));
    // The granted child is busy (not waiting for a child), so only the deadline ends this wait.
    const grant = await slots.acquire(root.holder, never);
    expect(grant).toMatchObject({ granted: false, reason: 'deadline' });
    expect(!grant.granted && grant.message).toMatch(/freed within half the time the run had left/);
  });

  it('stops waiting when the signal fires, with an AbortedError, and forgets the waiter', async () => {
    const slots = new SandboxSlots(2);
    const root = slots.takeRoot();
    const busy = granted(await slots.acquire(root.holder, never));
    const controller = new AbortController();
    const waiting = slots.acquire(root.holder, controller.signal);
    controller.abort(new Error('cancelled'));
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    expect(slots.waiting).toBe(0);
    busy.release();
    expect(slots.inUse).toBe(1);
    await expect(slots.acquire(root.holder, controller.signal)).rejects.toBeInstanceOf(AbortedError);
  });
});
