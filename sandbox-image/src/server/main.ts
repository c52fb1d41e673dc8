/**
 * Entry point of the container (its PID 1, started with `node --disable-sigusr1`):
 * `node repl-server.js --url=… --token-file=… [--context-dir=…] [--heap-limit-mb=…] [--language=…] [--max-lifetime-ms=…]`.
 *
 * The token is read from a file, so it is on no command line (`/proc/1/cmdline`). The process
 * exits when the control channel closes (the host went away or stopped pinging), so a container
 * whose host is gone does not linger, and with code 3 once `--max-lifetime-ms` has passed, whatever
 * else happens. Cells run in a child process, which dies with this one: as PID 1 its exit ends the
 * container's PID namespace, and this process kills it on its way out besides.
 */
import { readFileSync } from 'node:fs';
import { parseReplServerArgs } from '@rlm/shared';
import { type SpawnedCellProcess, spawnCellProcess } from './cell-process-spawn.js';
import { errorMessage } from '../to-error.js';

const USAGE =
  'usage: repl-server --url=<ws url> --token-file=<path> [--context-dir=dir] [--heap-limit-mb=n] [--language=javascript|python] [--max-lifetime-ms=n]';
/** Exit code when the maximum lifetime passed. */
const LIFETIME_EXIT_CODE = 3;
/** setTimeout's largest delay (about 24.8 days); a longer lifetime is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

let args: ReturnType<typeof parseReplServerArgs>;
let token: string;
try {
  args = parseReplServerArgs(process.argv.slice(2));
  token = readToken(args.tokenFile);
} catch (error) {
  process.stderr.write(`repl-server: ${errorMessage(error)}\n${USAGE}\n`);
  process.exit(2);
}

if (args.maxLifetimeMs !== undefined) exitAfter(args.maxLifetimeMs);

// The cell process starts first, and the rest of the server (the protocol's schemas, the WebSocket
// client) loads while it boots: the two start-ups overlap on the cold-start path.
let spawned: SpawnedCellProcess | undefined = spawnCellProcess({
  language: args.language,
  contextDir: args.contextDir,
  heapLimitMb: args.heapLimitMb,
});

try {
  const { runReplServer } = await import('./repl-server.js');
  const { tokenFile: _tokenFile, maxLifetimeMs: _maxLifetimeMs, ...serverArgs } = args;
  const starting = runReplServer({ ...serverArgs, token, spawnedCellProcess: spawned });
  // The server owns it now (and kills it when it closes).
  spawned = undefined;
  const closed = await starting;
  process.stderr.write(`control channel closed (${closed.code ?? 'no code'} ${closed.reason}); exiting\n`);
  process.exit(0);
} catch (error) {
  spawned?.child.kill('SIGKILL');
  process.stderr.write(`repl-server: ${errorMessage(error)}\n`);
  process.exit(1);
}

/** The token, without the line end an editor or `echo` may add. @throws naming the file when it cannot be read. */
function readToken(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the token file ${file}: ${errorMessage(error)}`);
  }
  const value = text.trim();
  if (value.length < 16 || value.length > 256) throw new Error(`the token file ${file} must hold a token of 16 to 256 characters, found ${value.length}`);
  return value;
}

/** Exits with {@link LIFETIME_EXIT_CODE} once `ms` have passed (the cell process is killed on exit). */
function exitAfter(ms: number): void {
  const deadline = performance.now() + ms;
  const arm = () => {
    const left = deadline - performance.now();
    if (left > 0) {
      // Unref'd: a server whose channel closed exits now, not at its lifetime.
      setTimeout(arm, Math.min(left, MAX_TIMER_MS)).unref();
      return;
    }
    process.stderr.write(`repl-server: the sandbox reached its maximum lifetime of ${ms} ms; exiting\n`);
    process.exit(LIFETIME_EXIT_CODE);
  };
  arm();
}
