/**
 * Turns a context value into a file in the sandbox's context directory, which the container sees
 * read-only. Large contexts travel this way, never over the control socket.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContextFormat, LoadContextParams } from '@rlm/shared';
import { InvalidOptionError } from '../errors.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * What a REPL's `context` can be: one text, a list of texts, a map of relative path → content, or
 * any JSON value (a map of path → content *is* a JSON object, and loads as one).
 */
export type ContextValue = string | readonly string[] | Readonly<Record<string, string>> | JsonValue;

/** Writes `value` for `variable` and returns the `load_context` params that bind it. */
export async function writeContextFile(
  contextDir: string,
  variable: string,
  value: ContextValue,
  options: { signal?: AbortSignal } = {},
): Promise<LoadContextParams> {
  const format: ContextFormat = typeof value === 'string' ? 'text' : 'json';
  const file = `${variable}.${format === 'text' ? 'txt' : 'json'}`;
  let data: string;
  if (typeof value === 'string') {
    data = value;
  } else {
    try {
      data = JSON.stringify(value);
    } catch (error) {
      throw new InvalidOptionError('context', `must be a string, a list of strings, a map of path to content or a JSON value: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (data === undefined) {
      throw new InvalidOptionError('context', `a ${typeof value} cannot be loaded; pass a string, a list of strings, a map of path to content or a JSON value`);
    }
  }
  await writeFile(path.join(contextDir, file), data, { mode: 0o644, ...(options.signal ? { signal: options.signal } : {}) });
  return { variable, file, format };
}
