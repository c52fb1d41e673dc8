import { describe, expect, test } from 'vitest';
import { OutputCapture, Utf8StreamDecoder, truncationMarker } from './output-capture.js';

describe('OutputCapture', () => {
  test('keeps everything under the limit', () => {
    const capture = new OutputCapture(100);
    capture.write('hello ');
    capture.write('world\n');
    expect(capture.finish()).toEqual({ text: 'hello world\n', truncatedChars: 0 });
  });

  test('keeps head and tail around a marker that counts the dropped characters', () => {
    const capture = new OutputCapture(200);
    for (let line = 0; line < 1000; line++) capture.write(`line ${line}\n`);
    const { text, truncatedChars } = capture.finish();
    expect(text.length).toBeLessThanOrEqual(200);
    expect(text.startsWith('line 0\nline 1\n')).toBe(true);
    expect(text.endsWith('line 999\n')).toBe(true);
    expect(text).toContain(truncationMarker(truncatedChars));
    expect(text.length - truncationMarker(truncatedChars).length + truncatedChars).toBe(capture.totalChars);
  });

  test('formats the count with thousands separators', () => {
    expect(truncationMarker(12_345)).toBe('\n[... 12,345 characters truncated ...]\n');
  });

  test('stays small however much is written', () => {
    const capture = new OutputCapture(1000);
    const chunk = `${'x'.repeat(999)}\n`;
    for (let index = 0; index < 50_000; index++) capture.write(chunk);
    const { text, truncatedChars } = capture.finish();
    expect(text.length).toBeLessThanOrEqual(1000);
    expect(truncatedChars).toBeGreaterThan(49_990_000);
  });

  test('cuts one huge write too', () => {
    const capture = new OutputCapture(100);
    capture.write(`${'a'.repeat(10_000)}END`);
    const { text, truncatedChars } = capture.finish();
    expect(text.endsWith('END')).toBe(true);
    expect(text.length).toBeLessThanOrEqual(100);
    expect(truncatedChars).toBe(10_003 - (text.length - truncationMarker(truncatedChars).length));
  });
});

describe('Utf8StreamDecoder', () => {
  test('a character split across writes is decoded whole', () => {
    const pieces: string[] = [];
    const decoder = new Utf8StreamDecoder((text) => pieces.push(text));
    const bytes = new TextEncoder().encode('é€😀!');
    for (let i = 0; i < bytes.length; i++) expect(decoder.write(bytes.subarray(i, i + 1))).toBe(1);
    decoder.flush();
    expect(pieces.join('')).toBe('é€😀!');
  });

  test('an incomplete character at the end becomes a replacement character on flush', () => {
    const pieces: string[] = [];
    const decoder = new Utf8StreamDecoder((text) => pieces.push(text));
    decoder.write(new TextEncoder().encode('€').subarray(0, 2));
    decoder.flush();
    decoder.write(new TextEncoder().encode('ok'));
    expect(pieces.join('')).toBe('\ufffdok');
  });

  test('one 10 MB write reaches the sink in pieces of at most 64 KiB', () => {
    let largest = 0;
    let total = 0;
    const decoder = new Utf8StreamDecoder((text) => {
      largest = Math.max(largest, text.length);
      total += text.length;
    });
    expect(decoder.write(new Uint8Array(10_000_000).fill(0x78))).toBe(10_000_000);
    expect(largest).toBeLessThanOrEqual(64 * 1024);
    expect(total).toBe(10_000_000);
  });
});
