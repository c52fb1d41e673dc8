/**
 * Word lists and sentence templates for generated haystacks: essay-like prose in which each
 * sentence is put together from random words, so no two paragraphs repeat, lines cannot be
 * deduplicated away, and numbers (years, prices, seven-digit figures) appear throughout, as the
 * needle's does. Meaning is not the point; looking like ordinary text is.
 */
import type { SeededRandom } from '../seeded-random.js';

/** [singular, plural] */
const NOUNS: ReadonlyArray<readonly [string, string]> = [
  ['idea', 'ideas'],
  ['startup', 'startups'],
  ['company', 'companies'],
  ['essay', 'essays'],
  ['program', 'programs'],
  ['language', 'languages'],
  ['city', 'cities'],
  ['market', 'markets'],
  ['problem', 'problems'],
  ['question', 'questions'],
  ['habit', 'habits'],
  ['project', 'projects'],
  ['founder', 'founders'],
  ['investor', 'investors'],
  ['painter', 'painters'],
  ['hacker', 'hackers'],
  ['school', 'schools'],
  ['book', 'books'],
  ['theory', 'theories'],
  ['design', 'designs'],
  ['machine', 'machines'],
  ['garden', 'gardens'],
  ['river', 'rivers'],
  ['library', 'libraries'],
  ['customer', 'customers'],
  ['product', 'products'],
  ['mistake', 'mistakes'],
  ['argument', 'arguments'],
  ['tradition', 'traditions'],
  ['experiment', 'experiments'],
  ['office', 'offices'],
  ['meeting', 'meetings'],
  ['draft', 'drafts'],
  ['rule', 'rules'],
  ['tool', 'tools'],
  ['map', 'maps'],
  ['village', 'villages'],
  ['kitchen', 'kitchens'],
  ['letter', 'letters'],
  ['window', 'windows'],
  ['engine', 'engines'],
  ['journal', 'journals'],
  ['museum', 'museums'],
  ['harbor', 'harbors'],
  ['recipe', 'recipes'],
  ['budget', 'budgets'],
  ['lecture', 'lectures'],
  ['notebook', 'notebooks'],
  ['bridge', 'bridges'],
  ['festival', 'festivals'],
];

const ADJECTIVES = [
  'quiet',
  'ambitious',
  'obvious',
  'strange',
  'careful',
  'durable',
  'expensive',
  'small',
  'unusual',
  'early',
  'late',
  'patient',
  'simple',
  'complicated',
  'honest',
  'famous',
  'forgotten',
  'practical',
  'curious',
  'rigorous',
  'fragile',
  'generous',
  'modest',
  'restless',
  'steady',
  'gentle',
  'clumsy',
  'brilliant',
  'ordinary',
  'narrow',
  'distant',
  'crowded',
  'humble',
  'bold',
  'sober',
  'vivid',
  'hidden',
  'awkward',
  'elegant',
  'stubborn',
] as const;

const ADVERBS = [
  'slowly',
  'quickly',
  'rarely',
  'often',
  'quietly',
  'eventually',
  'surprisingly',
  'carefully',
  'almost always',
  'seldom',
  'gradually',
  'suddenly',
  'reluctantly',
  'openly',
  'deliberately',
  'naturally',
] as const;

/** [base, third person, past participle, gerund] */
const VERBS: ReadonlyArray<readonly [string, string, string, string]> = [
  ['build', 'builds', 'built', 'building'],
  ['change', 'changes', 'changed', 'changing'],
  ['write', 'writes', 'written', 'writing'],
  ['read', 'reads', 'read', 'reading'],
  ['sell', 'sells', 'sold', 'selling'],
  ['ignore', 'ignores', 'ignored', 'ignoring'],
  ['measure', 'measures', 'measured', 'measuring'],
  ['study', 'studies', 'studied', 'studying'],
  ['borrow', 'borrows', 'borrowed', 'borrowing'],
  ['replace', 'replaces', 'replaced', 'replacing'],
  ['improve', 'improves', 'improved', 'improving'],
  ['question', 'questions', 'questioned', 'questioning'],
  ['notice', 'notices', 'noticed', 'noticing'],
  ['fund', 'funds', 'funded', 'funding'],
  ['copy', 'copies', 'copied', 'copying'],
  ['explain', 'explains', 'explained', 'explaining'],
  ['follow', 'follows', 'followed', 'following'],
  ['repair', 'repairs', 'repaired', 'repairing'],
  ['outgrow', 'outgrows', 'outgrown', 'outgrowing'],
  ['admire', 'admires', 'admired', 'admiring'],
  ['test', 'tests', 'tested', 'testing'],
  ['design', 'designs', 'designed', 'designing'],
  ['visit', 'visits', 'visited', 'visiting'],
  ['simplify', 'simplifies', 'simplified', 'simplifying'],
  ['publish', 'publishes', 'published', 'publishing'],
  ['abandon', 'abandons', 'abandoned', 'abandoning'],
];

const PEOPLE = [
  'founders',
  'investors',
  'students',
  'writers',
  'programmers',
  'designers',
  'teachers',
  'engineers',
  'readers',
  'critics',
  'neighbors',
] as const;

