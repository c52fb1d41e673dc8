import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES, type ExecuteResult } from '@rlm/shared';
import { describe, expect, it } from 'vitest';
import { MAX_VALUE_CHARS, capOutput, recapExecuteResult, truncationMarker } from './result-caps.js';

const ok = (patch: Partial<ExecuteResult> = {}): ExecuteResult => ({
  status: 'ok',
  stdout: { text: '', truncatedChars: 0 },
  stderr: { text: '', truncatedChars: 0 },
  error: null,
  final: null,
  stateLost: false,
  variables: [],
  durationMs: 1,
  ...patch,
});

describe('recapExecuteResult', () => {
  it('returns a result within every limit unchanged', () => {
    const result = ok({
      stdout: { text: 'hi\n', truncatedChars: 0 },
      value: "'x'",
      final: { value: 'done', via: 'FINAL' },
      variables: [{ name: 'a', type: 'number' }],
    });
    expect(recapExecuteResult(result, 100)).toEqual(result);
  });

  it('cuts forged 30 MB output to the requested limit, keeping head and tail and counting what it cut', () => {
    const text = `HEAD${'x'.repeat(30_000_000)}TAIL`;
    const result = recapExecuteResult(ok({ stdout: { text, truncatedChars: 5 }, stderr: { text: 'e'.repeat(20_000_000), truncatedChars: 0 } }), 1_000);
    expect(result.stdout.text.length).toBeLessThanOrEqual(1_000);
    expect(result.stdout.text.startsWith('HEAD')).toBe(true);
    expect(result.stdout.text.endsWith('TAIL')).toBe(true);
    // Everything written is either kept or counted.
    const kept = result.stdout.text.length - truncationMarker(result.stdout.truncatedChars).length;
    expect(kept + result.stdout.truncatedChars).toBe(text.length + 5);
    expect(result.stdout.text).toContain(truncationMarker(result.stdout.truncatedChars));
    expect(result.stderr.text.length).toBeLessThanOrEqual(1_000);
    expect(result.stderr.truncatedChars).toBeGreaterThan(19_000_000);
  });

  it('keeps output within a limit smaller than the marker bounded by the marker', () => {
    const capped = capOutput({ text: 'y'.repeat(10_000), truncatedChars: 0 }, 10);
    expect(capped).toEqual({ text: truncationMarker(10_000), truncatedChars: 10_000 });
  });

  it('turns a final answer over MAX_FINAL_CHARS into a FinalTooLargeError result the model sees, with no final', () => {
    const result = recapExecuteResult(ok({ final: { value: 'a'.repeat(MAX_FINAL_CHARS + 1), via: 'FINAL_VAR', variable: 'answer' } }), 100);
    expect(result.final).toBeNull();
    expect(result.status).toBe('error');
    expect(result.error).toEqual({
      type: 'FinalTooLargeError',
      message: expect.stringMatching(/^The answer given to FINAL_VAR\("answer"\) is 1,048,577 characters, over the limit of 1,048,576; the run did not end\./),
      stack: [],
    });
    const atLimit = recapExecuteResult(ok({ final: { value: 'a'.repeat(MAX_FINAL_CHARS), via: 'FINAL' } }), 100);
    expect(atLimit.final?.value.length).toBe(MAX_FINAL_CHARS);
  });

  it('caps the value, the variable listing, the error message and the stack', () => {
    const result = recapExecuteResult(
      ok({
        status: 'error',
        value: 'v'.repeat(1_000_000),
        variables: Array.from({ length: 5_000 }, (_, i) => ({ name: `v${i}`, type: 'number' })),
        error: { type: 'E'.repeat(1_000), message: 'm'.repeat(1_000_000), stack: Array.from({ length: 100 }, () => 's'.repeat(5_000)) },
      }),
      100,
    );
    expect(result.value?.length).toBeLessThanOrEqual(MAX_VALUE_CHARS);
    expect(result.value).toMatch(/… \(\d{3},\d{3} characters cut\)$/);
    expect(result.variables).toHaveLength(MAX_LISTED_VARIABLES);
    expect(result.error?.type).toHaveLength(256);
    expect(result.error?.message.length).toBeLessThanOrEqual(64 * 1024);
    expect(result.error?.stack).toHaveLength(32);
    expect(result.error?.stack.every((frame) => frame.length === 1024)).toBe(true);
  });
});
