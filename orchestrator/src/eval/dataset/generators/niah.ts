/**
 * `niah`: single needle in a haystack, as RULER's S-NIAH. Each task's context is essay-like prose
 * (./words.ts) of about the requested size with one sentence — "The special magic number for
 * <key> is <7-digit number>." — at a controlled depth; the query asks for that number.
 */
import { seededRandom } from '../seeded-random.js';
import type { GeneratorOptions } from './options.js';
import { Prose } from './words.js';

/**
 * The rows of a `niah` dataset. Depths are `n` evenly spaced points of [0, 1] (0: the needle opens
 * the text; 1: it closes it), dealt to the tasks in a seeded order so that any first few tasks
 * (`--limit`) spread over the whole range too. Each row: `id` (`niah-1`…), `query`, `context`,
 * `answer` (the number) and `metadata` { `generator`, `seed`, `depth`, `context_chars`,
 * `needle_position` (the needle's offset in characters), `key` }.
 */
export function* niahRows(options: GeneratorOptions): Generator<Record<string, unknown>> {
  const { n, contextChars, seed } = options;
  const depths = seededRandom(`niah:${seed}:depths`).shuffle(
    Array.from({ length: n }, (_, i) => (n === 1 ? 0.5 : Math.round((i / (n - 1)) * 10_000) / 10_000)),
  );
  for (let i = 0; i < n; i++) {
    const random = seededRandom(`niah:${seed}:${i}`);
    const prose = new Prose(random);
    const key = prose.key();
    const number = String(random.between(1_000_000, 9_999_999));
    const needle = `The special magic number for ${key} is ${number}.`;
    const depth = depths[i] as number;
    const { text, needlePosition } = haystack(prose, contextChars, needle, depth, number);
    yield {
      id: `niah-${i + 1}`,
      query: `What is the special magic number for ${key} mentioned in the provided text? Answer with the number only.`,
      context: text,
      answer: number,
      metadata: { generator: 'niah', seed, depth, context_chars: text.length, needle_position: needlePosition, key },
    };
  }
}

/**
 * Prose of about `chars` characters (within a sentence of it) in paragraphs of four to eight
 * sentences, with `needle` placed as a sentence of its own where the text before it is nearest to
 * `depth` of the whole. A filler sentence that happens to contain `secret` is drawn again.
 */
function haystack(prose: Prose, chars: number, needle: string, depth: number, secret: string): { text: string; needlePosition: number } {
  const sentences: string[] = [];
  /** Whether a paragraph break comes before each sentence. */
  const breaks: boolean[] = [];
  let length = 0;
  let left = 0;
  const budget = Math.max(0, chars - needle.length - 1);
  while (length < budget) {
    let sentence = prose.sentence();
    while (sentence.includes(secret)) sentence = prose.sentence();
    const newParagraph = left === 0;
    if (newParagraph) left = 4 + (sentences.length % 5);
    left--;
    const separator = sentences.length === 0 ? 0 : newParagraph ? 2 : 1;
    if (length + separator + sentence.length > budget && sentences.length > 0) break;
    sentences.push(sentence);
    breaks.push(newParagraph);
    length += separator + sentence.length;
  }
  // The insertion point: the sentence boundary nearest to depth × the filler's length.
  const target = depth * length;
  let at = 0;
  let offset = 0;
  let bestDistance = Math.abs(target);
  for (let i = 0; i < sentences.length; i++) {
    offset += (i === 0 ? 0 : breaks[i] ? 2 : 1) + (sentences[i] as string).length;
    const distance = Math.abs(target - offset);
    if (distance < bestDistance) {
      bestDistance = distance;
      at = i + 1;
    }
  }
  sentences.splice(at, 0, needle);
  // The needle continues the paragraph it lands in (or opens the text).
  breaks.splice(at, 0, false);
  if (at === 0 && breaks.length > 1) breaks[1] = true;
  let text = '';
  let needlePosition = 0;
  for (let i = 0; i < sentences.length; i++) {
    if (i > 0) text += breaks[i] ? '\n\n' : ' ';
    if (i === at) needlePosition = text.length;
    text += sentences[i];
  }
  return { text, needlePosition };
}
