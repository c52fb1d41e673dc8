/**
 * Answer normalisation as the SQuAD evaluation script does it (`normalize_answer` in SQuAD v1.1/v2.0's
 * `evaluate-v2.0.py`): lower case, punctuation removed, the articles a/an/the removed, whitespace
 * collapsed. Used by `em`, `f1`, `contains`, `list-f1`, `choice` and `oolong`.
 *
 * Two deliberate widenings of the script's ASCII rules, so curly quotes, dashes and full-width
 * characters in model output do not cost a match: the text is first NFKC-normalised (full-width
 * digits and letters become ASCII, ligatures split), and "punctuation" is every Unicode punctuation
 * or symbol character (`\p{P}`, `\p{S}`: a superset of Python's `string.punctuation`). As in SQuAD,
 * punctuation is deleted, not replaced by a space: `don't` → `dont`, `1,000` → `1000`.
 */

const PUNCTUATION = /[\p{P}\p{S}]/gu;
const ARTICLES = /\b(?:a|an|the)\b/g;
const WHITESPACE = /\s+/g;

/** `text` normalised as SQuAD does (see the module's doc); the empty string for text of punctuation and articles only. */
export function normalizeAnswer(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(PUNCTUATION, '').replace(ARTICLES, ' ').replace(WHITESPACE, ' ').trim();
}

/** The tokens of {@link normalizeAnswer}'s result (split on whitespace); empty for an empty answer. */
export function answerTokens(text: string): string[] {
  const normalized = normalizeAnswer(text);
  return normalized === '' ? [] : normalized.split(' ');
}
