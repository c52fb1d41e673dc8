/**
 * How much of a sub-call's text a run keeps in its records — and so in `RlmResult.trajectory` and
 * the trajectory file. A cell decides how large its prompts are; what the host keeps of them is
 * decided here, so a turn's record is bounded by these numbers, never by a payload:
 *
 * - a sub-call's prompt or response up to {@link RECORDED_TEXT_LIMIT_CHARS} (64 Ki characters) is
 *   kept whole; a longer one keeps its first 48 Ki and last 16 Ki characters around a marker that
 *   says how many were left out, and the record says the full length (`promptChars`);
 * - a prompt that was refused (it would not fit the model's window, or a prompt-bytes cap was
 *   reached) keeps only its first {@link REFUSED_PROMPT_PREFIX_CHARS} (200) characters;
 * - a cell's first {@link MAX_RECORDED_SUBCALLS_PER_CELL} (1,000) sub-calls are recorded; later
 *   ones are counted (`BlockRecord.subcallsNotRecorded`), not kept.
 *
 * Characters are UTF-16 code units, as `String.length` counts them.
 */

/** Longest sub-call prompt or response kept whole in a record, in characters (64 Ki). */
export const RECORDED_TEXT_LIMIT_CHARS = 64 * 1024;

/** Characters kept from the end of a text longer than {@link RECORDED_TEXT_LIMIT_CHARS} (the rest of the limit is its beginning). */
export const RECORDED_TEXT_TAIL_CHARS = 16 * 1024;

/** Characters kept of a refused prompt: enough to recognise it, never the payload. */
export const REFUSED_PROMPT_PREFIX_CHARS = 200;

/** Sub-calls recorded per cell; the rest are only counted. */
export const MAX_RECORDED_SUBCALLS_PER_CELL = 1_000;

/**
 * `text` if it has at most `limitChars` characters; otherwise its beginning and its last
 * `tailChars` characters (together `limitChars`) around a marker saying how many characters were
 * left out of how many. The result never shares memory with `text` when it is shorter than it.
 */
export function clipForRecord(text: string, limitChars = RECORDED_TEXT_LIMIT_CHARS, tailChars = RECORDED_TEXT_TAIL_CHARS): string {
  if (text.length <= limitChars) return text;
  const tail = Math.max(0, Math.min(tailChars, limitChars));
  const headEnd = safeEnd(text, limitChars - tail);
  const tailStart = safeStart(text, text.length - tail);
  const left = tailStart - headEnd;
  return detach(`${text.slice(0, headEnd)}\n… [${count(left)} characters not recorded; ${count(text.length)} in all] …\n${text.slice(tailStart)}`);
}

/**
 * The first `chars` characters of `text`, with a marker giving its full length when it is longer:
 * what a record keeps of a refused prompt.
 */
export function prefixForRecord(text: string, chars = REFUSED_PROMPT_PREFIX_CHARS): string {
  if (text.length <= chars) return text;
  return detach(`${text.slice(0, safeEnd(text, chars))}… [${count(text.length)} characters in all; only the first ${count(chars)} recorded]`);
}

/**
 * A copy of `text` that holds no reference to the string it was sliced from. V8 represents a slice
 * of a long string as a view of its parent, so keeping a 200-character prefix of a 5 MiB prompt
 * would keep the 5 MiB alive; a copy through a buffer does not (UTF-16, so every code unit —
 * a lone surrogate included — survives unchanged).
 */
function detach(text: string): string {
  return Buffer.from(text, 'utf16le').toString('utf16le');
}

/** `end`, moved back one if it would split a surrogate pair. */
function safeEnd(text: string, end: number): number {
  return end > 0 && isHighSurrogate(text.charCodeAt(end - 1)) ? end - 1 : end;
}

/** `start`, moved on one if it would split a surrogate pair. */
function safeStart(text: string, start: number): number {
  return start < text.length && isLowSurrogate(text.charCodeAt(start)) ? start + 1 : start;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;
const count = (n: number) => n.toLocaleString('en-US');
