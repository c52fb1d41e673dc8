#!/usr/bin/env node
/** Process wiring of the `rlm` command: signals, streams, exit code. */
import { ExitCode } from './cli-io.js';
import { runCli } from './run-cli.js';

const controller = new AbortController();
let interrupts = 0;
process.on('SIGINT', () => {
  interrupts += 1;
  // First Ctrl-C cleans up (sandboxes are removed as their calls abort); a second one leaves at once.
  if (interrupts > 1) process.exit(ExitCode.interrupted);
  controller.abort(new Error('interrupted'));
});
process.on('SIGTERM', () => controller.abort(new Error('terminated')));

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  signal: controller.signal,
});
process.exitCode = code;
