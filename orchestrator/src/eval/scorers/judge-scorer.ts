import type { ModelRole } from '../../engine/rlm-options.js';
import type { Scorer } from '../eval-types.js';
import { ScorerError } from './scorer-error.js';

/** The `judge` scorer's model and, optionally, its prompt. */
export interface JudgeOptions {
  /** The model that judges (`--judge-model`); its backend's `complete` is called once per answer. */
  role: ModelRole;
  /**
   * The prompt, replacing {@link DEFAULT_JUDGE_PROMPT} (`--judge-prompt`): `{question}`,
   * `{expected}` and `{answer}` are replaced by the task's query, its expected answers (one per line,
   * `- ` before each when there are several) and the answer. It must ask for the verdict in the form
   * the scorer reads: a line `VERDICT: CORRECT`, `VERDICT: INCORRECT` or `VERDICT: <grade from 0 to 1>`,
   * and may ask for a line `REASON: …`. Sent as the only user message, with no system prompt.
   */
  prompt?: string | undefined;
}

/** The judge's system prompt with the default prompt. */
export const DEFAULT_JUDGE_SYSTEM =
  'You grade answers to questions, strictly and impartially. An answer is correct when it gives the same answer as one of the expected answers, in any wording or format; an explanation around it is fine. An answer that is different, incomplete, hedged between several options, or refuses, is incorrect.';

/** The judge's default prompt; see {@link JudgeOptions.prompt} for the placeholders and the verdict it must ask for. */
export const DEFAULT_JUDGE_PROMPT = `Question:
{question}

Expected answer (any one of these is correct):
{expected}

Answer to grade:
{answer}

Is the answer to grade correct? Reply with exactly two lines and nothing else:
REASON: <one sentence saying why>
VERDICT: CORRECT or INCORRECT`;

const PLACEHOLDER = /\{(question|expected|answer)\}/g;
const VERDICT_LINE = /^\s*(?:VERDICT|GRADE)\s*:\s*(.*?)\s*$/i;
const REASON_LINE = /^\s*REASON\s*:\s*(.*?)\s*$/i;
const GRADE = /^(?:0(?:\.\d+)?|1(?:\.0+)?|\.\d+)$/;
const NOTE_CHARS = 500;

/**
 * `judge`: asks a model whether the answer is right. One call per answer, the task's query, expected
 * answers and the answer filled into the prompt; the reply is read strictly: exactly one verdict
 * (`VERDICT: CORRECT` → 1, `VERDICT: INCORRECT` → 0, `VERDICT: 0.7` → 0.7; `GRADE:` works too; markdown
 * `*` and backticks are ignored; several verdict lines must agree), or a reply that is only
 * `CORRECT` or `INCORRECT`. The note is the judge's `REASON:` line, or the reply's other text. A null
 * answer scores 0 without a call. The judge's tokens and cost are not in the result's.
 *
 * @throws {ScorerError} the reply has no verdict, contradictory ones, or a grade outside [0, 1]
 *   (the message quotes the reply's start).
 * @throws {ModelCallError} the judge's backend failed or `signal` fired.
 */
export function judgeScorer(options: JudgeOptions): Scorer {
  const { role } = options;
  const template = options.prompt ?? DEFAULT_JUDGE_PROMPT;
  return {
    name: 'judge',
    async score(input) {
      if (input.answer === null) return { score: 0, note: 'no answer' };
      const values: Record<string, string> = {
        question: input.task.query,
        expected: formatExpected(input.expected),
        answer: input.answer,
      };
      // One pass, so an answer that contains `{question}` is not expanded.
      const prompt = template.replace(PLACEHOLDER, (_, name: string) => values[name] ?? '');
      const response = await role.backend.complete(
        {
          model: role.model,
          ...(options.prompt === undefined ? { system: DEFAULT_JUDGE_SYSTEM } : {}),
          messages: [{ role: 'user', content: prompt }],
          ...(role.maxOutputTokens === undefined ? {} : { maxOutputTokens: role.maxOutputTokens }),
        },
        { signal: input.signal },
      );
      return parseVerdict(response.text);
    },
  };
}

function formatExpected(expected: readonly string[]): string {
  if (expected.length === 0) return '(none given: judge the answer on its own merits)';
  if (expected.length === 1) return expected[0] as string;
  return expected.map((item) => `- ${item}`).join('\n');
}

/**
 * A judge's reply as a score (see {@link judgeScorer}).
 *
 * @throws {ScorerError} no verdict, contradictory verdicts, or a grade outside [0, 1].
 */
export function parseVerdict(reply: string): { score: number; note?: string } {
  const lines = reply.replace(/[*`]/g, '').split(/\r?\n/);
  const verdicts: number[] = [];
  const reasons: string[] = [];
  const other: string[] = [];
  for (const line of lines) {
    const verdict = VERDICT_LINE.exec(line);
    const reason = REASON_LINE.exec(line);
    if (verdict) verdicts.push(verdictValue(verdict[1] ?? '', reply));
    else if (reason) reasons.push(reason[1] ?? '');
    else if (line.trim() !== '') other.push(line.trim());
  }
  if (verdicts.length === 0) {
    const bare = reply.replace(/[*`.]/g, '').trim().toUpperCase();
    if (bare === 'CORRECT' || bare === 'INCORRECT') return { score: bare === 'CORRECT' ? 1 : 0 };
    throw new ScorerError('judge', `the judge's reply has no verdict line (VERDICT: CORRECT or VERDICT: INCORRECT): ${quote(reply)}`);
  }
  if (verdicts.some((value) => value !== verdicts[0])) throw new ScorerError('judge', `the judge's reply has contradictory verdicts: ${quote(reply)}`);
  const reason = (reasons.length > 0 ? reasons.join(' ') : other.join(' ')).trim();
  const score = verdicts[0] as number;
  return reason === '' ? { score } : { score, note: reason.length > NOTE_CHARS ? `${reason.slice(0, NOTE_CHARS)}…` : reason };
}

function verdictValue(text: string, reply: string): number {
  const value = text.replace(/[.!]+$/, '').trim();
  if (/^correct$/i.test(value)) return 1;
  if (/^incorrect$/i.test(value)) return 0;
  if (GRADE.test(value)) return Number(value);
  throw new ScorerError('judge', `the judge's verdict ${JSON.stringify(text)} is neither CORRECT, INCORRECT nor a grade from 0 to 1: ${quote(reply)}`);
}

function quote(reply: string): string {
  const shown = reply.trim();
  return JSON.stringify(shown.length > 300 ? `${shown.slice(0, 300)}…` : shown);
}
