/**
 * A fake host for sub-calls: records every `onSubcall` it receives and answers with a function of
 * the prompt, so tests can assert on what a cell sent.
 */
import type { SubcallOutcome, SubcallParams, SubcallResult } from '@rlm/shared';

export interface RecordingSubcalls {
  /** Pass as `onSubcall`. */
  readonly onSubcall: (params: SubcallParams, options: { signal: AbortSignal }) => Promise<SubcallResult>;
  /** Every request received, in order. */
  readonly calls: SubcallParams[];
}

/**
 * @param answer the outcome for one prompt: a string for success, an Error for a failed slot;
 *   throwing fails the whole call. Default: echoes `answer to: <prompt>`.
 */
export function recordingSubcalls(
  answer: (prompt: string, params: SubcallParams) => string | Error | Promise<string | Error> = (prompt) => `answer to: ${prompt}`,
): RecordingSubcalls {
  const calls: SubcallParams[] = [];
  return {
    calls,
    async onSubcall(params) {
      calls.push(params);
      const outcomes: SubcallOutcome[] = [];
      for (const prompt of params.prompts) {
        const result = await answer(prompt, params);
        outcomes.push(result instanceof Error ? { ok: false, error: result.message } : { ok: true, text: result });
      }
      return { outcomes };
    },
  };
}
