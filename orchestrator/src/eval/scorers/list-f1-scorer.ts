/**
 * `list-f1`: F1 over the items of a list answer, as the RLM paper scores OOLONG-Pairs (Zhang, Kraska,
 * Khattab, arXiv 2512.24601: the answer is a list of pairs; precision and recall over the set of pairs).
 *
 * Both the answer and each expected answer are read as a set of items:
 * - a JSON array gives its elements (a nested array is a group, below);
 * - otherwise the text (an `Answer:` prefix and one pair of enclosing `[…]` removed, as a Python list
 *   prints) is split at newlines, commas and semicolons outside brackets, so `(1, 2), (3, 4)` is two items;
 * - list markers (`- `, `* `, `• `, `1. `, `1) `) are removed from each item, and each is normalised
 *   as SQuAD does (`normalizeAnswer`; an item that is only an article, like `A`, keeps its letters);
 *   empty items are dropped and duplicates count once;
 * - an item in brackets, `(a, b)` or `[a, b]`, is an unordered group: its members are normalised
 *   and sorted, so `(7, 3)` and `(3, 7)` are the same pair, as OOLONG-Pairs counts pairs.
 *
 * Precision = shared items / answer items, recall = shared items / expected items, score = their
 * harmonic mean (0 when nothing is shared; 1 when both lists are empty). The note gives the counts.
 */
import type { Scorer } from '../eval-types.js';
import { bestOf } from './best-of.js';
import { normalizeAnswer } from './normalize.js';

export const listF1Scorer: Scorer = {
  name: 'list-f1',
  score: (input) =>
    bestOf('list-f1', input, (answer, expected) => {
      const given = listItems(answer);
      const wanted = listItems(expected);
      let shared = 0;
      for (const item of given) if (wanted.has(item)) shared++;
      const note = `${shared} of ${given.size} answer items right, ${shared} of ${wanted.size} expected found`;
      if (given.size === 0 && wanted.size === 0) return { score: 1, note };
      if (shared === 0) return { score: 0, note };
      const precision = shared / given.size;
      const recall = shared / wanted.size;
      return { score: (2 * precision * recall) / (precision + recall), note };
    }),
};

const OPEN = '([{';
const CLOSE = ')]}';
const SEPARATORS = '\n,;';
const MARKER = /^(?:[-*•]|\d+[.)])\s+/;
const PREFIX = /^(?:final\s+)?answer\s*:\s*/i;

/** The set of normalised items of a list answer (see the module's doc). */
export function listItems(text: string): Set<string> {
  const trimmed = text.trim().replace(PREFIX, '');
  const items = new Set<string>();
  const add = (item: string) => {
    if (item !== '') items.add(item);
  };
  const fromJson = parseJsonArray(trimmed);
  if (fromJson) {
    for (const value of fromJson) add(Array.isArray(value) ? group(value.map(jsonText)) : itemKey(jsonText(value)));
    return items;
  }
  const body = /^\[[\s\S]*\]$/.test(trimmed) && balancedWhole(trimmed) ? trimmed.slice(1, -1) : trimmed;
  for (const raw of splitTopLevel(body, SEPARATORS)) {
    const item = raw.trim().replace(MARKER, '').trim();
    const inner = OPEN.includes(item[0] ?? ' ') && balancedWhole(item) ? item.slice(1, -1) : undefined;
    add(inner === undefined ? itemKey(item) : group(splitTopLevel(inner, SEPARATORS)));
  }
  return items;
}

/**
 * An item normalised as SQuAD does; an item that is only an article (`A`, `the`), which SQuAD
 * normalises to nothing, keeps its lower-cased letters so a list of letters or grades still counts.
 */
function itemKey(item: string): string {
  return (
    normalizeAnswer(item) ||
    item
      .normalize('NFKC')
      .toLowerCase()
      .replace(/[\p{P}\p{S}\s]/gu, '')
  );
}

/** An unordered group's key: members normalised, empty ones dropped, sorted, joined by a space. */
function group(members: readonly string[]): string {
  return members
    .map(itemKey)
    .filter((member) => member !== '')
    .sort()
    .join(' ');
}

function jsonText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(jsonText).join(' ');
  return JSON.stringify(value) ?? '';
}

function parseJsonArray(text: string): unknown[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Pieces of `text` between separator characters that are outside every bracket. */
function splitTopLevel(text: string, separators: string): string[] {
  const pieces: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (OPEN.includes(char)) depth++;
    else if (CLOSE.includes(char)) depth = Math.max(0, depth - 1);
    else if (depth === 0 && separators.includes(char)) {
      pieces.push(text.slice(start, i));
      start = i + 1;
    }
  }
  pieces.push(text.slice(start));
  return pieces;
}

/** True when the text's first character opens a bracket that its last character closes (`(a), (b)` is not). */
function balancedWhole(text: string): boolean {
  if (text.length < 2 || !OPEN.includes(text[0] as string) || !CLOSE.includes(text.at(-1) as string)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i] as string;
    if (OPEN.includes(char)) depth++;
    else if (CLOSE.includes(char)) depth--;
    if (depth === 0 && i < text.length - 1) return false;
  }
  return depth === 0;
}
