import { RlmError, type RlmErrorOptions } from '../../errors.js';

/**
 * A scorer could not score an answer: the task does not give what it needs (no expected answer, an
 * expected value that is not a number for `numeric`, a pattern that does not compile for `regex`), a
 * judge's reply had no verdict, or a scorer module returned something that is not a score. The
 * runner records the result as an error of kind `scorer` (excluded from accuracy, counted).
 * `kind`: `scorer`.
 */
export class ScorerError extends RlmError {
  /** The marker by which `ScorerError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.ScorerError';
  /** `'ScorerError'`, as stack traces and `String(error)` show it. */
  override name = 'ScorerError';
  constructor(
    /** The scorer's name (`numeric`, `judge`…) or module path; the message starts with it. */
    readonly scorer: string,
    message: string,
    options?: RlmErrorOptions,
  ) {
    super(`${scorer}: ${message}`, { kind: 'scorer', ...options });
  }
}
