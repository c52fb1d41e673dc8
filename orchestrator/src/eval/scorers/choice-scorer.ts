import type { EvalTask, Scorer } from '../eval-types.js';
import { bestOf } from './best-of.js';
import { normalizeAnswer } from './normalize.js';
import { ScorerError } from './scorer-error.js';

/**
 * `choice`: multiple choice. 1 when the letter the answer chose is the expected one, else 0; the note
 * says which letter was read (or that none was).
 *
 * The letter is read from the answer (markdown `*` and backticks removed) by the first rule that
 * finds one inside the task's range (A… as many letters as `task.choices`; A–Z without choices):
 * 1. the whole answer is a letter: `B`, `b`, `(B)`, `[B]`, `B.`, `B)`;
 * 2. the last `answer`/`choice`/`option` followed by a letter: `Answer: B`, `The answer is (B)`, `option C`;
 * 3. the answer starts with a letter and `)`, `.`, `:` or `]`: `B) Paris`, `(B) Paris`, `B. Paris`;
 * 4. the last capital letter in brackets: `… so I pick (C).`;
 * 5. the text of one choice: the normalised answer equals a choice's normalised text, or contains
 *    exactly one choice's (as whole words).
 * Capital letters only in rules 2–4 (unless in brackets), so `a` in "answer is a dog" is not a choice.
 *
 * The expected answer is a letter (`B`, `(b)`) or the text of one of `task.choices`.
 *
 * @throws {ScorerError} an expected answer is neither a letter nor one of the task's choices.
 */
export const choiceScorer: Scorer = {
  name: 'choice',
  score: (input) =>
    bestOf('choice', input, (answer, expected) => {
      const want = expectedLetter(expected, input.task);
      const chosen = chosenLetter(answer, input.task.choices);
      if (chosen === undefined) return { score: 0, note: 'no choice found in the answer' };
      return { score: chosen === want ? 1 : 0, note: `chose ${chosen}` };
    }),
};

const WHOLE = /^[([]?([A-Za-z])[)\].:]?$/;
const AFTER_KEYWORD =
  /(?:[Aa]nswer|ANSWER|[Cc]hoice|CHOICE|[Oo]ption|OPTION)(?:\s+is)?\s*[:=-]?\s*(?:(?:[Oo]ption|[Cc]hoice)\s+)?(?:[([]([A-Za-z])[)\]]|([A-Z])(?![\p{L}\p{N}]))/gu;
const LEADING = /^(?:[([]([A-Za-z])[)\]]|([A-Z])[).:\]])(?:\s|$)/u;
const BRACKETED = /[([]([A-Z])[)\]]/g;

/** The letter of choice `index` (0 → `A`). */
export function choiceLetter(index: number): string {
  return String.fromCharCode(65 + index);
}

/** The letter an answer chose, by the rules of {@link choiceScorer}, or undefined. */
export function chosenLetter(answer: string, choices: readonly string[] | undefined): string | undefined {
  const text = answer.replace(/[*`]/g, '').trim();
  const count = choices !== undefined && choices.length > 0 ? Math.min(choices.length, 26) : 26;
  const valid = (letter: string | undefined): string | undefined => {
    if (letter === undefined) return undefined;
    const upper = letter.toUpperCase();
    return upper.charCodeAt(0) - 65 < count ? upper : undefined;
  };
  const whole = valid(WHOLE.exec(text)?.[1]);
  if (whole) return whole;
  const keyword = [...text.matchAll(AFTER_KEYWORD)]
    .map((match) => valid(match[1] ?? match[2]))
    .filter((letter) => letter !== undefined)
    .at(-1);
  if (keyword) return keyword;
  const leading = LEADING.exec(text);
  const lead = valid(leading?.[1] ?? leading?.[2]);
  if (lead) return lead;
  const bracketed = [...text.matchAll(BRACKETED)]
    .map((match) => valid(match[1]))
    .filter((letter) => letter !== undefined)
    .at(-1);
  if (bracketed) return bracketed;
  if (choices === undefined || choices.length === 0) return undefined;
  const normalized = normalizeAnswer(text);
  const options = choices.map(normalizeAnswer);
  const equal = options.findIndex((option) => option !== '' && option === normalized);
  if (equal >= 0) return choiceLetter(equal);
  const contained = options.flatMap((option, index) => (option !== '' && ` ${normalized} `.includes(` ${option} `) ? [index] : []));
  return contained.length === 1 ? choiceLetter(contained[0] as number) : undefined;
}

function expectedLetter(expected: string, task: EvalTask): string {
  const letter = WHOLE.exec(expected.trim())?.[1];
  const choices = task.choices ?? [];
  if (letter !== undefined && (choices.length === 0 || letter.toUpperCase().charCodeAt(0) - 65 < choices.length)) return letter.toUpperCase();
  const index = choices.findIndex((choice) => normalizeAnswer(choice) === normalizeAnswer(expected));
  if (index >= 0) return choiceLetter(index);
  throw new ScorerError(
    'choice',
    `the expected answer ${JSON.stringify(expected)} of task ${task.id} is neither a letter${choices.length > 0 ? ` from A to ${choiceLetter(choices.length - 1)}` : ''} nor the text of one of its choices`,
  );
}
