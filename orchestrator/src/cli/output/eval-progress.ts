/**
 * What `rlm eval` shows while it runs, on stderr:
 *
 * - on a terminal, one live line redrawn in place ({@link StatusLine}): done/total, running,
 *   accuracy so far per method, cost, ETA; warnings scroll above it;
 * - off a terminal (a pipe, a CI log), one line per finished (task, method, epoch);
 * - with `--quiet`, nothing.
 *
 * Why not a progress-bar library: what is drawn is one line of text with our own fields, and
 * status-line.ts already does the terminal part (redraw in place, cut to the width so it never
 * wraps, log above it, colour-safe truncation); cli-progress and its kin would add a dependency
 * for a bar glyph and a format string.
 */
import type { ResultLine } from '../../eval/eval-types.js';
import type { Palette } from './colors.js';
import { formatCost, formatDuration } from './format.js';
import { StatusLine } from './status-line.js';

export type EvalProgressMode = 'live' | 'lines' | 'quiet';

export interface EvalProgressOptions {
  write: (text: string) => void;
  mode: EvalProgressMode;
  palette: Palette;
  /** (task, method, epoch) combinations in the evaluation. */
  total: number;
  /** Of which already had a result when this process started (a resume). */
  alreadyDone: number;
  columns?: () => number | undefined;
  /** Milliseconds; default `Date.now`. */
  now?: () => number;
  /** Redraw the live line this often (ms) so the elapsed time and ETA move; default 1000. */
  tickMs?: number;
}

interface MethodTally {
  scored: number;
  sum: number;
}

export class EvalProgress {
  readonly #options: EvalProgressOptions;
  readonly #status: StatusLine;
  readonly #now: () => number;
  readonly #methods = new Map<string, MethodTally>();
  readonly #startedAt: number;
  #done: number;
  #doneHere = 0;
  #running = 0;
  #errors = 0;
  #cost = 0;
  #costKnown = true;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: EvalProgressOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    this.#done = options.alreadyDone;
    this.#status = new StatusLine({ write: options.write, enabled: options.mode === 'live', ...(options.columns ? { columns: options.columns } : {}) });
    if (options.mode === 'live') {
      this.#timer = setInterval(() => this.#draw(), options.tickMs ?? 1000);
      this.#timer.unref();
      this.#draw();
    }
  }

  /** Counts results that were already there (a resume) into accuracy and cost, without printing them. */
  seed(lines: readonly ResultLine[]): void {
    for (const line of lines) this.#tally(line);
    this.#draw();
  }

  /** A (task, method, epoch) started. */
  started(): void {
    this.#running += 1;
    this.#draw();
  }

  /** A (task, method, epoch) finished with `line`. */
  finished(line: ResultLine): void {
    this.#running = Math.max(0, this.#running - 1);
    this.#done += 1;
    this.#doneHere += 1;
    this.#tally(line);
    if (this.#options.mode === 'lines') this.#options.write(`${this.#finishedLine(line)}\n`);
    this.#draw();
  }

  /** A (task, method, epoch) ended without a result (stopped by the budget or Ctrl-C). */
  abandoned(): void {
    this.#running = Math.max(0, this.#running - 1);
    this.#draw();
  }

  /** A message (a retry, the budget running out): above the live line, or a line of its own; nothing with --quiet. */
  note(text: string): void {
    if (this.#options.mode === 'quiet') return;
    this.#status.log(`${text}\n`);
  }

  /** Erases the live line for good. Safe to call twice. */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#status.stop();
  }

  /** The live line's text (without redrawing). */
  statusText(): string {
    const c = this.#options.palette;
    const { total } = this.#options;
    const parts = [c.bold(`eval ${this.#done}/${total}`), `running ${this.#running}`];
    const accuracy = this.#accuracyText();
    if (accuracy) parts.push(accuracy);
    if (this.#errors > 0) parts.push(c.yellow(`${this.#errors} error${this.#errors === 1 ? '' : 's'}`));
    parts.push(formatCost(this.#costKnown ? this.#cost : null));
    const elapsed = this.#now() - this.#startedAt;
    parts.push(c.dim(formatDuration(elapsed)));
    const remaining = total - this.#done;
    if (this.#doneHere > 0 && remaining > 0) parts.push(`ETA ${formatDuration((elapsed / this.#doneHere) * remaining)}`);
    return parts.join('  ');
  }

  #tally(line: ResultLine): void {
    if (line.score === null) this.#errors += 1;
    else {
      const tally = this.#methods.get(line.method) ?? { scored: 0, sum: 0 };
      tally.scored += 1;
      tally.sum += line.score;
      this.#methods.set(line.method, tally);
    }
    if (line.cost_usd === null) this.#costKnown = false;
    else this.#cost += line.cost_usd;
  }

  #accuracyText(): string {
    const entries = [...this.#methods].filter(([, t]) => t.scored > 0);
    if (entries.length === 0) return '';
    return `acc ${entries.map(([method, t]) => `${entries.length > 1 ? `${method} ` : ''}${(t.sum / t.scored).toFixed(2)}`).join(', ')}`;
  }

  #finishedLine(line: ResultLine): string {
    const c = this.#options.palette;
    const what = `${line.task_id} ${line.method}${line.epoch > 1 ? ` #${line.epoch}` : ''}`;
    const outcome =
      line.error_kind === 'infra' || line.error_kind === 'scorer'
        ? c.red(`${line.error_kind} error: ${oneLine(line.error ?? '')}`)
        : `score ${line.score === null ? '-' : formatScore(line.score)}${line.error_kind === 'model' ? c.yellow(` (${oneLine(line.error ?? 'no answer')})`) : ''}`;
    return `[${this.#done}/${this.#options.total}] ${what}: ${outcome}  ${formatCost(line.cost_usd)}  ${formatDuration(line.duration_ms)}`;
  }

  #draw(): void {
    if (this.#options.mode !== 'live' || this.#stopped) return;
    this.#status.update(this.statusText());
  }
}

function formatScore(score: number): string {
  return Number.isInteger(score) ? String(score) : score.toFixed(2);
}

/** An error's first line, cut short for a progress line. */
function oneLine(text: string): string {
  const first = text.split('\n')[0] ?? '';
  return first.length > 120 ? `${first.slice(0, 119)}…` : first;
}
