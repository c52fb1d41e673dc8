/**
 * One linear pass over a control-channel frame, run before `JSON.parse`.
 *
 * Why: `JSON.parse` has no limits of its own. A 60 MB frame of nested `[[[…]]]` kept the host's
 * event loop busy for seconds and took it past 2 GB before anything could look at what the frame
 * was. The scan proves, in time linear in the frame and memory linear in its depth bound, that the
 * frame is one JSON object, nests at most `maxDepth` levels and holds at most `maxElements` values;
 * and it reads the envelope's top-level `type`, `id` and `method` on the way, so the connection can
 * apply the method's size limit, refuse an unknown method or an unexpected response id, before it
 * parses (or even decodes) anything.
 *
 * It is a full JSON validator (RFC 8259 grammar: literals, numbers, strings with their escapes, no
 * raw control characters): a frame it accepts, `JSON.parse` parses, and the header it reports is
 * what the parsed envelope holds (escaped keys such as `"t\u0079pe"` are decoded; a header key given
 * twice is refused, since `JSON.parse` would keep the last and the scan may have judged the first).
 *
 * It reads the frame's UTF-8 bytes, as the WebSocket delivers them, so a refused frame is never
 * decoded to a string, and offsets and sizes are in bytes. (JSON's structure is ASCII, and every byte
 * of a multi-byte UTF-8 sequence is ≥ 0x80, so no such byte is mistaken for structure.)
 */

export interface FrameScanLimits {
  /** Deepest nesting of arrays and objects, the top-level object counted as level 1. */
  readonly maxDepth: number;
  /** Most array elements plus object members in the whole frame. */
  readonly maxElements: number;
}

/** The envelope's top-level fields, as far as the scan has read them. A field of another JSON type than expected is left out. */
export interface FrameHeader {
  /** The top-level `type`, when it is a string. */
  type?: string;
  /** The top-level `id`, when it is a number (any JSON number: the caller checks it is a request id). */
  id?: number;
  /** The top-level `method`, when it is a string. */
  method?: string;
}

export type FrameScan =
  | { readonly ok: true; readonly header: Readonly<FrameHeader> }
  | {
      readonly ok: false;
      readonly header: Readonly<FrameHeader>;
      /** What is wrong, e.g. `nests deeper than 515 levels (at offset 515)`. */
      readonly problem: string;
      /** True when the problem came from the caller's `checkHeader`, not from the frame's syntax or shape. */
      readonly refusedByHeaderCheck: boolean;
    };

/**
 * Called once, as soon as the header is complete: `type` is known, plus `method` for a request and
 * `id` for a response. Returns a problem to stop the scan there (so an oversized frame for a small
 * method is refused after its first few bytes when, as usual, the header comes first), or undefined
 * to go on. Not called when the frame never completes its header.
 */
export type FrameHeaderCheck = (header: Readonly<FrameHeader>) => string | undefined;

// What the scan expects next.
const VALUE = 0; // a value (after ':' or ',' in an array, or at the start)
const VALUE_OR_CLOSE = 1; // after '[': a value or ']'
const KEY_OR_CLOSE = 2; // after '{': a member's key or '}'
const KEY = 3; // after ',' in an object
const COLON = 4; // after a key
const COMMA_OR_CLOSE = 5; // after a value inside an array or object
const DONE = 6; // after the top-level object: only whitespace

const IN_ARRAY = 1;
const IN_OBJECT = 2;

// Top-level keys the scan reads.
const NO_KEY = 0;
const TYPE_KEY = 1;
const ID_KEY = 2;
const METHOD_KEY = 4;

/** Longest raw (quoted, possibly escaped) header string the scan decodes; the longest legitimate one is a 64-character method. */
const MAX_HEADER_STRING_RAW = 1024;

const utf8 = new TextDecoder();

/**
 * Scans `frame`, UTF-8 bytes (a string is encoded first; see the module doc). Never throws; bounded
 * work: one pass, no allocation that grows with the frame except the depth stack (`maxDepth` bytes)
 * and the header strings (≤ 1 KiB each).
 */
