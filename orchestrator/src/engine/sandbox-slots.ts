/**
 * The cap on a run tree's sandboxes (`RlmLimits.maxSandboxes`), enforced on the host when a child
 * RLM starts — whatever a sandbox asks for, it cannot make the host start more containers.
 *
 * The root run holds one slot from the start; each child RLM takes one before its sandbox is
 * made and gives it back once that sandbox is closed. A child that finds every slot taken waits.
 * Waiting must never hang the tree, so:
 * - a freed slot goes to the deepest waiting child (the oldest among equals): finishing a subtree
 *   is what frees slots soonest;
 * - when every run holding a slot is itself waiting for a child (queued or running), no slot can
 *   ever free — a deadlock. The deepest waiting child (the newest among equals) is then refused a
 *   slot, which its caller answers as a plain `llm_query` of the prompt; repeated until the
 *   deadlock is gone;
 * - with a wall-clock limit, a child waits at most half the time the run had left when it asked,
 *   then is refused the same way, leaving time for that answer and for its parent.
 */
import { AbortedError } from '../errors.js';

/** A run that holds one of the tree's sandbox slots. */
export interface SlotHolder {
  /** The run's depth (0 for the root). */
  readonly depth: number;
}

/** What a child's request for a slot came to. */
export type SlotGrant =
  | {
      granted: true;
      /** The child's own holder, for its children's requests. */
      holder: SlotHolder;
      /** Gives the slot back (once the child's sandbox is closed). Safe to call twice. */
      release: () => void;
    }
  | {
      granted: false;
      reason: 'deadlock' | 'deadline';
      /** Why, naming the setting to raise; for the record's note and the warning event. */
      message: string;
    };

class Holder implements SlotHolder {
  /** Children of this run that asked for a slot and have not ended (waiting or running). */
  outstanding = 0;
  constructor(readonly depth: number) {}
}

interface Waiter {
  parent: Holder;
  depth: number;
  sequence: number;
  settle: (grant: SlotGrant) => void;
}

export interface SandboxSlotsOptions {
  /** Milliseconds the run has left; `Infinity` without a wall-clock limit. */
  remainingMs?: () => number;
}

export class SandboxSlots {
  /** Slots in all, the root's included. */
  readonly capacity: number;
  readonly #holders = new Set<Holder>();
  #waiting: Waiter[] = [];
  #sequence = 0;
  #peak = 0;
  readonly #remainingMs: () => number;

  /** @param capacity at least 1 (the root's slot). */
  constructor(capacity: number, options: SandboxSlotsOptions = {}) {
    this.capacity = Math.max(1, Math.floor(capacity));
    this.#remainingMs = options.remainingMs ?? (() => Number.POSITIVE_INFINITY);
  }

  /** Slots held now. */
  get inUse(): number {
    return this.#holders.size;
  }

  /** The most slots ever held at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Children waiting for a slot now. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** The root run's slot, taken at once: the tree cannot exist without it. */
  takeRoot(): { holder: SlotHolder; release: () => void } {
    const holder = new Holder(0);
    this.#add(holder);
    let released = false;
    return {
      holder,
      release: () => {
        if (released) return;
        released = true;
        this.#holders.delete(holder);
        this.#dispatch();
      },
    };
  }

  /**
   * A slot for a child of `parent`: at once when one is free, else when one frees — or a refusal
   * (`granted: false`) when waiting would deadlock the tree or pass half the time left (see the
   * module's doc). Never waits past `signal`.
   *
   * @throws {AbortedError} `signal` fired before a slot was granted (its reason is the `cause`).
   */
  acquire(parent: SlotHolder, signal: AbortSignal): Promise<SlotGrant> {
    const owner = this.#own(parent);
    if (signal.aborted) return Promise.reject(new AbortedError('waiting for a sandbox was cancelled', { cause: signal.reason }));
    owner.outstanding += 1;
    if (this.#holders.size < this.capacity) return Promise.resolve(this.#grant(owner));
    return new Promise<SlotGrant>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        parent: owner,
        depth: owner.depth + 1,
        sequence: this.#sequence++,
        settle: (grant) => {
          cleanup();
          resolve(grant);
        },
      };
      const onAbort = () => {
        if (!this.#remove(waiter)) return;
        owner.outstanding -= 1;
        cleanup();
        reject(new AbortedError('waiting for a sandbox was cancelled', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const remaining = this.#remainingMs();
      if (Number.isFinite(remaining)) {
        timer = setTimeout(() => this.#refuse(waiter, 'deadline'), Math.max(0, Math.floor(remaining / 2)));
        timer.unref();
      }
      this.#waiting.push(waiter);
      this.#breakDeadlock();
    });
  }

  #own(holder: SlotHolder): Holder {
    if (!(holder instanceof Holder) || !this.#holders.has(holder)) throw new Error('SandboxSlots: the parent holds no slot of this tree');
    return holder;
  }

  #add(holder: Holder): void {
    this.#holders.add(holder);
    this.#peak = Math.max(this.#peak, this.#holders.size);
  }

  #grant(parent: Holder): SlotGrant {
    const holder = new Holder(parent.depth + 1);
    this.#add(holder);
    let released = false;
    return {
      granted: true,
      holder,
      release: () => {
        if (released) return;
        released = true;
        this.#holders.delete(holder);
        parent.outstanding -= 1;
        this.#dispatch();
      },
    };
  }

  /** Gives free slots to waiting children, then checks for a deadlock. */
  #dispatch(): void {
    while (this.#holders.size < this.capacity && this.#waiting.length > 0) {
      const next = this.#pick((a, b) => a.depth > b.depth || (a.depth === b.depth && a.sequence < b.sequence));
      this.#remove(next);
      next.settle(this.#grant(next.parent));
    }
    this.#breakDeadlock();
  }

  /** While every holder waits for a child and children wait for slots, refuses the deepest, newest waiter. */
  #breakDeadlock(): void {
    while (this.#waiting.length > 0 && this.#holders.size >= this.capacity && [...this.#holders].every((holder) => holder.outstanding > 0)) {
      this.#refuse(
        this.#pick((a, b) => a.depth > b.depth || (a.depth === b.depth && a.sequence > b.sequence)),
        'deadlock',
      );
    }
  }

  #refuse(waiter: Waiter, reason: 'deadlock' | 'deadline'): void {
    if (!this.#remove(waiter)) return;
    waiter.parent.outstanding -= 1;
    const why =
      reason === 'deadlock'
        ? `all ${this.capacity} sandboxes of the run (maxSandboxes) were held by runs waiting for child RLMs of their own`
        : `none of the run's ${this.capacity} sandboxes (maxSandboxes) freed within half the time the run had left`;
    waiter.settle({
      granted: false,
      reason,
      message: `rlm_query at depth ${waiter.depth} was answered as a plain llm_query: ${why}; raise limits.maxSandboxes (--max-sandboxes) to give more child RLMs a sandbox`,
    });
  }

  /** The waiter that comes first by `before`. */
  #pick(before: (a: Waiter, b: Waiter) => boolean): Waiter {
    let best = this.#waiting[0] as Waiter;
    for (const waiter of this.#waiting) if (before(waiter, best)) best = waiter;
    return best;
  }

  #remove(waiter: Waiter): boolean {
    const index = this.#waiting.indexOf(waiter);
    if (index < 0) return false;
    this.#waiting.splice(index, 1);
    return true;
  }
}
