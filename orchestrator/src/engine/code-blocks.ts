/**
 * Reading a model's response: the code it wants run (fenced blocks) and a final answer it wrote as
 * plain text. Fences follow CommonMark closely enough for what models write: ``` or ~~~ of length
 * ≥ 3, indented up to three spaces (or more, inside a list item), closed by a fence of the same
 * character at least as long; the language is the first word of the info string.
 */
import type { Language } from '@rlm/shared';

/** Fence languages whose code runs, per REPL language; `repl` always does. Lower case. */
const RUNNABLE_FENCE_LANGUAGES: Record<Language, ReadonlySet<string>> = {
  javascript: new Set(['repl', 'js', 'javascript']),
  python: new Set(['repl', 'python', 'py']),
};

const OPENING_FENCE = /^([ \t]*)(`{3,}|~{3,})(.*)$/;

interface Fence {
  /** Columns of indentation before the opening fence; removed from each code line (as far as it is blank). */
  indent: number;
  char: '`' | '~';
  length: number;
  /** First word of the info string, lower case; '' when there is none. */
  language: string;
}

interface ScannedLine {
  /** The line without its line break (`\r\n`, `\n` or `\r`). */
  text: string;
  /** Offset of the line's first character in the normalized text (line breaks as `\n`). */
  offset: number;
  /** The fence this line opens, if it opens one. */
  opens?: Fence;
  /** True when the line closes the fence that is open. */
  closes?: boolean;
  /** The fence this line is the content of. */
  inside?: Fence;
}

