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
  /**
   * File holding the per-sandbox secret (in the container `/run/rlm/token`, written by the host
   * with mode 0o444). The server reads it at start, so the token is on no command line.
   */
  tokenFile: string;
  /** Directory of the context files; default the read-only mount. */
  contextDir?: string;
  /** V8 heap cap of the cell worker, in MiB (for Python, also the cap of the interpreter's memory). */
  heapLimitMb?: number;
  /** The language of the sandbox's cells; default `javascript`. A Python sandbox loads its interpreter at start. */
  language?: Language;
  /**
   * The server exits (code 3, a line on stderr) this many milliseconds after it started, whatever
   * the host or the cells do; absent, it lives as long as its control channel.
   */
  maxLifetimeMs?: number;
}

/**
 * The argv for `repl-server.js`. Every value travels as `--name=value`: a value starting with `-`
 * (a random token can) would otherwise read as another option.
 */
export function formatReplServerArgs(args: ReplServerArgs): string[] {
  return [
    `--url=${args.url}`,
    `--token-file=${args.tokenFile}`,
    ...(args.contextDir === undefined ? [] : [`--context-dir=${args.contextDir}`]),
    ...(args.heapLimitMb === undefined ? [] : [`--heap-limit-mb=${args.heapLimitMb}`]),
    ...(args.language === undefined ? [] : [`--language=${args.language}`]),
    ...(args.maxLifetimeMs === undefined ? [] : [`--max-lifetime-ms=${args.maxLifetimeMs}`]),
  ];
}

/**
 * Reads the server's argv (without node and the script).
 *
 * @throws {TypeError} a missing or malformed option; the message names it.
 */
export function parseReplServerArgs(
  argv: readonly string[],
): Required<Pick<ReplServerArgs, 'url' | 'tokenFile' | 'contextDir' | 'language'>> & Pick<ReplServerArgs, 'heapLimitMb' | 'maxLifetimeMs'> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      url: { type: 'string' },
      'token-file': { type: 'string' },
      'context-dir': { type: 'string' },
      'heap-limit-mb': { type: 'string' },
      language: { type: 'string' },
      'max-lifetime-ms': { type: 'string' },
    },
    strict: true,
  });
  if (!values.url) throw new TypeError('--url is required');
  if (!values['token-file']) throw new TypeError('--token-file is required');
  const heapLimitMb = positiveInteger('heap-limit-mb', values['heap-limit-mb']);
  const maxLifetimeMs = positiveInteger('max-lifetime-ms', values['max-lifetime-ms']);
  const language = (values.language ?? 'javascript') as Language;
  if (!LANGUAGES.includes(language)) throw new TypeError(`--language must be one of ${LANGUAGES.join(', ')}, got ${values.language}`);
  return {
    url: values.url,
    language,
    tokenFile: values['token-file'],
    contextDir: values['context-dir'] ?? CONTEXT_MOUNT_PATH,
    ...(heapLimitMb === undefined ? {} : { heapLimitMb }),
    ...(maxLifetimeMs === undefined ? {} : { maxLifetimeMs }),
  };
}

/** @throws {TypeError} naming the option when `raw` is not a positive safe integer. */
function positiveInteger(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(value) || value <= 0) throw new TypeError(`--${name} must be a positive integer, got ${raw}`);
  return value;
}
