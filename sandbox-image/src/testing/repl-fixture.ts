/**
 * A JavaScriptRepl for tests: bundled worker, a temporary context directory, recorded sub-calls,
 * and an `run(code)` that checks every result against the protocol schema.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecuteResult, type ExecuteParams, type SubcallParams } from '@rlm/shared';
import { JavaScriptRepl, type JavaScriptReplOptions } from '../repl/javascript-repl.js';
import { recordingSubcalls, type RecordingSubcalls } from './recording-subcalls.js';
import { bundledReplWorkerUrl } from './repl-worker-bundle.js';

export interface ReplFixture {
  readonly repl: JavaScriptRepl;
  readonly contextDir: string;
  readonly subcalls: RecordingSubcalls;
  /** Runs a cell (defaults: 5 s timeout, 20,000-character output limit) and parses the result with the protocol schema. */
  run(code: string, params?: Partial<Omit<ExecuteParams, 'code'>>): Promise<ExecuteResult>;
  /** Writes a file into the context directory. */
  writeContext(file: string, content: string | Buffer): void;
  dispose(): Promise<void>;
}

export async function startReplFixture(
  options: Partial<Pick<JavaScriptReplOptions, 'heapLimitMb' | 'onSubcall' | 'onToolCall'>> & {
    answer?: (prompt: string, params: SubcallParams) => string | Error | Promise<string | Error>;
  } = {},
): Promise<ReplFixture> {
  const contextDir = mkdtempSync(join(tmpdir(), 'rlm-repl-context-'));
  const subcalls = recordingSubcalls(options.answer);
  const repl = await JavaScriptRepl.start({
    contextDir,
    onSubcall: options.onSubcall ?? subcalls.onSubcall,
    workerUrl: await bundledReplWorkerUrl(),
    ...(options.heapLimitMb === undefined ? {} : { heapLimitMb: options.heapLimitMb }),
    ...(options.onToolCall === undefined ? {} : { onToolCall: options.onToolCall }),
  });
  return {
    repl,
    contextDir,
    subcalls,
    async run(code, params = {}) {
      const result = await repl.execute({ code, language: 'javascript', timeoutMs: 5000, outputLimitChars: 20_000, ...params });
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
