/**
 * JSON values as they cross the control channel (custom tools' arguments and results), and a
 * strict conversion to them.
 *
 * `JSON.stringify` is lenient in ways that lose data silently: a `Map` becomes `{}`, `NaN` becomes
 * `null`, a function inside an object disappears. Tool arguments and results are converted with
 * {@link toJsonValue} instead, which says what is not JSON and where, so the cell (or the host's
 * handler) gets an error it can act on rather than a quietly different value.
 */
import { types } from 'node:util';
import { MAX_JSON_DEPTH } from '../limits.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type JsonConversion =
  | { readonly ok: true; readonly value: JsonValue }
  /**
   * `path` locates the offending value from the root (`''` for the root itself, else e.g.
   * `.rows[3].name` or `["a key"]`); `problem` is a predicate to put after a subject, e.g.
   * `is a function`.
   */
  | { readonly ok: false; readonly path: string; readonly problem: string };

/**
 * Converts `value` to a fresh JSON value with the semantics of `JSON.stringify` (a `toJSON` method
 * is honoured, so a `Date` becomes its ISO string and a `Buffer` its `{ type, data }` form; an
 * object property that is `undefined` is left out, an array element that is `undefined` becomes
 * `null`; symbol keys and non-enumerable properties are ignored), except that whatever it would
 * drop or mangle silently is refused: functions, symbols, BigInts, `NaN` and infinities, cycles,
 * `Map`s, `Set`s, typed arrays, errors and the like, a root of `undefined`, and nesting deeper
 * than {@link MAX_JSON_DEPTH}. Shared (non-cyclic) references are copied.
 *
 * Getters and `toJSON` methods run; what they throw propagates.
 */
export function toJsonValue(value: unknown): JsonConversion {
  const ancestors: Array<{ object: object; path: string }> = [];
  let failure: { path: string; problem: string } | undefined;

  const convert = (input: unknown, key: string, path: string, inArray: boolean): JsonValue | undefined => {
    let current = input;
    if (current !== null && (typeof current === 'object' || typeof current === 'bigint')) {
      const toJSON = (current as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') current = toJSON.call(current, key);
    }
    switch (typeof current) {
      case 'string':
      case 'boolean':
        return current;
      case 'number':
        if (Number.isFinite(current)) return current;
        failure = { path, problem: `is ${String(current)}, which JSON cannot represent` };
        return undefined;
      case 'undefined':
        // Like JSON.stringify: a missing array slot is null, a missing property is left out.
        if (inArray) return null;
        if (path === '') failure = { path, problem: 'is undefined' };
        return undefined;
      case 'function':
        failure = { path, problem: 'is a function' };
        return undefined;
      case 'symbol':
        failure = { path, problem: 'is a symbol' };
        return undefined;
      case 'bigint':
        failure = { path, problem: 'is a BigInt (convert it with String() or Number())' };
        return undefined;
      case 'object':
        break;
    }
    if (current === null) return null;
    const object = current as object;
    const refused = refusedObjectProblem(object);
    if (refused) {
      failure = { path, problem: refused };
      return undefined;
    }
    const ancestor = ancestors.find((entry) => entry.object === object);
    if (ancestor) {
      failure = { path, problem: `refers back to ${ancestor.path === '' ? 'the value itself' : ancestor.path} (a cycle)` };
      return undefined;
    }
    if (ancestors.length >= MAX_JSON_DEPTH) {
      failure = { path, problem: `nests deeper than ${MAX_JSON_DEPTH} levels` };
      return undefined;
    }
    ancestors.push({ object, path });
    try {
      if (Array.isArray(object)) {
        const out: JsonValue[] = [];
        for (let index = 0; index < object.length; index += 1) {
          const element = convert(object[index], String(index), `${path}[${index}]`, true);
          if (failure) return undefined;
          out.push(element ?? null);
        }
        return out;
      }
      if (types.isBoxedPrimitive(object)) return convert(object.valueOf(), key, path, inArray);
      const out: { [key: string]: JsonValue } = {};
      for (const property of Object.keys(object)) {
        const element = convert((object as Record<string, unknown>)[property], property, `${path}${propertyPath(property)}`, false);
        if (failure) return undefined;
        if (element !== undefined) {
          // defineProperty: a "__proto__" key must become an own property, not the copy's prototype.
          Object.defineProperty(out, property, { value: element, writable: true, enumerable: true, configurable: true });
        }
      }
      return out;
    } finally {
      ancestors.pop();
    }
  };

  const converted = convert(value, '', '', false);
  if (failure) return { ok: false, ...failure };
  return { ok: true, value: converted as JsonValue };
}

/**
 * True when `value` is already a plain JSON value: `null`, a boolean, a finite number, a string,
 * an array or a plain object of JSON values, at most {@link MAX_JSON_DEPTH} deep (so a cycle is
 * refused too). What `JSON.parse` returns always is, up to the depth. Does not copy.
 */
export function isJsonValue(value: unknown): value is JsonValue {
  const check = (input: unknown, depth: number): boolean => {
    switch (typeof input) {
      case 'string':
      case 'boolean':
        return true;
      case 'number':
        return Number.isFinite(input);
      case 'object': {
        if (input === null) return true;
        if (depth >= MAX_JSON_DEPTH) return false;
        if (Array.isArray(input)) {
          for (let index = 0; index < input.length; index += 1) if (!check(input[index], depth + 1)) return false;
          return true;
        }
        const prototype: unknown = Object.getPrototypeOf(input);
        // A plain object of any realm: its prototype is null or an Object.prototype.
        if (prototype !== null && Object.getPrototypeOf(prototype) !== null) return false;
        for (const property of Object.keys(input)) {
          if (!check((input as Record<string, unknown>)[property], depth + 1)) return false;
        }
        return true;
      }
      default:
        return false;
    }
  };
  return check(value, 0);
}

/** Why an object that is neither an array nor a plain object cannot be JSON, or undefined when it can (as its own enumerable properties). */
function refusedObjectProblem(object: object): string | undefined {
  if (types.isMap(object)) return 'is a Map (convert it, e.g. with Object.fromEntries(map))';
  if (types.isSet(object)) return 'is a Set (convert it, e.g. with [...set])';
  if (types.isWeakMap(object) || types.isWeakSet(object)) return `is a ${types.isWeakMap(object) ? 'WeakMap' : 'WeakSet'}, which JSON cannot represent`;
  if (types.isPromise(object)) return 'is a Promise (await it first)';
  if (types.isRegExp(object)) return 'is a RegExp (pass its source as a string)';
  if (types.isNativeError(object)) return 'is an Error (pass its message instead)';
  if (types.isArrayBufferView(object) || types.isAnyArrayBuffer(object)) {
    return `is a ${object.constructor?.name ?? 'binary buffer'} (convert it, e.g. with Array.from())`;
  }
  if (types.isGeneratorObject(object)) return 'is a generator (collect its values first, e.g. with [...generator])';
  return undefined;
}

/** `.name` for an identifier-like key, `["a key"]` otherwise. */
function propertyPath(key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}
