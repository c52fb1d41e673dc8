import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_FRAME_DEPTH, MAX_FRAME_ELEMENTS } from './frame-limits.js';
import { type FrameHeader, type FrameScanLimits, scanFrame } from './frame-scan.js';

const limits: FrameScanLimits = { maxDepth: MAX_FRAME_DEPTH, maxElements: MAX_FRAME_ELEMENTS };

function problemOf(text: string | Uint8Array, scanLimits = limits): string {
  const scan = scanFrame(text, scanLimits);
  if (scan.ok) throw new Error(`expected ${JSON.stringify(String(text).slice(0, 80))} to be refused`);
  return scan.problem;
}

/** A JSON object's text, then damaged in one place (or not): cut short, a character dropped, or one inserted. */
const nearlyJson = fc
  .tuple(
    fc.tuple(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 4 })), fc.boolean()).map(([value, indent]) => JSON.stringify(value, null, indent ? 1 : 0)),
    fc.nat(),
    fc.constantFrom('cut', 'drop', 'insert', 'keep'),
    fc.constantFrom(...'{}[],:"\\ 0-1e.tfn\u0001\n'.split('')),
  )
  .map(([text, at, how, char]) => {
    const index = text.length === 0 ? 0 : at % text.length;
    if (how === 'cut') return text.slice(0, index);
    if (how === 'drop') return text.slice(0, index) + text.slice(index + 1);
    if (how === 'insert') return text.slice(0, index) + char + text.slice(index);
    return text;
  });

