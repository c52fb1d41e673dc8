/**
 * What the root model is told about its context instead of the context itself: its shape, total
 * size and the sizes of its parts, so it can plan how to slice it. A file-backed context is
 * described from what `contextFromFile` saw (its size and beginning), never read whole.
 */
import { ContextFile, contextJson } from '../sandbox/context-files.js';

/** At most this many part lengths are listed; the rest are counted. */
export const MAX_LISTED_PARTS = 100;
/** At most this many paths of a map are named. */
export const MAX_NAMED_PATHS = 10;

export interface ContextDescription {
  /**
   * `string`: one text. `list`: an array of strings. `map`: an object whose values are all
   * strings (path → content). `json`: any other JSON value.
   */
  type: 'string' | 'list' | 'map' | 'json';
  /** Sum of `partLengths`, in characters (UTF-16 code units, as `String#length` counts them). */
  totalChars: number;
  /**
   * One length per part, in characters: the string; each item of a list; each entry's content of a
   * map, in the object's key order; the JSON text of a `json` value.
   */
  partLengths: number[];
  /** For a map: its first {@link MAX_NAMED_PATHS} paths, in key order. */
  paths?: string[];
  /** For `json`: what the value is. */
  jsonKind?: 'array' | 'object' | 'string' | 'number' | 'boolean' | 'null';
  /**
   * True when some length is an estimate: a {@link ContextFile} larger than its sample is measured
   * by its size in bytes, scaled by the characters per byte of its beginning (exact for ASCII text).
   */
  approximate?: true;
}

/**
 * Describes a context value as {@link ContextDescription} explains. Linear in the context's size
 * for lists and maps; serializes a `json` value once to measure it. A {@link ContextFile} (alone,
 * or as an item or entry of a list or map) is described from its size and sample, without I/O.
 *
 * @throws {InvalidOptionError} (`context`) the value is `undefined`, a function, a symbol, or has
 *   no JSON form (a `bigint`, a cycle, a ContextFile nested deeper than a list or map), so it
 *   cannot be loaded into the REPL.
 */
export function describeContext(value: unknown): ContextDescription {
  if (typeof value === 'string') return { type: 'string', totalChars: value.length, partLengths: [value.length] };
  if (ContextFile.isInstance(value)) {
    const approximate = value.chars === undefined ? { approximate: true as const } : {};
    const length = value.estimatedChars;
    if (value.format === 'text') return { type: 'string', totalChars: length, partLengths: [length], ...approximate };
    return { type: 'json', totalChars: length, partLengths: [length], ...(value.jsonKind ? { jsonKind: value.jsonKind } : {}), ...approximate };
  }
  if (Array.isArray(value) && value.every(isText)) {
    return withTotal({ type: 'list', partLengths: value.map(textLength) }, value);
  }
  if (isPlainObject(value)) {
    const entries = Object.entries(value);
    const contents = entries.map(([, content]) => content);
    if (contents.every(isText)) {
      return withTotal(
        {
          type: 'map',
          partLengths: contents.map(textLength),
          paths: entries.slice(0, MAX_NAMED_PATHS).map(([path]) => path),
        },
        contents,
      );
    }
  }
  const json = contextJson(value);
  return { type: 'json', totalChars: json.length, partLengths: [json.length], jsonKind: jsonKindOf(value) };
}

/** A string, or a file loaded as one. */
function isText(item: unknown): item is string | ContextFile {
  return typeof item === 'string' || (ContextFile.isInstance(item) && item.format === 'text');
}

function textLength(item: string | ContextFile): number {
  return typeof item === 'string' ? item.length : item.estimatedChars;
}

function withTotal(description: Omit<ContextDescription, 'totalChars'>, parts: readonly (string | ContextFile)[]): ContextDescription {
  let totalChars = 0;
  for (const length of description.partLengths) totalChars += length;
  const approximate = parts.some((part) => typeof part !== 'string' && part.chars === undefined);
  return { ...description, totalChars, ...(approximate ? { approximate: true as const } : {}) };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function jsonKindOf(value: unknown): NonNullable<ContextDescription['jsonKind']> {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'object';
}

const count = (n: number) => n.toLocaleString('en-US');
const plural = (n: number, one: string, many: string) => `${count(n)} ${n === 1 ? one : many}`;

function listLengths(lengths: readonly number[]): string {
  const shown = lengths.slice(0, MAX_LISTED_PARTS).join(', ');
  const others = lengths.length - MAX_LISTED_PARTS;
  return others > 0 ? `[${shown}, … [${count(others)} others]]` : `[${shown}]`;
}

/**
 * The description as one or two sentences for the model, after the reference implementation's
 * metadata line, e.g. `Your context is a string with 1,234,567 total characters.` Lists and maps
 * give the lengths of their first {@link MAX_LISTED_PARTS} parts, then how many others there are.
 * An approximate description says `about` before its total.
 */
export function formatContextDescription(d: ContextDescription): string {
  const about = d.approximate ? 'about ' : '';
  const total = about + plural(d.totalChars, 'total character', 'total characters');
  // Estimated lengths are those of files too large to read for a description.
  const estimated = d.approximate ? ' (those of large files estimated from their size)' : '';
  switch (d.type) {
    case 'string':
      return `Your context is a string with ${total}.`;
    case 'list':
      if (d.partLengths.length === 0) return 'Your context is an empty list.';
      return (
        `Your context is a list of ${plural(d.partLengths.length, 'string', 'strings')} with ${total}, ` +
        `broken up into chunks of char lengths${estimated}: ${listLengths(d.partLengths)}.`
      );
    case 'map': {
      if (d.partLengths.length === 0) return 'Your context is an empty object (no paths).';
      const paths = d.paths ?? [];
      const more = d.partLengths.length - paths.length;
      const named = paths.map((path) => JSON.stringify(path)).join(', ') + (more > 0 ? `, … (${count(more)} more)` : '');
      return (
        `Your context is an object mapping ${plural(d.partLengths.length, 'path', 'paths')} to their contents, with ${total}; ` +
        `paths: ${named}. Content lengths${estimated}, in the same order: ${listLengths(d.partLengths)}.`
      );
    }
    case 'json':
      return `Your context is a JSON ${d.jsonKind ?? 'value'} (parsed, not text) of ${about}${plural(d.totalChars, 'character', 'characters')} when serialized as JSON.`;
  }
}
