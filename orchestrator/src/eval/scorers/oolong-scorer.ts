/**
 * `oolong`: the OOLONG benchmark's metric (Bertsch et al., "Oolong: Evaluating Long Context
 * Reasoning and Aggregation Capabilities", arXiv 2511.02817), as its harness computes it in
 * `synth_attempt_answer_parse` and `synth_process_response` of `src/eval/eval_helpers.py` in
 * github.com/abertsch72/oolong: numeric answers earn partial credit 0.75^|answer − expected|, the
 * relative-frequency answers (`more common`, `less common`, `same frequency`) match by phrase, dates
 * by their day, everything else by exact match.
 *
 * Reading the answer follows the harness's `synth_attempt_answer_parse`:
 * - with a `:` in it, the candidate is the text after the last `:`, trimmed, with `*` (bold), `[` and
 *   `]` removed (so `Answer: **12**`, `Label: [human being]` give `12` and `human being`); a candidate
 *   of 20 characters or more that holds `more common`, `less common` or `same frequency` becomes that phrase;
 * - without a `:`, the whole answer when it is shorter than 20 characters, else its last
 *   whitespace-separated word.
 *
 * Where this differs from the harness, on purpose:
 * - the answer is trimmed first (the harness measures the 20 characters untrimmed);
 * - text is compared after SQuAD normalisation (`normalizeAnswer`: case, punctuation, articles,
 *   whitespace), where the harness compares exactly (the RLM paper's reference harness already
 *   compares case-insensitively);
 * - a numeric candidate is read with `findNumbers` (so `12 users`, `12.` and `1,200` are numbers,
 *   where the harness's `int()` gives up and scores 0), and when the candidate holds no number the
 *   last number of the whole answer is used (`There are 12 such users.` → 12, where the harness
 *   takes the word `users.` and scores 0);
 * - expected answers as OOLONG's files store them are accepted: a Python list literal (`['12']`,
 *   `[12]`) counts as its first item, and `[datetime.date(2023, 3, 12)]` as that day.
 */
import type { Score, Scorer } from '../eval-types.js';
import { bestOf } from './best-of.js';
import { normalizeAnswer } from './normalize.js';
import { findNumbers } from './numbers.js';

/** OOLONG's partial credit for a numeric answer: 0.75 to the power of the absolute difference. */
export const OOLONG_NUMERIC_BASE = 0.75;

const COMPARISONS = ['more common', 'less common', 'same frequency'] as const;
const NUMBER_ONLY = /^[-+\u2212]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?$/;
const ISO_DATE = /^(\d{4})-(\d{1,2})-(\d{1,2})$/;
const PY_DATE = /^datetime\.date\(\s*(\d{4})\s*,\s*(\d{1,2})\s*,\s*(\d{1,2})\s*\)$/;
const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

export const oolongScorer: Scorer = {
  name: 'oolong',
  score: (input) => bestOf('oolong', input, scoreOolong),
};

/** The candidate answer OOLONG's harness reads from a model's output (see the module's doc). */
export function oolongCandidate(output: string): string {
  const answer = output.trim();
  if (!answer.includes(':')) return answer.length < 20 ? answer : (answer.split(/\s+/).at(-1) ?? '');
  let candidate = (answer.split(':').at(-1) ?? '').trim().replace(/[*[\]]/g, '');
  if (candidate.length >= 20) {
    const phrase = COMPARISONS.find((comparison) => candidate.includes(comparison));
    if (phrase) candidate = phrase;
  }
  return candidate;
}

/** One answer against one expected answer. */
export function scoreOolong(output: string, expectedText: string): Score {
  const expected = oolongGold(expectedText);
  const candidate = oolongCandidate(output);
  const normalizedCandidate = normalizeAnswer(candidate);
  const normalizedExpected = normalizeAnswer(expected);
  if (normalizedCandidate === normalizedExpected) return { score: 1 };
  const comparison = COMPARISONS.find((phrase) => normalizedCandidate === phrase);
  if (comparison) return { score: normalizedExpected.includes(comparison) ? 1 : 0 };
  if (NUMBER_ONLY.test(expected)) {
    const gold = findNumbers(expected)[0]?.value ?? Number.NaN;
    const given = findNumbers(candidate)[0] ?? findNumbers(output).at(-1);
    if (given === undefined) return { score: 0, note: 'no number in the answer' };
    const difference = Math.abs(given.value - gold);
    return { score: OOLONG_NUMERIC_BASE ** difference, note: `read ${given.text}, off by ${roundForNote(difference)}` };
  }
  const goldDay = parseDay(expected);
  if (goldDay !== undefined) return { score: parseDay(candidate) === goldDay ? 1 : 0 };
  return { score: 0 };
}

/** An expected answer as OOLONG's files store it (`['12']`, `[datetime.date(2023, 3, 12)]`), unwrapped. */
function oolongGold(expected: string): string {
  let text = expected.trim();
  const list = /^\[(.*)\]$/s.exec(text);
  if (list) {
    // The first item of a Python list literal; items are quoted strings or bare values.
    const inner = (list[1] ?? '').trim();
    const quoted = /^(['"])(.*?)\1/s.exec(inner);
    text = quoted ? (quoted[2] ?? '') : PY_DATE.test(inner) ? inner : (inner.split(',')[0] ?? '').trim();
  }
  const day = PY_DATE.exec(text);
  return day ? `${day[1]}-${day[2]}-${day[3]}` : text;
}

/** A day as `YYYY-M-D`, from ISO (`2023-03-12`), `datetime.date(2023, 3, 12)`, `Mar 12, 2023`, `March 12 2023` or `12 March 2023`; undefined for anything else. */
function parseDay(text: string): string | undefined {
  const trimmed = text.trim().replace(/\.$/, '');
  const iso = ISO_DATE.exec(trimmed) ?? PY_DATE.exec(trimmed);
  if (iso) return day(Number(iso[1]), Number(iso[2]), Number(iso[3]));
  const monthFirst = /^([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/.exec(trimmed);
  if (monthFirst) return day(Number(monthFirst[3]), monthNumber(monthFirst[1] ?? ''), Number(monthFirst[2]));
  const dayFirst = /^(\d{1,2})(?:st|nd|rd|th)?\s+([A-Za-z]+)\.?,?\s+(\d{4})$/.exec(trimmed);
  if (dayFirst) return day(Number(dayFirst[3]), monthNumber(dayFirst[2] ?? ''), Number(dayFirst[1]));
  return undefined;
}

function monthNumber(name: string): number {
  return MONTHS.indexOf(name.slice(0, 3).toLowerCase()) + 1;
}

function day(year: number, month: number, dayOfMonth: number): string | undefined {
  if (month < 1 || month > 12 || dayOfMonth < 1 || dayOfMonth > 31) return undefined;
  return `${year}-${month}-${dayOfMonth}`;
}

function roundForNote(value: number): string {
  return String(Math.round(value * 1e6) / 1e6);
}