function normalizeLineBreaks(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

function parseOpeningFence(line: string): Fence | undefined {
  const match = OPENING_FENCE.exec(line);
  if (!match) return undefined;
  const [, indentText = '', run = '', info = ''] = match;
  const char = run[0] === '~' ? '~' : '`';
  // CommonMark: a backtick fence's info string may not contain a backtick (that is inline code).
  if (char === '`' && info.includes('`')) return undefined;
  const language = (info.trim().split(/\s+/)[0] ?? '').toLowerCase();
  return { indent: indentText.replace(/\t/g, '    ').length, char, length: run.length, language };
}

function isClosingFence(line: string, fence: Fence): boolean {
  const trimmed = line.trim();
  if (trimmed.length < fence.length) return false;
  for (const ch of trimmed) if (ch !== fence.char) return false;
  return true;
}

/**
 * Splits the text into lines and marks which open, close, or sit inside a fenced block.
 * `restarts(open, line)`: whether an opening-fence line inside `open` closes it and opens another
 * (CommonMark says it is content; see {@link extractCodeBlocks} for when we say otherwise).
 */
function scanLines(normalized: string, restarts: (open: Fence, line: Fence) => boolean = () => false): ScannedLine[] {
  const lines: ScannedLine[] = [];
  let open: Fence | undefined;
  let offset = 0;
  for (const text of normalized.split('\n')) {
    const reopening = open && parseOpeningFence(text);
    if (open && reopening && restarts(open, reopening)) {
      lines.push({ text, offset, closes: true }, { text: '', offset, opens: reopening });
      open = reopening;
    } else if (open) {
      if (isClosingFence(text, open)) {
        lines.push({ text, offset, closes: true });
        open = undefined;
      } else {
        lines.push({ text, offset, inside: open });
      }
    } else {
      const fence = parseOpeningFence(text);
      if (fence) open = fence;
      lines.push(fence ? { text, offset, opens: fence } : { text, offset });
    }
    offset += text.length + 1;
  }
  return lines;
}

/** Removes up to `columns` columns of leading blanks, as CommonMark does for an indented fence's content. */
function removeIndent(line: string, columns: number): string {
  let i = 0;
  let removed = 0;
  while (i < line.length && removed < columns) {
    const ch = line[i];
    if (ch === ' ') removed += 1;
    else if (ch === '\t') removed += 4;
    else break;
    i += 1;
  }
  return line.slice(i);
}

/** Drops blank lines at both ends and trailing blanks on the last line; keeps the code's own indentation. */
function tidyCode(lines: string[]): string {
  let start = 0;
  let end = lines.length;
  while (start < end && (lines[start] ?? '').trim() === '') start += 1;
  while (end > start && (lines[end - 1] ?? '').trim() === '') end -= 1;
  return lines
    .slice(start, end)
    .map((line) => line.trimEnd())
    .join('\n');
}

/**
 * The code of every runnable fenced block in `text`, in order of appearance.
 *
 * Runnable: ```` ```repl ````, plus ```` ```js ````/```` ```javascript ```` for `javascript` or
 * ```` ```python ````/```` ```py ```` for `python` (case-insensitive; words after the language
 * are ignored). Blocks in other languages, and anything inside them, are skipped. `\r\n` line
 * breaks are accepted; an indented fence has that indentation removed from its lines; a block
 * left open at the end of the text runs to the end; a runnable block left open when the next
 * runnable fence starts ends there (a line like ```` ```repl ```` is never code). Blank leading/trailing lines are dropped and
 * blocks with no code are left out. Never throws.
 */
export function extractCodeBlocks(text: string, language: Language): string[] {
  const runnable = RUNNABLE_FENCE_LANGUAGES[language];
  const blocks: string[] = [];
  let current: { fence: Fence; lines: string[] } | undefined;
  const finish = () => {
    if (!current) return;
    const code = tidyCode(current.lines);
    if (code !== '') blocks.push(code);
    current = undefined;
  };
  const restarts = (open: Fence, next: Fence) =>
    runnable.has(open.language) && runnable.has(next.language) && next.char === open.char && next.length >= open.length;
  for (const line of scanLines(normalizeLineBreaks(text), restarts)) {
    if (line.opens) {
      if (runnable.has(line.opens.language)) current = { fence: line.opens, lines: [] };
    } else if (line.closes) {
      finish();
    } else if (line.inside && current) {
      current.lines.push(removeIndent(line.text, current.fence.indent));
    }
  }
  finish();
  return blocks;
}

/**
 * The prose of a response: its text outside every fenced block (of any language), with runs of
 * blank lines left where blocks were collapsed to one and the ends trimmed. What a run reports as
 * its partial answer when a limit stops it, rather than the model's code. Never throws.
 */
export function proseOutsideCode(text: string): string {
  const kept: string[] = [];
  for (const line of scanLines(normalizeLineBreaks(text))) {
    if (line.opens || line.closes || line.inside) {
      if (kept.at(-1) !== '') kept.push('');
      continue;
    }
    if (line.text.trim() === '' && kept.at(-1) === '') continue;
    kept.push(line.text.trimEnd());
  }
  return kept.join('\n').trim();
}

export type FinalInText = { kind: 'FINAL'; value: string } | { kind: 'FINAL_VAR'; name: string };

const FINAL_START = /^[ \t]*(FINAL_VAR|FINAL)[ \t]*\(/;

/**
 * A `FINAL(value)` or `FINAL_VAR(name)` the model wrote as plain text: at the start of a line
 * (after optional blanks), outside any fenced block. The first one in the text counts.
 *
 * The value runs to the parenthesis that balances the opening one, across lines if need be, and
 * is trimmed; a value that is one quoted string (`"…"`, `'…'` or `` `…` ``) loses its quotes (a
 * double-quoted one is read as a JSON string when it is one, so `\n` escapes become line breaks).
 * A name is trimmed and loses surrounding quotes. An opening without a balancing `)` does not
 * count (the model was probably cut off), nor does an empty name, nor `FINAL` without
 * parentheses. Never throws.
 */
export function findFinalInText(text: string): FinalInText | null {
  const normalized = normalizeLineBreaks(text);
  for (const line of scanLines(normalized)) {
    if (line.opens || line.closes || line.inside) continue;
    const match = FINAL_START.exec(line.text);
    if (!match) continue;
    const openParen = line.offset + match[0].length - 1;
    const body = balancedBody(normalized, openParen);
    if (body === undefined) continue;
    if (match[1] === 'FINAL_VAR') {
      const name = stripQuotes(body.trim()).trim();
      if (name !== '') return { kind: 'FINAL_VAR', name };
    } else {
      return { kind: 'FINAL', value: unquoteValue(body.trim()) };
    }
  }
  return null;
}

/** The text between `text[openParen]` (a `(`) and the `)` that balances it, or undefined. */
function balancedBody(text: string, openParen: number): string | undefined {
  let depth = 0;
  for (let i = openParen; i < text.length; i += 1) {
    const ch = text[i];
    if (ch === '(') depth += 1;
    else if (ch === ')') {
      depth -= 1;
      if (depth === 0) return text.slice(openParen + 1, i);
    }
  }
  return undefined;
}

function stripQuotes(value: string): string {
  return value.replace(/^['"`]+|['"`]+$/g, '');
}

function unquoteValue(value: string): string {
  if (value.length < 2) return value;
  const quote = value[0];
  if ((quote !== '"' && quote !== "'" && quote !== '`') || value[value.length - 1] !== quote) return value;
  const inner = value.slice(1, -1);
  // Several quoted pieces (`"a" + "b"`) are not one string: keep the text as the model wrote it.
  if (quote !== '"' && inner.includes(quote)) return value;
  if (quote === '"') {
    try {
      const parsed: unknown = JSON.parse(value);
      if (typeof parsed === 'string') return parsed;
    } catch {
      if (inner.includes('"')) return value;
    }
  }
  return inner;
}
