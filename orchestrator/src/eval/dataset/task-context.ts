/**
 * A task's context in the three forms an evaluation needs: the value a run's REPL gets (files stay
 * on disk, exactly as `rlm --context-file` loads them), one text for the `direct` baseline, and its
 * size in characters for results and charts.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { type ContextFile, type ContextValue, contextFromFile, type JsonValue } from '../../sandbox/context-files.js';
import type { EvalTask } from '../eval-types.js';

/**
 * What `rlm.completion({ context })` takes for `task`, or undefined when it has none. An inline
 * context is given as it is. Files are opened with `contextFromFile`, as `--context-file` opens
 * them: one file is a file-backed text, several a map of each path as the row wrote it → its
 * file-backed text (read into the sandbox when the run loads it, never whole into this process).
 *
 * @throws {InvalidOptionError} (`context`) a context file disappeared or became unreadable since
 *   the dataset was read.
 */
export async function taskContextValue(task: EvalTask, signal?: AbortSignal): Promise<ContextValue | undefined> {
  const context = task.context;
  if (context === undefined) return undefined;
  if (context.kind === 'inline') return context.value as JsonValue;
  signal?.throwIfAborted();
  const files: ContextFile[] = [];
  for (const file of context.paths) {
    files.push(await contextFromFile(file));
    signal?.throwIfAborted();
  }
  if (files.length === 1) return files[0] as ContextFile;
  return Object.fromEntries(files.map((file, index) => [fileNames(context)[index] as string, file]));
}

/**
 * The context as one text, for a method that puts it in the prompt (`direct`); empty without one.
 * A text is itself; a list of texts is its items, a blank line between them; a map of texts (a
 * map of files, one file per key) is each entry as `--- key ---` then its content, a blank line
 * between entries; anything else (numbers, nested objects) is its JSON. A file is read whole.
 *
 * @throws {Error} a context file cannot be read (its system error, e.g. ENOENT).
 */
export async function taskContextText(task: EvalTask, signal?: AbortSignal): Promise<string> {
  const context = task.context;
  if (context === undefined) return '';
  if (context.kind === 'inline') return inlineText(context.value);
  const contents: string[] = [];
  for (const file of context.paths) contents.push(await readFile(file, { encoding: 'utf8', ...(signal ? { signal } : {}) }));
  if (contents.length === 1) return contents[0] as string;
  const names = fileNames(context);
  return sections(contents.map((content, index) => [names[index] as string, content]));
}

const charsOfTask = new WeakMap<EvalTask, Promise<number>>();

/**
 * The context's length in characters (UTF-16 code units, as `String#length` counts them); 0
 * without one. Inline: the length of {@link taskContextText}. Files: the sum of their contents'
 * lengths, counted exactly by streaming each file (not held in memory). Remembered per task object.
 *
 * @throws {Error} a context file cannot be read.
 */
export function taskContextChars(task: EvalTask, signal?: AbortSignal): Promise<number> {
  const known = charsOfTask.get(task);
  if (known) return known;
  const counting = countChars(task, signal);
  charsOfTask.set(task, counting);
  counting.catch(() => charsOfTask.delete(task));
  return counting;
}

async function countChars(task: EvalTask, signal: AbortSignal | undefined): Promise<number> {
  const context = task.context;
  if (context === undefined) return 0;
  if (context.kind === 'inline') return inlineText(context.value).length;
  let chars = 0;
  for (const file of context.paths) {
    for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20, ...(signal ? { signal } : {}) }))
      chars += (chunk as string).length;
  }
  return chars;
}

function fileNames(context: { paths: readonly string[]; names?: readonly string[] | undefined }): readonly string[] {
  return context.names !== undefined && context.names.length === context.paths.length ? context.names : context.paths;
}

function inlineText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join('\n\n');
  if (isPlainObject(value) && Object.values(value).every((item) => typeof item === 'string')) return sections(Object.entries(value as Record<string, string>));
  return JSON.stringify(value) ?? '';
}

function sections(entries: ReadonlyArray<readonly [string, string]>): string {
  return entries.map(([name, content]) => `--- ${name} ---\n${content}`).join('\n\n');
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}
