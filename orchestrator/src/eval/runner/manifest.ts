/**
 * `eval.json`: what an evaluation's results depend on (the dataset's hash, the selected tasks, every
 * option that changes results). Written once, atomically; a resume compares the recorded manifest
 * with the one it would write and refuses when they differ, naming each difference.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { RlmError, errorMessage } from '../../errors.js';
import { type EvalManifest, EvalManifestSchema } from '../eval-types.js';

/** The file's name inside an evaluation's directory. */
export const MANIFEST_FILE = 'eval.json';

/**
 * Reads `dir/eval.json`; undefined when there is none.
 *
 * @throws {RlmError} (`invalid_manifest`) the file is not JSON or not a manifest; the message names
 *   the file and what to do.
 * @throws the file exists but cannot be read (its system error).
 */
export async function readManifest(dir: string): Promise<EvalManifest | undefined> {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(file, `it is not JSON (${errorMessage(error)})`, error);
  }
  const parsed = EvalManifestSchema.safeParse(value);
  if (!parsed.success)
    throw invalid(file, `it is not an evaluation manifest (${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''})`);
  return parsed.data;
}

function invalid(file: string, why: string, cause?: unknown): RlmError {
  return new RlmError(`${file} cannot be read: ${why}; restore it, or start the evaluation in another --out directory`, {
    kind: 'invalid_manifest',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Writes `dir/eval.json` atomically: to a temporary file in the same directory, flushed, then renamed
 * over the old one, so a reader sees the old manifest or the new one, never a part. Creates `dir`.
 *
 * @throws {RlmError} (`invalid_manifest`) `manifest` does not match {@link EvalManifestSchema}.
 * @throws the directory or the file cannot be written (its system error); no temporary file is left.
 */
export async function writeManifest(dir: string, manifest: EvalManifest): Promise<void> {
  const parsed = EvalManifestSchema.safeParse(manifest);
  if (!parsed.success) throw new RlmError(`not a valid evaluation manifest: ${parsed.error.message}`, { kind: 'invalid_manifest' });
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, MANIFEST_FILE);
  const temporary = path.join(dir, `.${MANIFEST_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o644);
    try {
      await handle.writeFile(`${JSON.stringify(parsed.data, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  // The rename itself survives a power cut only once the directory is flushed; not every platform allows it.
  try {
    const directory = await open(dir, 'r');
    try {
      await directory.sync();
    } finally {
      await directory.close();
    }
  } catch {
    // Best effort (e.g. Windows cannot open a directory).
  }
}

/**
 * What differs between the manifest recorded in an evaluation's directory and the one a resume
 * would write, one line per difference, in words: `--epochs was 1, now 3`, `the dataset changed
 * (sha256 1f2e3d4c5b6a… was, now 9a8b7c6d5e4f…)`, `limits.maxIterations was 30, now 10`. Empty when
 * the results of one may be mixed with the other's. Not compared: `created_at`, `rlm_version`, and
 * the dataset's path when its bytes are the same (a moved dataset is the same dataset).
 */
export function manifestDifferences(recorded: EvalManifest, now: EvalManifest): string[] {
  const differences: string[] = [];
  if (recorded.dataset.sha256 !== now.dataset.sha256) {
    const moved = recorded.dataset.path === now.dataset.path ? '' : ` and its path: ${recorded.dataset.path} was, now ${now.dataset.path}`;
    differences.push(`the dataset changed (sha256 ${short(recorded.dataset.sha256)} was, now ${short(now.dataset.sha256)})${moved}`);
  } else if (recorded.dataset.tasks !== now.dataset.tasks) {
    differences.push(`the dataset had ${recorded.dataset.tasks} tasks, now ${now.dataset.tasks}`);
  }
  const keys = [...new Set([...Object.keys(recorded.options), ...Object.keys(now.options)])].sort();
  for (const key of keys) compareValues(`--${key}`, key, recorded.options[key], now.options[key], differences);
  if (!sameJson(recorded.task_ids, now.task_ids)) differences.push(describeTaskChange(recorded.task_ids, now.task_ids));
  return differences;
}

/** Compares one option; an object is compared field by field, named `key.field` (`limits.maxIterations`). */
function compareValues(label: string, name: string, was: unknown, now: unknown, out: string[]): void {
  // An option recorded as null and one absent both mean "not set".
  if ((was ?? null) === null && (now ?? null) === null) return;
  if (sameJson(was, now)) return;
  if (isPlainObject(was) && isPlainObject(now)) {
    const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].sort();
    for (const key of keys) compareValues(`${name}.${key}`, `${name}.${key}`, was[key], now[key], out);
    return;
  }
  out.push(`${label} was ${formatValue(was)}, now ${formatValue(now)}`);
}

function describeTaskChange(was: readonly string[], now: readonly string[]): string {
  const before = new Set(was);
  const after = new Set(now);
  const added = now.filter((id) => !before.has(id)).length;
  const removed = was.filter((id) => !after.has(id)).length;
  if (added === 0 && removed === 0) return `the selected tasks are the same ${now.length} in another order`;
  const parts = [added > 0 ? `${added} added` : '', removed > 0 ? `${removed} removed` : ''].filter(Boolean).join(', ');
  return `the selected tasks differ (${was.length} were selected, now ${now.length}: ${parts})`;
}

function formatValue(value: unknown): string {
  if (value === undefined || value === null) return 'not set';
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string' || typeof item === 'number')) return value.length === 0 ? '[]' : value.join(',');
  return JSON.stringify(value);
}

function short(sha256: string): string {
  return sha256.length > 12 ? `${sha256.slice(0, 12)}…` : sha256;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Equal as JSON, whatever the order of object keys. */
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) if (value[key] !== undefined) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}
