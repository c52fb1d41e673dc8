import { describe, expect, test } from 'vitest';
import { OutputCapture, truncationMarker } from './output-capture.js';

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
