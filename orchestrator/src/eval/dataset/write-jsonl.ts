import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Writes `rows` to `file` as JSONL (one JSON object a line, UTF-8), pulling each row from the
 * iterable only when the file can take it, so a generated dataset never sits whole in memory.
 * The rows go to a temporary file beside `file`, renamed over it once all are written: `file` is
 * either the complete new dataset or what it was before (an error or an abort removes the
 * temporary file). Returns how many rows and bytes were written.
 *
 * @throws {Error} the directory cannot be written (the system error, e.g. ENOENT), or a row has
 *   no JSON form; the signal's reason when `signal` is aborted.
 */
export async function writeJsonl(file: string, rows: Iterable<unknown>, options: { signal?: AbortSignal } = {}): Promise<{ rows: number; bytes: number }> {
  const absolute = path.resolve(file);
  const temporary = path.join(path.dirname(absolute), `.${path.basename(absolute)}.${process.pid}.${Date.now()}.tmp`);
  let count = 0;
  let bytes = 0;
  function* lines(): Generator<string> {
    for (const row of rows) {
      const line = `${JSON.stringify(row)}\n`;
      count++;
      bytes += Buffer.byteLength(line);
      yield line;
    }
  }
  try {
    await pipeline(Readable.from(lines()), createWriteStream(temporary, { flags: 'wx' }), options.signal ? { signal: options.signal } : {});
    await rename(temporary, absolute);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => undefined);
    throw error;
  }
  return { rows: count, bytes };
}
