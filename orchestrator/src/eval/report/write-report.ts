/**
 * Writes an evaluation's `report.html` (see report-page.ts for what it shows and how it is kept
 * self-contained and safe with untrusted answers).
 */
import { rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type ReportInput, renderReport } from './report-page.js';

/** The report's file name inside an evaluation directory. */
export const REPORT_FILE = 'report.html';

/**
 * Writes `DIR/report.html` for `input`, replacing any earlier one atomically (a reader never sees
 * half a page), and returns its path.
 *
 * @throws {Error} the directory cannot be written (the file system's error).
 */
export async function writeReport(dir: string, input: ReportInput): Promise<string> {
  const file = path.join(dir, REPORT_FILE);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, renderReport(input), 'utf8');
  await rename(temporary, file);
  return file;
}
