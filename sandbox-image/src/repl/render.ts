/** How cell values, answers, errors and variable types are turned into the text the host sees. */
import { inspect } from 'node:util';
import type { CellError } from '@rlm/shared';

/** Longest `value` reported for a cell's last expression. */
export const VALUE_LIMIT_CHARS = 2000;
const MESSAGE_LIMIT_CHARS = 64 * 1024;
const FRAME_LIMIT_CHARS = 1024;
const MAX_FRAMES = 32;

export function renderValue(value: unknown): string {
  const text = safeInspect(value, { depth: 4, maxArrayLength: 100, maxStringLength: VALUE_LIMIT_CHARS, breakLength: 100 });
  return capText(text, VALUE_LIMIT_CHARS);
}

/** A `FINAL` answer: strings as they are, other values as pretty JSON when they have one, else inspected. */
export function renderFinal(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    const json = JSON.stringify(value, null, 2);
    if (typeof json === 'string') return json;
  } catch {
    // cyclic, BigInt, a throwing toJSON: fall through to inspect
  }
  return safeInspect(value, { depth: 6, maxArrayLength: 1000, maxStringLength: Infinity, breakLength: 100 });
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
    if (ArrayBuffer.isView(value) && 'length' in value) return `${name}(${String(value.length)})`;
    return name.slice(0, 256);
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
    const error = thrown as Error;
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
    return { type: type.slice(0, 256), message: capText(message, MESSAGE_LIMIT_CHARS), stack };
  }
  const message = typeof thrown === 'string' ? thrown : safeInspect(thrown, { depth: 2 });
  return { type: 'Error', message: capText(message, MESSAGE_LIMIT_CHARS), stack: [] };
}

function isErrorLike(value: unknown): boolean {
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

export function capText(text: string, limit: number): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}… (${(text.length - limit).toLocaleString('en-US')} more characters)`;
}

function safeInspect(value: unknown, options: Parameters<typeof inspect>[1]): string {
  try {
    return inspect(value, options);
  } catch (error) {
    return `[value that cannot be inspected: ${error instanceof Error ? error.message : String(error)}]`;
  }
}

export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return `${Number.isInteger(seconds) ? seconds : seconds.toFixed(seconds < 10 ? 2 : 1).replace(/0+$/, '')} s`;
}
