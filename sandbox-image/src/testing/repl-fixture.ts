/**
 * A REPL for tests, JavaScript or Python: bundled worker, a temporary context directory, recorded
 * sub-calls, and a `run(code)` that checks every result against the protocol schema.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecuteResult, type ExecuteParams, type Language, type SubcallParams } from '@rlm/shared';
import type { CellRepl, CellReplOptions } from '../repl/cell-repl.js';
import { JavaScriptRepl } from '../repl/javascript-repl.js';
import { PythonRepl } from '../repl/python/python-repl.js';
import { testPyodideDir, testPythonSnapshot } from './python-snapshot.js';
import { recordingSubcalls, type RecordingSubcalls } from './recording-subcalls.js';
import { bundledPythonWorkerUrl, bundledReplWorkerUrl } from './repl-worker-bundle.js';

export interface ReplFixture<R extends CellRepl = JavaScriptRepl> {
  readonly repl: R;
  readonly contextDir: string;
  readonly subcalls: RecordingSubcalls;
  /** Runs a cell (defaults: 5 s timeout, 20,000-character output limit) and parses the result with the protocol schema. */
  run(code: string, params?: Partial<Omit<ExecuteParams, 'code'>>): Promise<ExecuteResult>;
  /** Writes a file into the context directory. */
  writeContext(file: string, content: string | Buffer): void;
  dispose(): Promise<void>;
}

/**
 * The fixture's `unresponsiveGraceMs` unless a test asks for another: generous, so a worker that a
 * loaded machine keeps from acting on its interrupt for seconds still answers and keeps its state,
 * instead of being replaced after production's 700 ms. A test of the replacement itself (a cell that
 * ignores its interrupt) passes a short grace so it does not wait this long.
 */
export const TEST_UNRESPONSIVE_GRACE_MS = 10_000;

export type ReplFixtureOptions = Partial<Pick<CellReplOptions, 'heapLimitMb' | 'onSubcall' | 'onToolCall' | 'unresponsiveGraceMs'>> & {
  answer?: (prompt: string, params: SubcallParams) => string | Error | Promise<string | Error>;
};

export function startReplFixture(options?: ReplFixtureOptions): Promise<ReplFixture<JavaScriptRepl>>;
export function startReplFixture(options: ReplFixtureOptions & { language: 'python' }): Promise<ReplFixture<PythonRepl>>;
export function startReplFixture(options: ReplFixtureOptions & { language: Language }): Promise<ReplFixture<CellRepl>>;
export async function startReplFixture(options: ReplFixtureOptions & { language?: Language } = {}): Promise<ReplFixture<CellRepl>> {
  const language = options.language ?? 'javascript';
  const contextDir = mkdtempSync(join(tmpdir(), 'rlm-repl-context-'));
  const subcalls = recordingSubcalls(options.answer);
  const common: CellReplOptions = {
    contextDir,
    onSubcall: options.onSubcall ?? subcalls.onSubcall,
    unresponsiveGraceMs: options.unresponsiveGraceMs ?? TEST_UNRESPONSIVE_GRACE_MS,
    ...(options.heapLimitMb === undefined ? {} : { heapLimitMb: options.heapLimitMb }),
    ...(options.onToolCall === undefined ? {} : { onToolCall: options.onToolCall }),
  };
  const repl: CellRepl =
    language === 'python'
      ? await PythonRepl.start({
          ...common,
          workerUrl: await bundledPythonWorkerUrl(),
          pyodideDir: testPyodideDir,
          snapshotFile: await testPythonSnapshot(),
        })
      : await JavaScriptRepl.start({ ...common, workerUrl: await bundledReplWorkerUrl() });
  return {
    repl,
    contextDir,
    subcalls,
    async run(code, params = {}) {
      const result = await repl.execute({ code, language, timeoutMs: 5000, outputLimitChars: 20_000, ...params });
      return ExecuteResult.parse(result);
    },
    writeContext(file, content) {
      writeFileSync(join(contextDir, file), content);
    },
    async dispose() {
      await repl.close();
      rmSync(contextDir, { recursive: true, force: true });
    },
  };
}
