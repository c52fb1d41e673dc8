/**
 * Numbers as they appear in answers, for the `numeric` and `oolong` scorers.
 *
 * What counts as a number:
 * - digits with an optional decimal part (`12`, `12.5`, `.5`) and an optional exponent (`1e6`);
 * - thousands separated by commas, when every group after the first has exactly three digits
 *   (`1,234,567` is 1234567; `12,34` is 12 followed by 34, as in a list: a comma is never a decimal point);
 * - a sign (`-`, `+` or the Unicode minus `−`) when it does not follow a letter or digit, so `-3` is
 *   negative but `COVID-19` and `2020-2021` hold the positive numbers 19 and 2021;
 * - a percentage when `%` or the word `percent` follows: `45%` is the number 45 with `percent: true`
 *   (the scorers decide what a percentage equals; see `numeric`).
 */

/** One number found in a text. */
export interface FoundNumber {
  /** The value as written (`45` for `45%`). */
  value: number;
  /** `%` or `percent` followed it. */
  percent: boolean;
  /** The text matched, e.g. `-1,234.5%`. */
  text: string;
}

const NUMBER =
  /(?:(?<![\p{L}\p{N}])([-+\u2212]))?(?<![\p{N}.])(\d{1,3}(?:,\d{3})+(?![\d])(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE]([-+]?\d+)(?![\p{L}\p{N}]))?(\s?(?:%|percent\b))?/gu;

/** Every number in `text`, in order (see the module's doc for what counts). */
export function findNumbers(text: string): FoundNumber[] {
  const found: FoundNumber[] = [];
  for (const match of text.normalize('NFKC').matchAll(NUMBER)) {
    const [whole, sign, digits, exponent, percent] = match;
    if (digits === undefined) continue;
    let value = Number(digits.replaceAll(',', ''));
    if (exponent !== undefined) value *= 10 ** Number(exponent);
    if (sign === '-' || sign === '\u2212') value = -value;
    if (!Number.isFinite(value)) continue;
    found.push({ value, percent: percent !== undefined, text: whole.trim() });
  }
  return found;
}

/** The first number in `text`, or undefined when it has none. */
export function firstNumber(text: string): FoundNumber | undefined {
  return findNumbers(text)[0];
}
