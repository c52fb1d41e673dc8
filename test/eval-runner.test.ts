/**
 * The evaluation runner on real sandbox containers from the pool it creates: what one task's run
 * leaves behind (a global, a file) is invisible to the next task's run, and the evaluation leaves no
 * container behind. orchestrator/src/eval/runner/run-evaluation.test.ts covers the rest in process.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createDockerClient, listSandboxes } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import type { EvalTask, Scorer } from '../orchestrator/src/eval/eval-types.js';
import { readResults } from '../orchestrator/src/eval/runner/results-file.js';
import { runEvaluation } from '../orchestrator/src/eval/runner/run-evaluation.js';
import { lastUserMessage, replResponse as repl } from '../orchestrator/src/testing/scripted-models.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();
const sandbox = { docker, image: inject('sandboxImage'), ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS };

const exact: Scorer = { name: 'exact', score: ({ answer, expected }) => ({ score: answer !== null && expected.includes(answer) ? 1 : 0 }) };

const task = (id: string, query: string, expected: string): EvalTask => ({
  id,
  query,
  context: { kind: 'inline', value: 'ctx' },
  expected: [expected],
  metadata: {},
  row: 1,
});

describe('the evaluation runner in sandbox containers', () => {
  it('runs each task in a fresh sandbox: a global or a file one task leaves is invisible to the next', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-eval-runner-'));
    try {
      const model = new ScriptedBackend((request) => {
        const first = request.messages[0]?.content ?? '';
        if (first.includes('leave traces'))
          return repl(
            'globalThis.leak = "A"; require("node:fs").writeFileSync("/tmp/leak.txt", "A"); FINAL(require("node:fs").readFileSync("/tmp/leak.txt", "utf8") + globalThis.leak)',
          );
        if (first.includes('look for traces'))
          return repl(
            'const fs = require("node:fs"); FINAL(String(globalThis.leak ?? "none") + "|" + (fs.existsSync("/tmp/leak.txt") ? fs.readFileSync("/tmp/leak.txt", "utf8") : "none"))',
          );
        throw new Error(`unexpected request: ${lastUserMessage(request).slice(0, 200)}`);
      });
      const outcome = await runEvaluation({
        tasks: [task('writer', 'leave traces', 'AA'), task('reader', 'look for traces', 'none|none')],
        methods: ['rlm'],
        epochs: 2,
        // One at a time, so the reader runs after the writer, on the same pool.
        concurrency: 1,
        maxSandboxes: 2,
        rlm: { root: { backend: model, model: 'm' }, sandbox },
        scorer: () => exact,
        outDir: dir,
        retryDelayMs: 0,
      });

      expect(outcome).toMatchObject({ planned: 4, written: 4, missing: 0, infraErrors: 0 });
      const { lines } = await readResults(dir);
      expect(lines.map((line) => [line.task_id, line.epoch, line.answer, line.score])).toEqual([
        ['writer', 1, 'AA', 1],
        ['reader', 1, 'none|none', 1],
        ['writer', 2, 'AA', 1],
        ['reader', 2, 'none|none', 1],
      ]);
      // The pool the evaluation made is closed, its containers removed.
      expect((await listSandboxes({ docker })).filter((s) => s.owner.includes(`:${process.pid}:`))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
