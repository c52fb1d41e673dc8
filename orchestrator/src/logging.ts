/**
 * Diagnostics that must not interrupt a run: cleanup failures and the like. They go to stderr
 * (never stdout, which carries answers and `--json` output). `RLM_DEBUG=1` adds debug lines.
 */

export type LogSink = (line: string) => void;

let sink: LogSink = (line) => process.stderr.write(`${line}\n`);

/** Replaces where diagnostics go (the CLI routes them through its status line; tests capture them). */
export function setLogSink(next: LogSink): LogSink {
  const previous = sink;
  sink = next;
  return previous;
}

export function warn(message: string): void {
  sink(`rlm: warning: ${message}`);
}

export function debug(message: string): void {
  if (process.env.RLM_DEBUG) sink(`rlm: debug: ${message}`);
}
