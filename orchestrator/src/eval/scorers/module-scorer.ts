import { stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { InvalidOptionError, errorMessage } from '../../errors.js';
import type { EvalTask, Score, Scorer } from '../eval-types.js';
import { ScorerError } from './scorer-error.js';

/** What a scorer module's `score` is given: the answer (null when the run produced none), the accepted answers, the task and a signal. */
export interface ScorerModuleInput {
  answer: string | null;
  expected: readonly string[];
  task: EvalTask;
  signal: AbortSignal;
}

/** What a scorer module's `score` returns, or resolves to. */
export type ScorerModuleResult = number | { score: number; note?: string };

const ResultSchema = z.union([z.number(), z.object({ score: z.number(), note: z.string().optional() })]);

/**
 * A scorer from a module: `path` (absolute, or relative to `cwd`) is imported (by its file URL) and
 * must export `score({ answer, expected, task, signal })` returning a number in [0, 1] or
 * `{ score, note? }`, or a promise of one. The scorer's name is the path as given.
 *
 * @throws {InvalidOptionError} (`--scorer`) the file does not exist or fails to import, or exports no
 *   `score` function.
 */
export async function loadScorerModule(path: string, cwd: string): Promise<Scorer> {
  const file = isAbsolute(path) ? path : resolve(cwd, path);
  const info = await stat(file).catch(() => undefined);
  if (!info?.isFile()) throw new InvalidOptionError('--scorer', `${JSON.stringify(path)} is not a scorer name and no file ${file} exists`);
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (error) {
    throw new InvalidOptionError('--scorer', `the scorer module ${file} failed to load: ${errorMessage(error)}`, { cause: error });
  }
  const score = module.score;
  if (typeof score !== 'function') {
    throw new InvalidOptionError(
      '--scorer',
      `the scorer module ${file} exports no \`score\` function; export \`score({ answer, expected, task })\` returning a number in [0, 1] or { score, note }`,
    );
  }
  return {
    name: path,
    async score(input): Promise<Score> {
      const result: unknown = await score({ answer: input.answer, expected: input.expected, task: input.task, signal: input.signal });
      const parsed = ResultSchema.safeParse(result);
      const value = parsed.success ? (typeof parsed.data === 'number' ? { score: parsed.data } : parsed.data) : undefined;
      if (value === undefined || !Number.isFinite(value.score) || value.score < 0 || value.score > 1) {
        throw new ScorerError(
          path,
          `score() returned ${show(result)} for task ${input.task.id}; it must return a number in [0, 1] or { score, note } with score in [0, 1]`,
        );
      }
      return value.note === undefined ? { score: value.score } : { score: value.score, note: value.note };
    },
  };
}

function show(value: unknown): string {
  try {
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 200 ? `${text.slice(0, 200)}…` : text;
  } catch {
    return String(value);
  }
}
