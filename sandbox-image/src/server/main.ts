/**
 * Entry point of the container: `node repl-server.js --url … --token … [--context-dir …] [--heap-limit-mb …]`.
 * Exits when the control channel closes, so a container whose host went away does not linger.
 */
import { parseArgs } from 'node:util';
import { CONTEXT_MOUNT_PATH } from '@rlm/shared';
import { runReplServer } from './repl-server.js';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    token: { type: 'string' },
    'context-dir': { type: 'string', default: CONTEXT_MOUNT_PATH },
    'heap-limit-mb': { type: 'string' },
  },
  strict: true,
});

if (!values.url || !values.token) {
  process.stderr.write('usage: repl-server --url <ws url> --token <token> [--context-dir dir] [--heap-limit-mb n]\n');
  process.exit(2);
}

const heapLimitMb = values['heap-limit-mb'] === undefined ? undefined : Number(values['heap-limit-mb']);
try {
  const closed = await runReplServer({
    url: values.url,
    token: values.token,
    contextDir: values['context-dir'],
    ...(heapLimitMb !== undefined && Number.isFinite(heapLimitMb) ? { heapLimitMb } : {}),
  });
  process.stderr.write(`control channel closed (${closed.code ?? 'no code'} ${closed.reason}); exiting\n`);
  process.exit(0);
} catch (error) {
  process.stderr.write(`repl-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
