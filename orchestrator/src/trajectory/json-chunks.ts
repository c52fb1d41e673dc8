/**
 * JSON text of a value in pieces, so a large record is written without ever being one string: V8
 * caps a string at about 2^29 characters, and `JSON.stringify` of a record past that throws
 * "Invalid string length" — the turn would be lost. Joined, the pieces are exactly what
 * `JSON.parse` reads back as the value (the same text `JSON.stringify` would give for plain data).
 */

/** Strings longer than this are serialised in slices of this many characters. */
const STRING_SLICE_CHARS = 64 * 1024;

/**
 * The JSON text of `value` (plain data: objects, arrays, strings, finite numbers, booleans, null),
 * piece by piece. As `JSON.stringify`: `undefined`, functions and symbols are left out of objects
 * and are `null` in arrays; non-finite numbers are `null`; `toJSON` is honoured (dates).
 *
 * @throws {TypeError} `value` holds a cycle or a bigint (while iterating, as `JSON.stringify` would).
 */
export function* jsonChunks(value: unknown): Generator<string, void, undefined> {
  yield* chunksOf(value, new Set());
}

function* chunksOf(input: unknown, ancestors: Set<object>): Generator<string, void, undefined> {
  yield* resolvedChunks(hasToJson(input) ? input.toJSON() : input, ancestors);
}

/** `value` once its `toJSON` (if any) was applied. */
function* resolvedChunks(value: unknown, ancestors: Set<object>): Generator<string, void, undefined> {
  switch (typeof value) {
    case 'string':
      yield* stringChunks(value);
      return;
    case 'number':
      yield Number.isFinite(value) ? String(value) : 'null';
      return;
    case 'boolean':
      yield value ? 'true' : 'false';
      return;
    case 'bigint':
      throw new TypeError('a bigint cannot be serialised as JSON');
    case 'object':
      break;
    default:
      // undefined, functions and symbols: callers leave them out of objects; here (top level, arrays) they are null.
      yield 'null';
      return;
  }
  if (value === null) {
    yield 'null';
    return;
  }
  if (ancestors.has(value)) throw new TypeError('a value with a cycle cannot be serialised as JSON');
  ancestors.add(value);
  if (Array.isArray(value)) {
    yield '[';
    for (let index = 0; index < value.length; index += 1) {
      if (index > 0) yield ',';
      yield* chunksOf(value[index], ancestors);
    }
    yield ']';
  } else {
    yield '{';
    let first = true;
    for (const [key, item] of Object.entries(value)) {
      const resolved = hasToJson(item) ? item.toJSON() : item;
      if (resolved === undefined || typeof resolved === 'function' || typeof resolved === 'symbol') continue;
      yield `${first ? '' : ','}${JSON.stringify(key)}:`;
      first = false;
      yield* resolvedChunks(resolved, ancestors);
    }
    yield '}';
  }
  ancestors.delete(value);
}

/**
 * A string literal in slices. A slice may end between the halves of a surrogate pair: each half is
 * then written as its own `\uXXXX` escape, which `JSON.parse` joins back into the same pair.
 */
function* stringChunks(text: string): Generator<string, void, undefined> {
  if (text.length <= STRING_SLICE_CHARS) {
    yield JSON.stringify(text);
    return;
  }
  yield '"';
  for (let start = 0; start < text.length; start += STRING_SLICE_CHARS) {
    const literal = JSON.stringify(text.slice(start, start + STRING_SLICE_CHARS));
    yield literal.slice(1, -1);
  }
  yield '"';
}

function hasToJson(value: unknown): value is { toJSON: () => unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function';
}
