/** How cell values, answers, errors and variable types are turned into the text the host sees. */
import { inspect } from 'node:util';
import { MAX_FINAL_CHARS, type CellError } from '@rlm/shared';
import { errorMessage } from '../to-error.js';

/** Longest `value` reported for a cell's last expression. */
export const VALUE_LIMIT_CHARS = 2000;
/** The protocol's limits on a cell error (see `CellError` in @rlm/shared). */
export const MESSAGE_LIMIT_CHARS = 64 * 1024;
export const FRAME_LIMIT_CHARS = 1024;
export const MAX_FRAMES = 32;
/** Longest variable name, type name or `FINAL_VAR` variable the protocol carries. */
export const NAME_LIMIT_CHARS = 256;
/**
 * Deepest nesting a `FINAL` value is rendered as JSON to. Deeper values (a list nested 100,000
 * times) are inspected instead, a few levels deep: JSON.stringify would recurse until the stack
 * overflows, which takes seconds.
 */
const FINAL_JSON_DEPTH = 512;

// A cell may replace these globals before it calls FINAL; the rendering keeps its own references.
const { stringify } = JSON;
const { isArray } = Array;
const { isFinite: isFiniteNumber } = Number;
const NativeMap = Map;

export function renderValue(value: unknown): string {
  const text = safeInspect(value, { depth: 4, maxArrayLength: 100, maxStringLength: VALUE_LIMIT_CHARS, breakLength: 100 });
  return capText(text, VALUE_LIMIT_CHARS);
}

/** A rendered `FINAL` answer, or how far past {@link MAX_FINAL_CHARS} the rendering got before it gave up. */
export type RenderedFinal = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly chars: number; readonly atLeast: boolean };

/**
 * A `FINAL` answer: strings as they are, other values as pretty JSON when they have one, else
 * inspected (cycles, BigInt, a throwing toJSON, nesting deeper than 512 levels). Bounded: the JSON
 * rendering stops once it is sure to pass `limitChars`, so a huge value costs no huge string; the
 * answer is refused (`ok: false`) when its text is longer than `limitChars`.
 */
export function renderFinal(value: unknown, limitChars: number = MAX_FINAL_CHARS): RenderedFinal {
  if (typeof value === 'string') return value.length <= limitChars ? { ok: true, text: value } : { ok: false, chars: value.length, atLeast: false };
  const json = boundedJson(value, limitChars);
  if (json.kind === 'too-large') return { ok: false, chars: json.chars, atLeast: true };
  const text = json.kind === 'text' ? json.text : safeInspect(value, { depth: 6, maxArrayLength: 1000, maxStringLength: limitChars + 1, breakLength: 100 });
  return text.length <= limitChars ? { ok: true, text } : { ok: false, chars: text.length, atLeast: false };
}

/** Thrown by the JSON replacer to stop a rendering that has gone too far. */
class StopRendering {
  constructor(readonly reason: 'too-large' | 'too-deep') {}
}

/**
 * `JSON.stringify(value, null, 2)` that gives up early. The replacer returns every value as it is
 * (so the text is exactly JSON.stringify's) and keeps a lower bound of the text's length; once that
 * passes `limitChars` the rendering stops. `unrepresentable`: JSON has no text for the value (a
 * cycle, a BigInt, a throwing toJSON, undefined, nesting past {@link FINAL_JSON_DEPTH}).
 */
function boundedJson(value: unknown, limitChars: number): { kind: 'text'; text: string } | { kind: 'too-large'; chars: number } | { kind: 'unrepresentable' } {
  // Depth of each container met so far; the wrapper object JSON.stringify makes for the root is depth 0.
  const depths = new NativeMap<unknown, number>();
  let chars = 0;
  function measure(this: unknown, key: string, item: unknown): unknown {
    const holderDepth = depths.get(this) ?? 0;
    const kind = typeof item;
    const skipped = item === undefined || kind === 'function' || kind === 'symbol';
    const inArray = isArray(this);
    if (holderDepth > 0 && (inArray || !skipped)) {
      // A member sits on its own line, indented two spaces per level, followed by a comma or the closing line.
      chars += 2 + 2 * holderDepth;
      if (!inArray) chars += key.length + 4;
    }
    if (kind === 'string') chars += (item as string).length + 2;
    else if (kind === 'number') chars += isFiniteNumber(item) ? `${item as number}`.length : 4;
    else if (item !== null && kind === 'object') {
      // At least one character: `[]`, `{}`, or a boxed primitive such as `new Number(5)`.
      chars += 1;
      if (holderDepth + 1 > FINAL_JSON_DEPTH) throw new StopRendering('too-deep');
      depths.set(item, holderDepth + 1);
    } else chars += skipped && !inArray ? 0 : 4;
    if (chars > limitChars) throw new StopRendering('too-large');
    return item;
  }
  try {
    const text = stringify(value, measure, 2) as string | undefined;
    return typeof text === 'string' ? { kind: 'text', text } : { kind: 'unrepresentable' };
  } catch (error) {
    if (error instanceof StopRendering && error.reason === 'too-large') return { kind: 'too-large', chars };
    // cyclic, BigInt, a throwing toJSON or getter, too deep: the caller inspects the value instead
    return { kind: 'unrepresentable' };
  }
}

/**
 * Where an answer came from: `FINAL(value)`, `FINAL_VAR(name)`, or the content of the predefined
 * `answer` object set ready (written as the cell's language spells it).
 */
