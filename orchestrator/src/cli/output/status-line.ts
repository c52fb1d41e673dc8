/**
 * One line at the bottom of a terminal, redrawn in place (`\r` and erase-line), that other output
 * scrolls above: `log()` clears it, writes, and draws it again. Disabled (off a terminal), it
 * draws nothing and `log()` just writes.
 */
import { stripAnsi } from './colors.js';

export interface StatusLineOptions {
  write: (text: string) => void;
  enabled: boolean;
  /** Terminal width, asked at each draw; the line is cut to fit so it never wraps. */
  columns?: () => number | undefined;
}

const CLEAR = '\r\x1b[2K';

export class StatusLine {
  readonly #write: (text: string) => void;
  readonly #enabled: boolean;
  readonly #columns: () => number | undefined;
  #text = '';
  #shown = false;
  #stopped = false;

  constructor(options: StatusLineOptions) {
    this.#write = options.write;
    this.#enabled = options.enabled;
    this.#columns = options.columns ?? (() => 80);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** Replaces the status text and redraws it. */
  update(text: string): void {
    this.#text = text;
    this.#draw();
  }

  /** Writes `text` (whole lines) above the status line. */
  log(text: string): void {
    if (this.#shown) {
      this.#write(CLEAR);
      this.#shown = false;
    }
    this.#write(text);
    this.#draw();
  }

  /** Erases the line for good; later `log()`s just write. Safe to call twice. */
  stop(): void {
    if (this.#shown) this.#write(CLEAR);
    this.#shown = false;
    this.#stopped = true;
  }

  #draw(): void {
    if (!this.#enabled || this.#stopped || this.#text === '') return;
    const width = Math.max(20, (this.#columns() || 80) - 1);
    this.#write(`${CLEAR}${truncateVisible(this.#text, width)}`);
    this.#shown = true;
  }
}

/** Cuts `text` to `width` visible characters, keeping colour sequences balanced by a reset. */
export function truncateVisible(text: string, width: number): string {
  if (stripAnsi(text).length <= width) return text;
  let visible = 0;
  let out = '';
  for (let i = 0; i < text.length && visible < width - 1; i++) {
    if (text[i] === '\x1b') {
      const end = text.indexOf('m', i);
      if (end > 0) {
        out += text.slice(i, end + 1);
        i = end;
        continue;
      }
    }
    out += text[i];
    visible += 1;
  }
  return `${out}…\x1b[0m`;
}
