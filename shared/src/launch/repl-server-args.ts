/**
 * The REPL server's command line: written by the host when it creates a container, read by the
 * server inside. One module for both ends, so they cannot disagree.
 */
import { parseArgs } from 'node:util';
import { CONTEXT_MOUNT_PATH } from '../limits.js';
import type { Language } from '../protocol/messages.js';

const LANGUAGES: readonly Language[] = ['javascript', 'python'];

export interface ReplServerArgs {
  /** Where the host listens, e.g. `ws+unix:///run/rlm/control.sock:/`. */
  url: string;
  /** The per-sandbox secret. */
  token: string;
  /** Directory of the context files; default the read-only mount. */
  contextDir?: string;
  /** V8 heap cap of the cell worker, in MiB (for Python, also the cap of the interpreter's memory). */
  heapLimitMb?: number;
  /** The language of the sandbox's cells; default `javascript`. A Python sandbox loads its interpreter at start. */
  language?: Language;
}

/**
 * The argv for `repl-server.js`. Every value travels as `--name=value`: a value starting with `-`
 * (a random token can) would otherwise read as another option.
 */
export function formatReplServerArgs(args: ReplServerArgs): string[] {
  return [
    `--url=${args.url}`,
    `--token=${args.token}`,
    ...(args.contextDir === undefined ? [] : [`--context-dir=${args.contextDir}`]),
    ...(args.heapLimitMb === undefined ? [] : [`--heap-limit-mb=${args.heapLimitMb}`]),
    ...(args.language === undefined ? [] : [`--language=${args.language}`]),
  ];
}

/**
 * Reads the server's argv (without node and the script).
 *
 * @throws {TypeError} a missing or malformed option; the message names it.
 */
export function parseReplServerArgs(
  argv: readonly string[],
): Required<Pick<ReplServerArgs, 'url' | 'token' | 'contextDir' | 'language'>> & Pick<ReplServerArgs, 'heapLimitMb'> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'context-dir': { type: 'string' },
      'heap-limit-mb': { type: 'string' },
      language: { type: 'string' },
    },
    strict: true,
  });
  if (!values.url) throw new TypeError('--url is required');
  if (!values.token) throw new TypeError('--token is required');
  let heapLimitMb: number | undefined;
  if (values['heap-limit-mb'] !== undefined) {
    heapLimitMb = Number(values['heap-limit-mb']);
    if (!Number.isInteger(heapLimitMb) || heapLimitMb <= 0) throw new TypeError(`--heap-limit-mb must be a positive integer, got ${values['heap-limit-mb']}`);
  }
  const language = (values.language ?? 'javascript') as Language;
  if (!LANGUAGES.includes(language)) throw new TypeError(`--language must be one of ${LANGUAGES.join(', ')}, got ${values.language}`);
  return {
    url: values.url,
    language,
    token: values.token,
    contextDir: values['context-dir'] ?? CONTEXT_MOUNT_PATH,
    ...(heapLimitMb === undefined ? {} : { heapLimitMb }),
  };
}
