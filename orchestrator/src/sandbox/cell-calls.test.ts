import { describe, expect, it } from 'vitest';
import { AbortedError } from '../errors.js';
import { CellCalls } from './cell-calls.js';

/** A call that settles only when its signal fires, recording the reason. */
const untilAborted = (reasons: unknown[]) => (signal: AbortSignal) =>
  new Promise<string>((resolve) => signal.addEventListener('abort', () => resolve(String(reasons.push(signal.reason))), { once: true }));

describe('CellCalls', () => {
  it('aborts every call of the cell when it ends and resolves once they have settled', async () => {
    const cell = new CellCalls();
    const reasons: unknown[] = [];
    const channel = new AbortController();
    const calls = [1, 2, 3].map(() => cell.serve(channel.signal, untilAborted(reasons), () => 'refused'));
    expect(cell.running).toBe(3);
    expect(await cell.end('the cell ended', 60_000)).toBe(0);
    expect(reasons).toHaveLength(3);
    for (const reason of reasons) expect(AbortedError.isInstance(reason) && reason.message).toBe('the cell ended');
    await expect(Promise.all(calls)).resolves.toHaveLength(3);
  });

  it("passes the channel's own abort (the sandbox's cancel) to the call", async () => {
    const cell = new CellCalls();
    const channel = new AbortController();
    const reasons: unknown[] = [];
    const call = cell.serve(channel.signal, untilAborted(reasons), () => 'refused');
    channel.abort('peer cancelled');
    await call;
    expect(reasons).toEqual(['peer cancelled']);
    expect(cell.running).toBe(0);
  });

  it('stops waiting after the grace for a call that ignores its signal, and says how many still run', async () => {
    const cell = new CellCalls();
    void cell.serve(
      new AbortController().signal,
      () => new Promise<string>(() => {}),
      () => 'refused',
    );
    expect(await cell.end('the cell ended', 1)).toBe(1);
  });

  it('refuses a call that arrives after the cell ended, without running it', async () => {
    const cell = new CellCalls();
    await cell.end('the cell ended', 1);
    let ran = false;
    const answer = await cell.serve(
      new AbortController().signal,
      async () => {
        ran = true;
        return 'served';
      },
      () => 'refused',
    );
    expect(answer).toBe('refused');
    expect(ran).toBe(false);
  });
});
