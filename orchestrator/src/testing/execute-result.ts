/** Test data: an `ExecuteResult` of a cell that succeeded, with the fields a test cares about changed. */
import type { ExecuteResult } from '@rlm/shared';

export function executeResult(overrides: Partial<ExecuteResult> = {}): ExecuteResult {
  return {
    status: 'ok',
    stdout: { text: '', truncatedChars: 0 },
    stderr: { text: '', truncatedChars: 0 },
    error: null,
    final: null,
    stateLost: false,
    variables: [],
    durationMs: 0,
    ...overrides,
  };
}
