/**
 * Entry point of the container: `node repl-server.js --url=… --token=… [--context-dir=…] [--heap-limit-mb=…]`.
 * Exits when the control channel closes, so a container whose host went away does not linger.
 */
import { parseReplServerArgs } from '@rlm/shared';
import { runReplServer } from './repl-server.js';

let args: ReturnType<typeof parseReplServerArgs>;
try {
  args = parseReplServerArgs(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`repl-server: ${(error as Error).message}\nusage: repl-server --url=<ws url> --token=<token> [--context-dir=dir] [--heap-limit-mb=n]\n`);
  process.exit(2);
}

try {
  const closed = await runReplServer(args);
  process.stderr.write(`control channel closed (${closed.code ?? 'no code'} ${closed.reason}); exiting\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`repl-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
