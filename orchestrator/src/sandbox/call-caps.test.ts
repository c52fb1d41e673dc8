import type { SubcallParams, SubcallResult } from '@rlm/shared';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { CallGate, DEFAULT_SANDBOX_CALL_CAPS, resolveCallCaps } from './call-caps.js';

const request = (prompts: string[], batched = prompts.length > 1): SubcallParams => ({ kind: 'llm_query', prompts, batched });
const answered = (params: SubcallParams): SubcallResult => ({ outcomes: params.prompts.map((p) => ({ ok: true as const, text: p.toUpperCase() })) });

/** A handler that holds each call until the test releases it. */
function heldHandler() {
  const held: Array<() => void> = [];
  return {
    held,
    serve: (params: SubcallParams) => () => new Promise<SubcallResult>((resolve) => held.push(() => resolve(answered(params)))),
    releaseAll: () => {
      for (const release of held.splice(0)) release();
    },
  };
}

describe('resolveCallCaps', () => {
  it('fills in the documented defaults and refuses values that are not positive integers, naming the option', () => {
    expect(resolveCallCaps(undefined)).toEqual({
      maxSubcallsInFlight: 16,
      maxSubcallPromptsInFlight: 10_000,
      maxPendingPromptBytes: 64 * 1024 * 1024,
      maxToolCallsInFlight: 8,
    });
    expect(resolveCallCaps({ maxToolCallsInFlight: 2 })).toEqual({ ...DEFAULT_SANDBOX_CALL_CAPS, maxToolCallsInFlight: 2 });
    expect(() => resolveCallCaps({ maxSubcallsInFlight: 0 })).toThrow(InvalidOptionError);
    expect(() => resolveCallCaps({ maxPendingPromptBytes: 1.5 })).toThrow(/^callCaps\.maxPendingPromptBytes: must be a positive integer/);
  });
});

describe('CallGate', () => {
  it('serves requests up to maxSubcallsInFlight at once and refuses the next at once, naming the cap, without calling the handler', async () => {
    const gate = new CallGate(resolveCallCaps({ maxSubcallsInFlight: 2 }));
    const handler = heldHandler();
    const first = gate.subcall(request(['a']), handler.serve(request(['a'])));
    const second = gate.subcall(request(['b']), handler.serve(request(['b'])));
    let called = false;
    const refused = await gate.subcall(request(['c', 'd']), async () => {
      called = true;
      return answered(request(['c', 'd']));
    });
    expect(called).toBe(false);
    expect(refused.outcomes).toHaveLength(2);
    for (const outcome of refused.outcomes) {
      expect(outcome).toMatchObject({
        ok: false,
        error: expect.stringMatching(/^llm_query_batched was refused: 2 sub-call requests .*maxSubcallsInFlight\) is 2/),
      });
    }
    expect(gate.inFlight).toMatchObject({ subcalls: 2, prompts: 2, promptBytes: 2 });
    handler.releaseAll();
    await expect(first).resolves.toEqual({ outcomes: [{ ok: true, text: 'A' }] });
    await second;
    // Released: the same request now fits.
    await expect(gate.subcall(request(['c']), async () => answered(request(['c'])))).resolves.toEqual({ outcomes: [{ ok: true, text: 'C' }] });
    expect(gate.inFlight).toEqual({ subcalls: 0, prompts: 0, promptBytes: 0, toolCalls: 0 });
  });

  it('counts prompts across requests, not per batch', async () => {
    const gate = new CallGate(resolveCallCaps({ maxSubcallPromptsInFlight: 5 }));
    const handler = heldHandler();
    const three = request(['1', '2', '3']);
    const pending = gate.subcall(three, handler.serve(three));
    const refused = await gate.subcall(request(['4', '5', '6']), async () => answered(request([])));
    expect(refused.outcomes[0]).toMatchObject({
      ok: false,
      error: expect.stringMatching(
        /its 3 prompt\(s\) and the 3 being served would exceed .* cap of 5 prompts in flight \(maxSubcallPromptsInFlight\); send fewer/,
      ),
    });
    const fits = request(['4', '5']);
    await expect(gate.subcall(fits, async () => answered(fits))).resolves.toEqual(answered(fits));
    handler.releaseAll();
    await pending;
  });

  it('counts the UTF-8 bytes of pending prompts and refuses a request that would go past maxPendingPromptBytes', async () => {
    const gate = new CallGate(resolveCallCaps({ maxPendingPromptBytes: 1024 }));
    const handler = heldHandler();
    // 300 characters of 3 bytes each: 900 bytes.
    const wide = request(['€'.repeat(300)]);
    const pending = gate.subcall(wide, handler.serve(wide));
    expect(gate.inFlight.promptBytes).toBe(900);
    const refused = await gate.subcall(request(['x'.repeat(200)]), async () => answered(request([])));
    expect(refused.outcomes[0]).toMatchObject({
      ok: false,
      error: expect.stringMatching(/cap of 1\.0 KiB of pending prompts \(maxPendingPromptBytes\); send shorter prompts/),
    });
    handler.releaseAll();
    await pending;
    expect(gate.inFlight.promptBytes).toBe(0);
  });

  it('releases its count when the handler throws, and passes the error on', async () => {
    const gate = new CallGate(resolveCallCaps({ maxSubcallsInFlight: 1 }));
    await expect(
      gate.subcall(request(['a']), async () => {
        throw new Error('backend down');
      }),
    ).rejects.toThrow('backend down');
    expect(gate.inFlight.subcalls).toBe(0);
  });

  it('serves tool calls up to maxToolCallsInFlight and answers the next with an error result at once', async () => {
    const gate = new CallGate(resolveCallCaps({ maxToolCallsInFlight: 1 }));
    let release!: () => void;
    const first = gate.toolCall('lookup', () => new Promise((resolve) => (release = () => resolve({ ok: true, value: 1 }))));
    await expect(gate.toolCall('lookup', async () => ({ ok: true, value: 2 }))).resolves.toEqual({
      ok: false,
      error: expect.stringMatching(/^the call of lookup was refused: 1 tool calls .*maxToolCallsInFlight\) is 1; call tools one at a time$/),
    });
    release();
    await expect(first).resolves.toEqual({ ok: true, value: 1 });
    await expect(gate.toolCall('lookup', async () => ({ ok: true, value: 3 }))).resolves.toEqual({ ok: true, value: 3 });
  });
});