export type AnswerSource = 'FINAL' | 'FINAL_VAR' | 'answer.content' | 'answer["content"]';

/** What a cell's error says when its answer is longer than the limit. */
export function finalTooLargeMessage(rendered: { chars: number; atLeast: boolean }, source: AnswerSource, limitChars: number = MAX_FINAL_CHARS): string {
  const size = `${rendered.atLeast ? 'more than ' : ''}${rendered.chars.toLocaleString('en-US')} characters`;
  const fromObject = source === 'answer.content' ? ' (answer.ready is false again)' : source === 'answer["content"]' ? ' (answer["ready"] is False again)' : '';
  return (
    `The answer ${fromObject ? 'in' : 'passed to'} ${source} is ${size} long, past the limit of ${limitChars.toLocaleString('en-US')} characters, ` +
    `so it was not taken and the run goes on${fromObject}. ` +
    'Answer with something shorter: summarize it (llm_query can help), or keep only the part that answers the question.'
  );
}

/** A short type for SHOW_VARS: `string`, `number`, `Array(3)`, `Map(2)`, `function`, `class`, a class name… */
export function shortType(value: unknown): string {
  if (value === null) return 'null';
  const kind = typeof value;
  if (kind === 'function') {
    try {
      return /^class\b/.test(Function.prototype.toString.call(value)) ? 'class' : 'function';
    } catch {
      return 'function';
    }
  }
  if (kind !== 'object') return kind;
  try {
    if (Array.isArray(value)) return `Array(${value.length})`;
    if (value instanceof Map) return `Map(${value.size})`;
    if (value instanceof Set) return `Set(${value.size})`;
    const name = constructorName(value as object);
    if (ArrayBuffer.isView(value) && 'length' in value) return `${name.slice(0, NAME_LIMIT_CHARS - 24)}(${String(value.length)})`;
    return name.slice(0, NAME_LIMIT_CHARS);
  } catch {
    return 'object';
  }
}

function constructorName(value: object): string {
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype === null) return 'Object';
  const maker: unknown = (prototype as { constructor?: unknown }).constructor;
  const name = typeof maker === 'function' ? maker.name : '';
  return name || 'Object';
}

export type PositionMapper = (cellNumber: number, line: number, column: number) => { line: number; column: number } | undefined;

/** Turns whatever a cell threw into the protocol's error shape, keeping only frames of cell code. */
export function renderError(thrown: unknown, mapPosition: PositionMapper): CellError {
  if (thrown instanceof Error || isErrorLike(thrown)) {
    const error = thrown;
    let type = 'Error';
    try {
      type = (error.constructor as { name?: unknown } | undefined)?.name as string;
      if (typeof type !== 'string' || type === '') type = typeof error.name === 'string' && error.name ? error.name : 'Error';
    } catch {
      type = 'Error';
    }
    let message: string;
    let stack: string[];
    try {
      message = String(error.message);
    } catch {
      message = '';
    }
    try {
      stack = cellFrames(String(error.stack), mapPosition);
    } catch {
      stack = [];
    }
    return { type: type.slice(0, NAME_LIMIT_CHARS), message: capText(message, MESSAGE_LIMIT_CHARS), stack };
  }
  const message = typeof thrown === 'string' ? thrown : safeInspect(thrown, { depth: 2 });
  return { type: 'Error', message: capText(message, MESSAGE_LIMIT_CHARS), stack: [] };
}

/** An Error of any realm, or an object shaped like one (a cell may throw either). */
function isErrorLike(value: unknown): value is Error {
  return typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string' && 'message' in value;
}

const FRAME = /^\s*at (?:(.+?) \()?cell-(\d+)\.js:(\d+):(\d+)\)?$/;

/** `at f (cell-3.js:4:9)` → `at f (cell 3, line 2:7)`; frames of other files, and of the cell wrapper's own code, are dropped. */
export function cellFrames(stack: string, mapPosition: PositionMapper): string[] {
  const frames: string[] = [];
  for (const line of stack.split('\n')) {
    const match = FRAME.exec(line);
    if (!match) continue;
    const [, name, cell, row, column] = match;
    const cellNumber = Number(cell);
    const mapped = mapPosition(cellNumber, Number(row), Number(column));
    if (!mapped) continue;
    const where = `cell ${cellNumber}, line ${mapped.line}:${mapped.column}`;
    frames.push((name ? `at ${name} (${where})` : `at ${where}`).slice(0, FRAME_LIMIT_CHARS));
    if (frames.length === MAX_FRAMES) break;
  }
  return frames;
}

/**
 * `text` cut to at most `limit` characters, the marker saying how many were cut included: the result
 * is never longer than `limit`, so it fits a schema's maximum. A cut never splits a surrogate pair.
 */
export function capText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  // The marker's length depends on the count it shows; size it with the largest count it could show.
  const marker = (cut: number) => `… (${cut.toLocaleString('en-US')} more characters)`;
  let kept = Math.max(0, limit - marker(text.length).length);
  if (kept > 0 && isHighSurrogate(text.charCodeAt(kept - 1))) kept -= 1;
  if (kept === 0) return text.slice(0, limit);
  return `${text.slice(0, kept)}${marker(text.length - kept)}`;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function safeInspect(value: unknown, options: Parameters<typeof inspect>[1]): string {
  try {
    return inspect(value, options);
  } catch (error) {
    return `[value that cannot be inspected: ${errorMessage(error)}]`;
  }
}

export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(seconds < 10 ? 2 : 1).replace(/0+$/, '')} s`;
}
