#!/usr/bin/env node
/** Process wiring of the `rlm` command: signals, streams, exit code. */
import { AbortedError, errorCode } from '../errors.js';
import { ExitCode } from './cli-io.js';
import { runCli } from './run-cli.js';

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  // First Ctrl-C cancels the run, whose sandboxes are removed before the process exits; a second
  // one leaves at once.
  if (interrupts > 1) {
    process.stderr.write('\nrlm: interrupted again; exiting without waiting for cleanup (`rlm sandbox prune` removes what is left)\n');
    process.exit(ExitCode.interrupted);
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2Krlm: interrupting; removing the sandboxes (Ctrl-C again to exit at once)\n');
  controller.abort(new AbortedError('interrupted (Ctrl-C)'));
});
let terminated = false;
process.on('SIGTERM', () => {
  terminated = true;
  controller.abort(new AbortedError('terminated (SIGTERM)'));
});
// A closed pipe on stdout (`rlm … | head`) is not an error worth a stack trace.
process.stdout.on('error', (error: Error) => {
  if (errorCode(error) !== 'EPIPE') throw error;
});

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  signal: controller.signal,
  stdin: process.stdin,
  stdoutIsTTY: process.stdout.isTTY === true,
  stderrIsTTY: process.stderr.isTTY === true,
  stderrColumns: () => process.stderr.columns,
  cwd: process.cwd(),
});
// Cancelled by SIGTERM rather than Ctrl-C: 143 (128 + 15), as a shell reports a terminated process.
process.exitCode = terminated && code === ExitCode.interrupted ? ExitCode.terminated : code;
