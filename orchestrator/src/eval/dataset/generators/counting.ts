/**
 * `counting`: aggregation over many labelled records, in the style of OOLONG-synth (whose lines
 * read `Date: … || User: … || Instance: … || Label: …`). Unlike OOLONG's unlabelled setting the
 * label is written in each record, so the answer is computable from the context by code: the task
 * measures aggregation over a long context, not classification.
 */
import { type SeededRandom, seededRandom } from '../seeded-random.js';
import type { GeneratorOptions } from './options.js';
import { Prose } from './words.js';

/** The labels of OOLONG-synth's TREC-coarse subset. */
export const COUNTING_LABELS = ['abbreviation', 'entity', 'description and abstract concept', 'human being', 'location', 'numeric value'] as const;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const PREAMBLE =
  'The following lines are records, one per line. Each record has a date, a user ID, an instance (a question someone asked) and the label of that instance.\n';

/** The three kinds of question, dealt in turn so that any first few tasks have each. */
type CountingTask = 'count' | 'compare' | 'most_common';

/**
 * The rows of a `counting` dataset. Each task has its own records (labels drawn with uneven,
 * seeded weights) and asks, in turn: how many records have a label (`count`: a number, scored with
 * OOLONG's partial credit), which of two labels is more common (`compare`: a label) or which label
 * is the most common (`most_common`: a label). Each row: `id` (`counting-1`…), `query`, `context`,
 * `answer`, `scorer: 'oolong'` and `metadata` { `generator`, `seed`, `task`, `labels` (those the
 * question names), `records`, `counts` (per label), `context_chars` }.
 */
export function* countingRows(options: GeneratorOptions): Generator<Record<string, unknown>> {
  const { n, contextChars, seed } = options;
  for (let i = 0; i < n; i++) {
    const random = seededRandom(`counting:${seed}:${i}`);
    const { text, labels, records } = recordsText(random, contextChars);
    const counts = Object.fromEntries(COUNTING_LABELS.map((label) => [label, 0])) as Record<string, number>;
    for (const label of labels) counts[label] = (counts[label] ?? 0) + 1;
    const kinds: readonly CountingTask[] = ['count', 'compare', 'most_common'];
    const question = ask(kinds[i % kinds.length] as CountingTask, counts, random);
    yield {
      id: `counting-${i + 1}`,
      query: question.query,
      context: text,
      answer: question.answer,
      scorer: 'oolong',
      metadata: { generator: 'counting', seed, task: question.task, labels: question.labels, records, counts, context_chars: text.length },
    };
  }
}

function ask(
  kind: CountingTask,
  counts: Readonly<Record<string, number>>,
  random: SeededRandom,
): { task: CountingTask; query: string; answer: string; labels: string[] } {
  const byCount = [...COUNTING_LABELS].sort((a, b) => (counts[b] ?? 0) - (counts[a] ?? 0));
  const [top, second] = byCount as [string, string];
  if (kind === 'most_common' && counts[top] !== counts[second]) {
    return {
      task: kind,
      query: `Which label occurs most often among the records in the context? The labels are: ${COUNTING_LABELS.join(', ')}. Answer with the label only.`,
      answer: top,
      labels: [...COUNTING_LABELS],
    };
  }
  if (kind === 'compare') {
    const pairs = COUNTING_LABELS.flatMap((a, index) => COUNTING_LABELS.slice(index + 1).map((b) => [a, b] as const)).filter(
      ([a, b]) => counts[a] !== counts[b],
    );
    if (pairs.length > 0) {
      const [a, b] = random.shuffle(random.pick(pairs));
      const answer = (counts[a as string] ?? 0) > (counts[b as string] ?? 0) ? (a as string) : (b as string);
      return {
        task: kind,
        query: `Which label occurs more often among the records in the context: '${a}' or '${b}'? Answer with the label only.`,
        answer,
        labels: [a as string, b as string],
      };
    }
  }
  const label = random.pick(COUNTING_LABELS);
  return {
    task: 'count',
    query: `How many records in the context have the label '${label}'? Answer with a number only.`,
    answer: String(counts[label] ?? 0),
    labels: [label],
  };
}

/** Records of about `chars` characters (within a record of it), after a line saying what they are. */
function recordsText(random: SeededRandom, chars: number): { text: string; labels: string[]; records: number } {
  const prose = new Prose(random);
  // Uneven weights, so counts differ and the most common label is clear more often than not.
  const weights = COUNTING_LABELS.map(() => 0.2 + random.next());
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const drawLabel = (): string => {
    let x = random.next() * total;
    for (const [index, weight] of weights.entries()) {
      x -= weight;
      if (x < 0) return COUNTING_LABELS[index] as string;
    }
    return COUNTING_LABELS[COUNTING_LABELS.length - 1] as string;
  };
  const users = Array.from({ length: Math.max(3, Math.round(chars / 1500)) }, () => random.between(10_000, 99_999));
  const lines: string[] = [];
  const labels: string[] = [];
  let length = PREAMBLE.length;
  for (;;) {
    const label = drawLabel();
    const day = random.between(1, 28);
    const line = `Date: ${random.pick(MONTHS)} ${String(day).padStart(2, '0')}, ${random.between(2021, 2024)} || User: ${random.pick(users)} || Instance: ${prose.instance()} || Label: ${label}`;
    // At least three records, whatever the size asked for.
    if (lines.length >= 3 && length + line.length + 1 > chars) break;
    lines.push(line);
    labels.push(label);
    length += line.length + 1;
  }
  return { text: PREAMBLE + lines.join('\n'), labels, records: lines.length };
}
