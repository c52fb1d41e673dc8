/**
 * Finding and reading the config file: `--config PATH` (or `RLM_CONFIG`), else `rlm.config.yaml`,
 * `rlm.config.yml` or `rlm.config.json` in the working directory. Every problem is one line naming
 * the file and the key path: `rlm.config.yaml: root.modle: unknown key (did you mean "model"?)`.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { errorCode, errorMessage } from '../../errors.js';
import { closest } from '../../did-you-mean.js';
import { UsageError } from '../cli-io.js';
import { RlmConfig, keysAt } from './config-schema.js';

/** Looked for in the working directory, in this order; more than one present is an error. */
export const CONFIG_FILE_NAMES = ['rlm.config.yaml', 'rlm.config.yml', 'rlm.config.json'] as const;

export interface LoadedConfig {
  /** The file as the user would name it (relative to the working directory when inside it). */
  file: string;
  /** Absolute path. */
  path: string;
  config: RlmConfig;
}

/** A config file (or value in the environment) that cannot be used: exit 2, no `--help` hint. */
export class ConfigError extends UsageError {
  override name = 'ConfigError';
  constructor(message: string) {
    super(message, { hint: '' });
  }
}

/**
 * Reads the config file `explicit` names, or the one in `cwd`; undefined when there is none.
 *
 * @throws {ConfigError} the file cannot be read or parsed, or breaks the schema; the message names
 *   the file and the first offending key.
 */
export async function loadConfig(options: { cwd: string; explicit?: string | undefined }): Promise<LoadedConfig | undefined> {
  const { cwd, explicit } = options;
  let file: string;
  if (explicit !== undefined) {
    file = explicit;
  } else {
    const present = CONFIG_FILE_NAMES.filter((name) => existsSync(path.join(cwd, name)));
    if (present.length === 0) return undefined;
    if (present.length > 1) throw new ConfigError(`${present.join(' and ')} are both in ${cwd}; keep one, or choose with --config`);
    file = present[0] as string;
  }
  const absolute = path.resolve(cwd, file);
  const shown = displayName(absolute, cwd);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (error) {
    const code = errorCode(error) ?? errorMessage(error);
    throw new ConfigError(`${shown}: cannot read the config file (${code})${explicit === undefined ? '' : '; check the --config path'}`);
  }
  return { file: shown, path: absolute, config: parseConfigText(text, shown, absolute.endsWith('.json') ? 'json' : 'yaml') };
}

/**
 * Parses and validates a config file's text.
 *
 * @throws {ConfigError} naming `file`, and the line or key path at fault.
 */
export function parseConfigText(text: string, file: string, format: 'yaml' | 'json'): RlmConfig {
  let raw: unknown;
  if (format === 'json') {
    try {
      raw = JSON.parse(text);
    } catch (error) {
      throw new ConfigError(`${file}: not valid JSON: ${errorMessage(error)}`);
    }
  } else {
    const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    const first = document.errors[0];
    if (first) {
      const where = first.linePos?.[0] ? `line ${first.linePos[0].line}, column ${first.linePos[0].col}: ` : '';
      const what = (first.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
      throw new ConfigError(`${file}: ${where}${what}`);
    }
    raw = document.toJS();
  }
  // An empty file is an empty config.
  if (raw === null || raw === undefined) return {};
  return validateConfig(raw, file);
}

/** Checks `raw` against the schema; `source` names where it came from in the error. */
export function validateConfig(raw: unknown, source: string): RlmConfig {
  const parsed = RlmConfig.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new ConfigError(formatIssues(source, parsed.error.issues));
}

/** `source: key.path: message`, for the first issue, with a count of the others. */
export function formatIssues(source: string, issues: readonly z.core.$ZodIssue[]): string {
  const [first, ...rest] = issues;
  if (!first) return `${source}: invalid`;
  const more = rest.length > 0 ? ` (and ${rest.length} more problem${rest.length === 1 ? '' : 's'})` : '';
  return `${source}: ${describeIssue(first)}${more}`;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.map(keyOf).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const allowed = keysAt(issue.path) ?? [];
    const near = closest(key, allowed);
    const hint = near ? ` (did you mean ${JSON.stringify(near)}?)` : allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : '';
    return `${at ? `${at}.` : ''}${key}: unknown key${hint}`;
  }
  if (issue.code === 'invalid_type' && issue.path.length === 0) return 'the file must hold a mapping of settings (key: value)';
  if (issue.code === 'invalid_type' && (issue.expected === 'object' || issue.expected === 'record')) return `${at}: must be a mapping of settings`;
  // A record's key that breaks its schema (a model name): the key's own message, not zod's "Invalid key in record".
  if (issue.code === 'invalid_key') return `${at}: ${issue.issues[0]?.message ?? issue.message}`;
  return `${at || '(top level)'}: ${issue.message}`;
}

/** A key path segment; one a dot or space would make ambiguous (a model name like `gpt-4.1`) is quoted. */
function keyOf(segment: PropertyKey): string {
  const key = String(segment);
  return key === '' || /[\s."]/.test(key) ? JSON.stringify(key) : key;
}

function displayName(absolute: string, cwd: string): string {
  const relative = path.relative(cwd, absolute);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : absolute;
}
