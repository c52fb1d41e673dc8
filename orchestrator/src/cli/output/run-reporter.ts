/**
 * What a user sees on stderr while a run goes: the live status line (turn, sub-calls, tokens,
 * cost, elapsed) and, with `--verbose`, each turn's model response, code and output, child RLMs
 * indented under their parent. Never writes to stdout.
 */
import type { RunEvent } from '../../engine/run-events.js';
import type { Palette } from './colors.js';
import { formatCost, formatDuration, formatTokens, plural } from './format.js';
import { LiveUsage } from './live-usage.js';
import type { StatusLine } from './status-line.js';

/** Lines of one cell's output shown with `--verbose` before the rest is elided. */
const VERBOSE_OUTPUT_LINES = 40;
/** Lines of one code block shown with `--verbose`. */
const VERBOSE_CODE_LINES = 60;

export interface RunReporterOptions {
  status: StatusLine;
  palette: Palette;
  verbose: boolean;
  /** Milliseconds since the Unix epoch; a test seam. */
  now?: () => number;
}

interface CellSubcalls {
  count: number;
  failed: number;
  kinds: Set<string>;
  models: Set<string>;
}

export class RunReporter {
  readonly #options: RunReporterOptions;
  readonly #usage = new LiveUsage();
  readonly #startedAt: number;
  readonly #now: () => number;
  #phase = 'starting';
  #turn = 0;
  #turnsTotal = 0;
  #subcalls = 0;
  #subcallsRunning = 0;
  #childRuns = 0;
  /** Per run id: sub-calls of the cell that is running there. */
  readonly #cellSubcalls = new Map<string, CellSubcalls>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RunReporterOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#startedAt = this.#now();
    if (options.status.enabled) {
      // Elapsed time moves even when no event arrives.
      this.#timer = setInterval(() => this.#refresh(), 250);
      this.#timer.unref();
    }
  }

  /** Shown before the run starts (e.g. "building the sandbox image"). */
  setPhase(phase: string): void {
    this.#phase = phase;
    this.#refresh();
  }

  /** Writes a line of information above the status line. */
  note(text: string): void {
    this.#options.status.log(`${text}\n`);
  }

  onEvent(event: RunEvent): void {
    this.#usage.onEvent(event);
    const { palette: c, verbose } = this.#options;
    const indent = '  '.repeat(event.depth);
    const say = (text: string) => this.#options.status.log(indentLines(text, indent));
    switch (event.type) {
      case 'run_start':
        if (event.depth > 0) {
          this.#childRuns += 1;
          if (verbose) say(c.magenta(`↳ child RLM (depth ${event.depth}, ${event.rootModel})\n`));
        }
        break;
      case 'turn_start':
        this.#turnsTotal += 1;
        if (event.depth === 0) this.#turn = event.turn;
        this.#phase = event.depth === 0 ? 'thinking' : `child RLM thinking`;
        break;
      case 'model_response':
        this.#phase = 'running code';
        if (verbose) {
          const header = `── turn ${event.turn} · ${event.model} · ${formatTokens(event.inputTokens)} in / ${formatTokens(event.outputTokens)} out · ${formatDuration(event.durationMs)} `;
          say(`${c.bold(c.blue(header.padEnd(Math.max(header.length, 72), '─')))}\n`);
          const prose = proseOf(event.text);
          if (prose) say(`${c.dim(prose)}\n`);
        }
        break;
      case 'cell_start':
        this.#cellSubcalls.set(event.runId, { count: 0, failed: 0, kinds: new Set(), models: new Set() });
        if (verbose) say(`${c.cyan(`▸ code (block ${event.block})`)}\n${gutter(clip(event.code, VERBOSE_CODE_LINES), c.dim('│ '))}\n`);
        break;
      case 'cell_end': {
        const calls = this.#cellSubcalls.get(event.runId);
        this.#cellSubcalls.delete(event.runId);
        if (!verbose) break;
        const r = event.result;
        const lines: string[] = [];
        const status = r.status === 'ok' ? c.green('ok') : r.status === 'timeout' ? c.red('timed out') : c.red('error');
        lines.push(`${c.cyan('◂ output')} ${c.dim(`(${status}${c.dim(`, ${formatDuration(r.durationMs)}`)})`)}`);
        if (calls && calls.count > 0) {
          const failed = calls.failed > 0 ? c.red(`, ${calls.failed} failed`) : '';
          lines.push(c.magenta(`  ${plural(calls.count, 'sub-call')} (${[...calls.kinds].join(', ')} → ${[...calls.models].join(', ')})${failed}`));
        }
        if (r.stdout.text) lines.push(gutter(clip(r.stdout.text.replace(/\n$/, ''), VERBOSE_OUTPUT_LINES), c.dim('│ ')));
        if (r.value !== undefined) lines.push(gutter(clip(r.value, VERBOSE_OUTPUT_LINES), c.dim('│ ')));
        if (r.stderr.text) lines.push(gutter(c.yellow(clip(r.stderr.text.replace(/\n$/, ''), VERBOSE_OUTPUT_LINES)), c.dim('│ ')));
        if (r.error)
          lines.push(c.red(`  ${r.error.type}: ${r.error.message}${r.error.stack.length > 0 ? `\n    ${r.error.stack.slice(0, 5).join('\n    ')}` : ''}`));
        if (r.stateLost) lines.push(c.yellow('  (the REPL restarted: its variables are gone)'));
        if (r.final) lines.push(c.green(`  ${r.final.via}(…) called`));
        say(`${lines.join('\n')}\n`);
        break;
      }
      case 'subcall_start': {
        this.#subcalls += 1;
        this.#subcallsRunning += 1;
        const calls = this.#cellSubcalls.get(event.runId);
        if (calls) {
          calls.count += 1;
          calls.kinds.add(event.kind);
          calls.models.add(event.model);
        }
        break;
      }
      case 'subcall_end': {
        this.#subcallsRunning = Math.max(0, this.#subcallsRunning - 1);
        const calls = this.#cellSubcalls.get(event.runId);
        if (calls && !event.ok) calls.failed += 1;
        break;
      }
      case 'warning':
        // A trajectory that cannot be written is already reported through `warn`, shown always.
        if (verbose && event.code === 'sandbox_cap') say(c.yellow(`(${event.message})\n`));
        break;
      case 'compaction':
        if (verbose) say(c.yellow(`(conversation summarised: ${event.messagesBefore} messages → a ${event.summaryChars}-character summary)\n`));
        break;
      case 'final':
        if (verbose && event.depth > 0) say(c.green(`↳ child answered: ${oneLine(event.answer, 160)}\n`));
        break;
      case 'run_end':
        if (event.depth === 0) this.#phase = 'finishing';
        break;
    }
    this.#refresh();
  }

  /** The status text: `turn 3 · 12 sub-calls (2 running) · 45.2k tokens · $0.0123 · 12.4 s`. */
  statusText(): string {
    const { palette: c } = this.#options;
    const usage = this.#usage;
    const parts = [
      c.bold(this.#turn > 0 ? `turn ${this.#turn}` : this.#phase),
      ...(this.#turn > 0 ? [this.#phase] : []),
      `${plural(this.#subcalls, 'sub-call')}${this.#subcallsRunning > 0 ? ` (${this.#subcallsRunning} running)` : ''}`,
      ...(this.#childRuns > 0 ? [plural(this.#childRuns, 'child RLM', 'child RLMs')] : []),
      `${formatTokens(usage.inputTokens + usage.outputTokens)} tokens`,
      formatCost(usage.costUsd),
      formatDuration(this.#now() - this.#startedAt),
    ];
    return `${c.cyan('●')} ${parts.join(c.dim(' · '))}`;
  }

  /** Turns taken across the whole tree. */
  get turnsTotal(): number {
    return this.#turnsTotal;
  }

  get subcalls(): number {
    return this.#subcalls;
  }

  /** Stops the timer and erases the status line. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#options.status.stop();
  }

  #refresh(): void {
    if (this.#options.status.enabled) this.#options.status.update(this.statusText());
  }
}

/** The model's words outside its code fences, trimmed. */
export function proseOf(response: string): string {
  return response
    .replace(/```[\w-]*\n[\s\S]*?(?:```|$)/g, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function gutter(text: string, mark: string): string {
  return text
    .split('\n')
    .map((line) => `  ${mark}${line}`)
    .join('\n');
}

function clip(text: string, maxLines: number): string {
  const lines = text.split('\n');
  if (lines.length <= maxLines) return text;
  return [...lines.slice(0, maxLines), `… (${lines.length - maxLines} more lines)`].join('\n');
}

function indentLines(text: string, indent: string): string {
  if (!indent) return text;
  return text.replace(/^(?=.)/gm, indent);
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
