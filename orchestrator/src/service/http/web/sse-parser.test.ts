import { describe, expect, it } from 'vitest';
import { readSseStream, type SseEvent, SseParser } from './sse-parser.js';

/** The events `chunks` make, fed one after another. */
function parse(chunks: readonly string[]): { events: SseEvent[]; retries: number[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  const parser = new SseParser({ onEvent: (event) => events.push(event), onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.push(chunk);
  return { events, retries, parser };
}

const STREAM = 'retry: 3000\n\nid: 1\nevent: queued\ndata: {"a":1}\n\n: keep-alive\n\nid: 2\nevent: started\ndata: {}\n\n';

describe('the SSE parser', () => {
  it('reads the service’s stream: ids, event names, JSON data, comments skipped, retry reported', () => {
    const { events, retries, parser } = parse([STREAM]);
    expect(events).toEqual([
      { id: '1', event: 'queued', data: '{"a":1}' },
      { id: '2', event: 'started', data: '{}' },
    ]);
    expect(retries).toEqual([3000]);
    expect(parser.lastEventId).toBe('2');
  });

  it('gives the same events however the stream is cut into chunks', () => {
    const whole = parse([STREAM]).events;
    for (let i = 0; i <= STREAM.length; i++) expect(parse([STREAM.slice(0, i), STREAM.slice(i)]).events).toEqual(whole);
    expect(parse([...STREAM]).events).toEqual(whole);
  });

  it('takes CRLF, CR and LF line ends, a CRLF split across chunks counting once', () => {
    expect(parse(['data: a\r\ndata: b\r\n\r\n']).events).toEqual([{ id: '', event: 'message', data: 'a\nb' }]);
    expect(parse(['data: a\rdata: b\r\r']).events).toEqual([{ id: '', event: 'message', data: 'a\nb' }]);
    // The CR ends the line "data: a"; the LF after it, in the next chunk, is the same line end, not a blank line.
    expect(parse(['data: a\r', '\ndata: b\r', '\n\r', '\n']).events).toEqual([{ id: '', event: 'message', data: 'a\nb' }]);
  });

  it('follows the standard’s field rules: one leading space stripped, no colon = empty value, unknown fields ignored', () => {
    expect(parse(['data:  two spaces\nfoo: bar\ndata\n\n']).events).toEqual([{ id: '', event: 'message', data: ' two spaces\n' }]);
    expect(parse(['data:no space\n\n']).events[0]?.data).toBe('no space');
  });

  it('dispatches nothing for an event without data, but keeps its id', () => {
    const { events, parser } = parse(['id: 7\nevent: x\n\n']);
    expect(events).toEqual([]);
    expect(parser.lastEventId).toBe('7');
  });

  it('ignores an id holding NUL and a retry that is not digits', () => {
    const { events, retries } = parse(['id: 5\ndata: a\n\nid: 6\u00007\nretry: 1s\ndata: b\n\n']);
    expect(events.map((e) => e.id)).toEqual(['5', '5']);
    expect(retries).toEqual([]);
  });

  it('drops an event the stream ended before its blank line', () => {
    const { events, parser } = parse(['data: whole\n\ndata: half']);
    parser.end();
    parser.push('\n\n');
    expect(events.map((e) => e.data)).toEqual(['whole']);
  });

  it('reads a byte stream split inside a multi-byte character, and a leading BOM', async () => {
    const bytes = new TextEncoder().encode('\uFEFFdata: {"answer":"héllo → 世界"}\n\n');
    const split = bytes.indexOf(0xe4) + 1;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, split));
        controller.enqueue(bytes.slice(split));
        controller.close();
      },
    });
    const events: SseEvent[] = [];
    await readSseStream(body, new SseParser({ onEvent: (e) => events.push(e) }));
    expect(events).toEqual([{ id: '', event: 'message', data: '{"answer":"héllo → 世界"}' }]);
  });

  it('stops reading when its signal aborts, cancelling the stream', async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('data: first\n\n'));
      },
      cancel() {
        cancelled = true;
      },
    });
    const controller = new AbortController();
    const events: string[] = [];
    const reading = readSseStream(
      body,
      new SseParser({
        onEvent: (e) => {
          events.push(e.data);
          controller.abort(new Error('enough'));
        },
      }),
      controller.signal,
    );
    await expect(reading).rejects.toThrow('enough');
    expect(events).toEqual(['first']);
    expect(cancelled).toBe(true);
  });
});