export function scanFrame(frame: Uint8Array | string, limits: FrameScanLimits, checkHeader?: FrameHeaderCheck): FrameScan {
  const bytes = typeof frame === 'string' ? Buffer.from(frame, 'utf8') : frame;
  const header: FrameHeader = {};
  const length = bytes.length;
  /** The byte at `k`, or -1 past the end. */
  const at = (k: number): number => bytes[k] ?? -1;
  const stack = new Uint8Array(limits.maxDepth + 1);
  let depth = 0;
  let elements = 0;
  let expect = VALUE;
  let headerChecked = false;
  let seenKeys = 0;
  // The header key whose value comes next at depth 1, if any.
  let pendingKey = NO_KEY;
  let i = 0;

  const fail = (problem: string): FrameScan => ({ ok: false, header, problem: `${problem} (at offset ${i})`, refusedByHeaderCheck: false });

  /** Index just past the closing quote of the string opening at `i`, or -1 (with `stringProblem` set). */
  let stringProblem = '';
  const endOfString = (start: number): number => {
    let k = start + 1;
    for (;;) {
      // The hot loop of the scan: most of a large frame is string content.
      let c = -1;
      while (k < length) {
        c = bytes[k] as number;
        if (c === 0x22 || c === 0x5c || c < 0x20) break;
        k += 1;
      }
      if (k >= length) {
        stringProblem = 'a string is not terminated';
        return -1;
      }
      if (c === 0x22) return k + 1;
      if (c === 0x5c) {
        const escaped = at(k + 1);
        if (escaped === 0x75) {
          for (let h = k + 2; h < k + 6; h += 1) {
            if (!isHexDigit(at(h))) {
              stringProblem = 'a \\u escape needs four hex digits';
              return -1;
            }
          }
          k += 6;
          continue;
        }
        // " \ / b f n r t
        if (
          escaped === 0x22 ||
          escaped === 0x5c ||
          escaped === 0x2f ||
          escaped === 0x62 ||
          escaped === 0x66 ||
          escaped === 0x6e ||
          escaped === 0x72 ||
          escaped === 0x74
        ) {
          k += 2;
          continue;
        }
        stringProblem = 'a string holds an invalid escape';
        return -1;
      }
      stringProblem = 'a string holds a raw control character';
      return -1;
    }
  };

  /** Index just past the JSON number starting at `start`, or -1. */
  const endOfNumber = (start: number): number => {
    let k = start;
    if (at(k) === 0x2d) k += 1; // -
    const first = at(k);
    if (first === 0x30) k += 1;
    else if (first >= 0x31 && first <= 0x39) {
      k += 1;
      while (isDigit(at(k))) k += 1;
    } else return -1;
    if (at(k) === 0x2e) {
      k += 1;
      if (!isDigit(at(k))) return -1;
      while (isDigit(at(k))) k += 1;
    }
    const e = at(k);
    if (e === 0x65 || e === 0x45) {
      k += 1;
      const sign = at(k);
      if (sign === 0x2b || sign === 0x2d) k += 1;
      if (!isDigit(at(k))) return -1;
      while (isDigit(at(k))) k += 1;
    }
    return k;
  };

  /** Decodes a validated raw JSON string (quotes included). */
  const decode = (start: number, end: number): string => {
    const raw = utf8.decode(bytes.subarray(start, end));
    return raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
  };

  const headerComplete = (): boolean =>
    header.type !== undefined &&
    (header.type === 'request' ? header.method !== undefined : header.type === 'response' || header.type === 'cancel' ? header.id !== undefined : true);

  while (i < length) {
    const c = bytes[i] as number;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) {
      i += 1;
      continue;
    }
    switch (expect) {
      case VALUE:
      case VALUE_OR_CLOSE: {
        if (expect === VALUE_OR_CLOSE && c === 0x5d) {
          // ]
          depth -= 1;
          expect = depth === 0 ? DONE : COMMA_OR_CLOSE;
          i += 1;
          break;
        }
        if (depth === 0 && c !== 0x7b) return fail('a frame must be one JSON object');
        if (stack[depth] === IN_ARRAY) {
          elements += 1;
          if (elements > limits.maxElements) return fail(`holds more than ${limits.maxElements} values`);
        }
        const key = depth === 1 ? pendingKey : NO_KEY;
        pendingKey = NO_KEY;
        if (c === 0x7b || c === 0x5b) {
          // { or [
          if (depth >= limits.maxDepth) return fail(`nests deeper than ${limits.maxDepth} levels`);
          depth += 1;
          stack[depth] = c === 0x7b ? IN_OBJECT : IN_ARRAY;
          expect = c === 0x7b ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
          i += 1;
          break;
        }
        let end: number;
        if (c === 0x22) {
          end = endOfString(i);
          if (end < 0) return fail(stringProblem);
          if (key === TYPE_KEY || key === METHOD_KEY) {
            const name = key === TYPE_KEY ? 'type' : 'method';
            if (end - i > MAX_HEADER_STRING_RAW) return fail(`the envelope's "${name}" is too long`);
            header[name] = decode(i, end);
          }
        } else if (c === 0x2d || isDigit(c)) {
          end = endOfNumber(i);
          if (end < 0) return fail('a number is malformed');
          if (key === ID_KEY) header.id = Number(utf8.decode(bytes.subarray(i, end)));
        } else if (c === 0x74 && at(i + 1) === 0x72 && at(i + 2) === 0x75 && at(i + 3) === 0x65)
          end = i + 4; // true
        else if (c === 0x66 && at(i + 1) === 0x61 && at(i + 2) === 0x6c && at(i + 3) === 0x73 && at(i + 4) === 0x65)
          end = i + 5; // false
        else if (c === 0x6e && at(i + 1) === 0x75 && at(i + 2) === 0x6c && at(i + 3) === 0x6c)
          end = i + 4; // null
        else return fail(`unexpected character ${describeChar(c)} where a value should be`);
        i = end;
        expect = COMMA_OR_CLOSE;
        if (key !== NO_KEY && !headerChecked && headerComplete()) {
          headerChecked = true;
          const problem = checkHeader?.(header);
          if (problem !== undefined) return { ok: false, header, problem, refusedByHeaderCheck: true };
        }
        break;
      }
      case KEY_OR_CLOSE:
      case KEY: {
        if (expect === KEY_OR_CLOSE && c === 0x7d) {
          // }
          depth -= 1;
          expect = depth === 0 ? DONE : COMMA_OR_CLOSE;
          i += 1;
          break;
        }
        if (c !== 0x22) return fail(`unexpected character ${describeChar(c)} where a key should be`);
        elements += 1;
        if (elements > limits.maxElements) return fail(`holds more than ${limits.maxElements} values`);
        const end = endOfString(i);
        if (end < 0) return fail(stringProblem);
        // Escapes make a key at most six times longer: "method" fully escaped is 38 characters.
        if (depth === 1 && end - i <= 64) {
          const name = decode(i, end);
          const key = name === 'type' ? TYPE_KEY : name === 'id' ? ID_KEY : name === 'method' ? METHOD_KEY : NO_KEY;
          if (key !== NO_KEY) {
            if (seenKeys & key) return fail(`the envelope has "${name}" twice`);
            seenKeys |= key;
          }
          pendingKey = key;
        }
        i = end;
        expect = COLON;
        break;
      }
      case COLON:
        if (c !== 0x3a) return fail(`unexpected character ${describeChar(c)} where ':' should be`);
        i += 1;
        expect = VALUE;
        break;
      case COMMA_OR_CLOSE: {
        const inArray = stack[depth] === IN_ARRAY;
        if (c === 0x2c) {
          expect = inArray ? VALUE : KEY;
          i += 1;
          break;
        }
        if (c === (inArray ? 0x5d : 0x7d)) {
          depth -= 1;
          expect = depth === 0 ? DONE : COMMA_OR_CLOSE;
          i += 1;
          break;
        }
        return fail(`unexpected character ${describeChar(c)} after a value`);
      }
      default:
        return fail('the frame goes on after its JSON object');
    }
  }
  if (expect !== DONE) return fail(length === 0 ? 'the frame is empty' : 'the frame ends before its JSON object does');
  return { ok: true, header };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function describeChar(c: number): string {
  return c >= 0x21 && c <= 0x7e ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16).toUpperCase().padStart(2, '0')}`;
}
