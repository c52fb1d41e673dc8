/**
 * One output stream of a cell, kept within a character limit: the first half of the budget and the
 * last half are kept, the middle is dropped and replaced by a marker saying how much went.
 *
 * Memory stays bounded however much is written: the head stops growing at its share, and the tail
 * is a list of chunks compacted to its share once it holds twice that, so a flood of small writes
 * costs amortised O(1) per character and never more than about three limits of text.
 */
import type { CapturedOutput } from '@rlm/shared';

export class OutputCapture {
  readonly #headLimit: number;
  readonly #tailLimit: number;
  #head = '';
  #tail: string[] = [];
  #tailLength = 0;
  #total = 0;

  /** @param limitChars the most characters `finish()` returns text for (the marker included, unless the limit is smaller than the marker). */
  constructor(readonly limitChars: number) {
    this.#headLimit = Math.ceil(limitChars / 2);
    this.#tailLimit = limitChars - this.#headLimit;
  }

  /** Characters written so far. */
  get totalChars(): number {
    return this.#total;
  }

  write(text: string): void {
    if (text.length === 0) return;
    this.#total += text.length;
    const room = this.#headLimit - this.#head.length;
    if (room > 0) {
      if (text.length <= room) {
        this.#head += text;
        return;
      }
      this.#head += text.slice(0, room);
      text = text.slice(room);
    }
    this.#tail.push(text);
    this.#tailLength += text.length;
    if (this.#tailLength > 2 * this.#tailLimit + 1024) this.#compactTail();
  }

  finish(): CapturedOutput {
    this.#compactTail();
    const head = this.#head;
    const tail = this.#tail[0] ?? '';
    if (this.#total <= this.limitChars) return { text: head + tail, truncatedChars: 0 };
    // The marker's length depends on the count it shows; size the budget with the largest count it could show.
    const budget = Math.max(0, this.limitChars - truncationMarker(this.#total).length);
    const keptHead = Math.min(head.length, Math.ceil(budget / 2));
    const keptTail = Math.min(tail.length, budget - keptHead);
    const truncatedChars = this.#total - keptHead - keptTail;
    return {
      text: head.slice(0, keptHead) + truncationMarker(truncatedChars) + (keptTail > 0 ? tail.slice(-keptTail) : ''),
      truncatedChars,
    };
  }

  #compactTail(): void {
    if (this.#tail.length === 0) return;
    let joined = this.#tail.length === 1 ? (this.#tail[0] ?? '') : this.#tail.join('');
    if (joined.length > this.#tailLimit) joined = this.#tailLimit > 0 ? joined.slice(-this.#tailLimit) : '';
    this.#tail = [joined];
    this.#tailLength = joined.length;
  }
}

export function truncationMarker(truncatedChars: number): string {
  return `\n[... ${truncatedChars.toLocaleString('en-US')} characters truncated ...]\n`;
}

/** Bytes decoded per piece by {@link Utf8StreamDecoder}. */
const DECODE_CHUNK_BYTES = 64 * 1024;

/**
 * Turns a stream of bytes (what an interpreter writes to a file descriptor) into text for a sink,
 * as UTF-8 with invalid sequences replaced, a piece of at most 64 KiB at a time: a write of any
 * size never becomes one string of its size, and a character split across writes is joined.
 */
export class Utf8StreamDecoder {
  readonly #sink: (text: string) => void;
  readonly #decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(sink: (text: string) => void) {
    this.#sink = sink;
  }

  /** Decodes `bytes` (not kept: it may be a view of memory that changes) and returns how many were taken: all of them. */
  write(bytes: Uint8Array): number {
    for (let start = 0; start < bytes.length; start += DECODE_CHUNK_BYTES) {
      const text = this.#decoder.decode(bytes.subarray(start, start + DECODE_CHUNK_BYTES), { stream: true });
      if (text.length > 0) this.#sink(text);
    }
    return bytes.length;
  }

  /** Ends the stream: an incomplete character left at the end becomes a replacement character. */
  flush(): void {
    const text = this.#decoder.decode();
    if (text.length > 0) this.#sink(text);
  }
}
