import { ExecuteResult, MAX_FINAL_CHARS, MAX_LISTED_VARIABLES } from '@rlm/shared';
import { describe, expect, test } from 'vitest';
import { limitReport } from './report-limits.js';
import type { CellReport } from './worker-messages.js';

const none = { text: '', truncatedChars: 0 };
const fine: CellReport = { status: 'ok', stdout: none, stderr: none, error: null, final: null, variables: [] };

/** A report as the main thread turns it into a result, checked against the protocol's schema. */
function asResult(raw: unknown, outputLimitChars = 1000): ExecuteResult {
  return ExecuteResult.parse({ ...limitReport(raw, outputLimitChars), stateLost: false, durationMs: 1 });
}

describe('limitReport', () => {
  test('a report within the limits passes unchanged', () => {
    const report: CellReport = {
      ...fine,
      stdout: { text: 'hi\n', truncatedChars: 0 },
      value: "'x'",
      final: { value: 'done', via: 'FINAL_VAR', variable: 'answer' },
      variables: [{ name: 'answer', type: 'string' }],
    };
    expect(limitReport(report, 1000)).toEqual(report);
  });

  test('every oversized field of a forged report is cut to what the schema allows', () => {
    const result = asResult({
      status: 'error',
      stdout: { text: 'o'.repeat(50_000), truncatedChars: -3 },
      stderr: { text: 'e'.repeat(2000), truncatedChars: 1.5 },
      value: 'v'.repeat(10_000),
      error: { type: 'T'.repeat(1000), message: 'm'.repeat(1_000_000), stack: Array.from({ length: 500 }, () => 'f'.repeat(5000)) },
      final: null,
      variables: Array.from({ length: 50_000 }, (_, i) => ({ name: `${'n'.repeat(1000)}${i}`, type: 't'.repeat(1000) })),
    });
    expect(result.stdout.text.length).toBeLessThanOrEqual(1000);
    expect(result.stdout.truncatedChars).toBe(
      50_000 - result.stdout.text.length + /\n\[\.\.\. [\d,]+ characters truncated \.\.\.\]\n/.exec(result.stdout.text)![0].length,
    );
    expect(result.stderr.truncatedChars).toBeGreaterThan(0);
    expect(result.value?.length).toBeLessThanOrEqual(2000);
    expect(result.error?.type).toHaveLength(256);
    expect(result.error?.message.length).toBeLessThanOrEqual(64 * 1024);
    expect(result.error?.stack).toHaveLength(32);
    expect(result.variables).toHaveLength(MAX_LISTED_VARIABLES);
    expect(result.variables[0]?.name).toHaveLength(256);
  });

  test('an answer past MAX_FINAL_CHARS is dropped and the cell reported as a FinalTooLargeError', () => {
    const result = asResult({ ...fine, final: { value: 'f'.repeat(MAX_FINAL_CHARS + 1), via: 'FINAL', variable: 'w'.repeat(1000) } });
    expect(result.final).toBeNull();
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('FinalTooLargeError');
    expect(result.error?.message).toContain('1,048,577 characters');
  });

  test('the variable of an answer is cut to 256 characters', () => {
    expect(asResult({ ...fine, final: { value: 'ok', via: 'FINAL_VAR', variable: 'w'.repeat(1000) } }).final?.variable).toHaveLength(256);
  });

  test.each([
    null,
    'report',
    42,
    [],
    { ...fine, status: 'done' },
    { ...fine, stdout: null },
    { ...fine, variables: [{ name: 1 }] },
    { ...fine, final: { value: 'x', via: 'OTHER' } },
  ])('a report of the wrong shape (%j) becomes an InternalError', (raw) => {
    const result = asResult(raw);
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('InternalError');
  });
});