describe('scanFrame', () => {
  it('reads type, id and method of an envelope wherever they stand, decoding escaped keys and values', () => {
    const scan = scanFrame('{"params":{"type":"x","id":9,"method":"m"},"m\\u0065thod":"ex\\u0065cute","id":42,"t\\u0079pe":"request"}', limits);
    expect(scan).toMatchObject({ ok: true, header: { type: 'request', id: 42, method: 'execute' } });
  });

  it('leaves out a header field of the wrong JSON type', () => {
    const scan = scanFrame('{"type":"response","id":"7","method":["execute"]}', limits);
    expect(scan.ok).toBe(true);
    expect(scan.header).toEqual({ type: 'response' });
  });

  it('refuses a header key given twice, since JSON.parse would keep the last and the scan judged the first', () => {
    expect(problemOf('{"type":"request","method":"hello","id":1,"method":"execute"}')).toMatch(/"method" twice/);
    expect(problemOf('{"type":"request","id":1,"\\u0069d":2}')).toMatch(/"id" twice/);
  });

  it('refuses nesting deeper than the bound at the first level too deep, without reading on', () => {
    const deep = `{"a":${'['.repeat(10)}${']'.repeat(10)}}`;
    expect(scanFrame(deep, { maxDepth: 11, maxElements: 100 }).ok).toBe(true);
    expect(problemOf(deep, { maxDepth: 10, maxElements: 100 })).toBe('nests deeper than 10 levels (at offset 14)');
    // 60 MB of brackets (the finding): refused at the bound's offset.
    const huge = `{"type":"request","id":1,"method":"nope","params":${'['.repeat(30_000_000)}`;
    expect(problemOf(huge)).toBe(`nests deeper than ${MAX_FRAME_DEPTH} levels (at offset ${50 + MAX_FRAME_DEPTH - 1})`);
  });

  it('refuses more values than the bound, counting array elements and object members over the whole frame', () => {
    const frame = JSON.stringify({ a: [1, 2, 3], b: { c: 1, d: [] } }); // a, 1, 2, 3, b, c, d: 7 values
    expect(scanFrame(frame, { maxDepth: 10, maxElements: 7 }).ok).toBe(true);
    expect(problemOf(frame, { maxDepth: 10, maxElements: 6 })).toMatch(/^holds more than 6 values/);
  });

  it.each([
    ['', /empty/],
    ['{"a":1', /ends before/],
    ['{"a":1}}', /goes on after/],
    ['{"a":1} x', /goes on after/],
    ['{"a" 1}', /':' should be/],
    ['{a:1}', /where a key should be/],
    ['{"a":1,}', /where a key should be/],
    ['{"a":[1,]}', /where a value should be/],
    ['{"a":[1 2]}', /after a value/],
    ['{"a":[1}', /after a value/],
    ['{"a":tru}', /where a value should be/],
    ['{"a":01}', /after a value/],
    ['{"a":-}', /number is malformed/],
    ['{"a":1.}', /number is malformed/],
    ['{"a":1e}', /number is malformed/],
    ['{"a":"\\x"}', /invalid escape/],
    ['{"a":"\\u12g4"}', /four hex digits/],
    ['{"a":"\n"}', /raw control character/],
    ['{"a":"unterminated}', /not terminated/],
    ['{"a":NaN}', /where a value should be/],
  ])('refuses %j as JSON.parse would', (text, problem) => {
    expect(problemOf(text)).toMatch(problem);
    expect(() => JSON.parse(text)).toThrow();
  });

  it('refuses JSON that is not an object', () => {
    expect(problemOf('[]')).toMatch(/one JSON object/);
    expect(problemOf(' "x"')).toMatch(/one JSON object/);
  });

  it('accepts exactly the objects JSON.parse accepts (arbitrary JSON, and arbitrary strings)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json({ maxDepth: 6 }), fc.string({ unit: 'binary' }), nearlyJson), (text) => {
        let parsed: unknown;
        let parses = true;
        try {
          parsed = JSON.parse(text);
        } catch {
          parses = false;
        }
        const isObject = parses && typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed);
        expect(scanFrame(text, limits).ok).toBe(isObject);
      }),
      { numRuns: 2000 },
    );
  });

  it('reports the header the parsed object holds, for any envelope-like object', () => {
    const scalar = fc.oneof(fc.string(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
    const headerValue = fc.oneof(scalar, fc.constantFrom('request', 'response', 'execute'), fc.jsonValue({ maxDepth: 2 }));
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('type', 'id', 'method', 'params', 'x'), headerValue), (generated) => {
        const text = JSON.stringify(generated);
        // What the frame holds is the JSON text: -0 is written as 0, so compare with its parse.
        const object = JSON.parse(text) as typeof generated;
        const scan = scanFrame(text, limits);
        expect(scan.ok).toBe(true);
        const expected: FrameHeader = {};
        if (typeof object.type === 'string') expected.type = object.type;
        if (typeof object.id === 'number') expected.id = object.id;
        if (typeof object.method === 'string') expected.method = object.method;
        expect(scan.header).toEqual(expected);
      }),
      { numRuns: 1000 },
    );
  });

  it('calls the header check once, as soon as the header is complete, and stops where it objects', () => {
    const seen: FrameHeader[] = [];
    const text = '{"type":"request","method":"hello","id":1,"params":[1,2,3]}';
    const scan = scanFrame(text, limits, (header) => {
      seen.push({ ...header });
      return 'hello is too big';
    });
    expect(seen).toEqual([{ type: 'request', method: 'hello' }]);
    expect(scan).toMatchObject({ ok: false, problem: 'hello is too big', refusedByHeaderCheck: true });
    // A response completes with its id; a protocol_error with its type alone.
    const calls: FrameHeader[] = [];
    scanFrame('{"id":3,"result":{},"type":"response"}', limits, (header) => void calls.push({ ...header }));
    scanFrame('{"type":"protocol_error","message":"x"}', limits, (header) => void calls.push({ ...header }));
    scanFrame('{"type":"request","id":3}', limits, (header) => void calls.push({ ...header }));
    expect(calls).toEqual([{ type: 'response', id: 3 }, { type: 'protocol_error' }]);
  });

  it('reads UTF-8 bytes: non-ASCII header values decoded, offsets in bytes, invalid bytes outside strings refused', () => {
    expect(scanFrame(Buffer.from('{"method":"é\\u00e9","type":"request"}'), limits)).toMatchObject({ ok: true, header: { method: 'éé', type: 'request' } });
    expect(problemOf('{"é":1,x}')).toBe("unexpected character 'x' where a key should be (at offset 8)");
    expect(problemOf(Buffer.from([0x7b, 0xc3, 0xa9, 0x7d]))).toBe('unexpected character byte 0xC3 where a key should be (at offset 1)');
  });

  it('refuses an over-long type or method instead of decoding it', () => {
    expect(problemOf(`{"type":"${'x'.repeat(2000)}"}`)).toMatch(/"type" is too long/);
  });
});