/** Words for a needle's key (`adjective-noun`), apart from the filler's so a key never occurs in it. */
const KEY_ADJECTIVES = ['amber', 'cobalt', 'crimson', 'golden', 'ivory', 'jade', 'lilac', 'olive', 'scarlet', 'silver', 'teal', 'violet'] as const;
const KEY_NOUNS = ['falcon', 'lantern', 'meadow', 'orchid', 'pebble', 'quartz', 'saddle', 'thistle', 'walnut', 'willow', 'zephyr', 'comet'] as const;

/** Sentence makers for prose; each returns one sentence ending with a full stop. */
export class Prose {
  constructor(private readonly random: SeededRandom) {}

  private noun = () => this.random.pick(NOUNS)[0];
  private nouns = () => this.random.pick(NOUNS)[1];
  private adjective = () => this.random.pick(ADJECTIVES);
  private adverb = () => this.random.pick(ADVERBS);
  private verb = (form: 0 | 1 | 2 | 3) => this.random.pick(VERBS)[form];
  private people = () => this.random.pick(PEOPLE);
  private year = () => String(this.random.between(1850, 2024));
  private count = () => String(this.random.between(2, 900));
  /** A seven-digit figure, like the needle's number: a search for seven digits finds many. */
  private figure = () => String(this.random.between(1_000_000, 9_999_999));
  /** `word` after its indefinite article. */
  private a = (word: string) => `${/^[aeiou]|^honest/.test(word) ? 'an' : 'a'} ${word}`;

  private readonly templates: ReadonlyArray<() => string> = [
    () => `Most ${this.nouns()} ${this.verb(0)} ${this.adjective()} ${this.nouns()} because the ${this.noun()} is ${this.adjective()}.`,
    () => `When you ${this.verb(0)} ${this.a(this.noun())}, the ${this.noun()} tends to ${this.verb(0)} ${this.adverb()}.`,
    () => `It is ${this.adjective()} to ${this.verb(0)} ${this.nouns()} without first ${this.verb(3)} the ${this.noun()}.`,
    () => `In ${this.year()}, ${this.count()} ${this.nouns()} were ${this.verb(2)} by ${this.adjective()} ${this.people()}.`,
    () => `The ${this.noun()} of ${this.a(this.adjective())} ${this.noun()} is rarely what ${this.people()} expect.`,
    () => `${capitalize(this.people())} who ${this.verb(0)} ${this.nouns()} usually ${this.verb(0)} ${this.nouns()} too.`,
    () => `That is why ${this.adjective()} ${this.nouns()} ${this.verb(0)} ${this.adverb()} than ${this.adjective()} ones.`,
    () => `I think the most ${this.adjective()} part of any ${this.noun()} is the ${this.noun()} behind it.`,
    () => `${capitalize(this.a(this.adjective()))} ${this.noun()} costs about ${this.count()} dollars, which ${this.verb(1)} ${this.count()} ${this.nouns()}.`,
    () => `Nobody ${this.verb(1)} the ${this.noun()} until the ${this.noun()} ${this.verb(1)} it ${this.adverb()}.`,
    () => `If the ${this.noun()} is ${this.adjective()}, then the ${this.noun()} will be ${this.adjective()} as well.`,
    () => `The archive of the ${this.adjective()} ${this.noun()} lists ${this.figure()} entries, most of them ${this.verb(2)} ${this.adverb()}.`,
    () => `Over time, ${this.nouns()} become ${this.adjective()}, and ${this.nouns()} become ${this.adjective()}.`,
    () => `${capitalize(this.people())} often ask whether ${this.nouns()} can ${this.verb(0)} ${this.nouns()} at all.`,
    () => `There were ${this.count()} ${this.nouns()} in the ${this.adjective()} ${this.noun()}, and each one ${this.verb(1)} ${this.adverb()}.`,
    () => `By ${this.year()} the ${this.noun()} had been ${this.verb(2)} so often that ${this.people()} stopped ${this.verb(3)} it.`,
    () => `What matters is not the ${this.noun()} but how ${this.adverb()} you ${this.verb(0)} it.`,
    () =>
      `The town's ${this.noun()} counted ${this.figure()} visitors in ${this.year()}, ${this.a(this.adjective())} number for ${this.a(this.adjective())} ${this.noun()}.`,
  ];

  /** One sentence. */
  sentence(): string {
    return this.random.pick(this.templates)();
  }

  /** A key for a needle: `adjective-noun`, from words the filler never uses. */
  key(): string {
    return `${this.random.pick(KEY_ADJECTIVES)}-${this.random.pick(KEY_NOUNS)}`;
  }

  /** A short question-like text, as an OOLONG record's instance. */
  instance(): string {
    const forms: ReadonlyArray<() => string> = [
      () => `What ${this.noun()} did the ${this.adjective()} ${this.people()} ${this.verb(0)} in ${this.year()} ?`,
      () => `How many ${this.nouns()} are ${this.verb(2)} each year ?`,
      () => `Who ${this.verb(1)} the ${this.adjective()} ${this.noun()} ?`,
      () => `Where can I find ${this.a(this.adjective())} ${this.noun()} ?`,
      () => `Why do ${this.people()} ${this.verb(0)} ${this.nouns()} ${this.adverb()} ?`,
      () => `What is the ${this.noun()} of the ${this.adjective()} ${this.noun()} ?`,
      () => `When was the first ${this.noun()} ${this.verb(2)} ?`,
    ];
    return this.random.pick(forms)();
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
