/**
 * The RLM loop end to end in real sandbox containers: what the in-process tests of the engine
 * (orchestrator/src/engine/rlm.test.ts) cannot show — every run of a recursion tree in a container
 * of its own, Python in the image, and a cancelled run leaving no container behind.
 */
import { describe, expect, inject, it } from 'vitest';
import { AbortedError, RLM, createDockerClient, listSandboxes } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { depthTwoTreeModel, echoSub, isChildRequest as isChild, lastUserMessage, replResponse as repl } from '../orchestrator/src/testing/scripted-models.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();
const sandbox = { docker, image: inject('sandboxImage'), ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS };

/** This process's sandbox containers that are still running. */
async function runningSandboxesOfThisProcess() {
  return (await listSandboxes({ docker })).filter((s) => s.owner.includes(`:${process.pid}:`) && s.state === 'running');
}

describe('the RLM engine in sandbox containers', () => {
  it('runs a depth-2 tree with a container per run: sub-calls, child RLMs and FINAL all cross the container wall', async () => {
    // A container's hostname is its 12-character id: the root's cells ran in one.
    const model = depthTwoTreeModel('" / " + require("node:os").hostname().length');
    const rlm = new RLM({
      root: { backend: model, model: 'root-model' },
      sub: { backend: echoSub(), model: 'sub-model' },
      sandbox,
      limits: { maxDepth: 2 },
    });
    const result = await rlm.completion({ context: 'top', query: 'q' });
    expect(result.success).toBe(true);
    expect(result.answer).toMatch(/^root got: child saw child saw ECHO DEEPEST.* \/ 12$/);
    expect(result.usage['root-model']?.calls).toBe(6);
    expect(await runningSandboxesOfThisProcess()).toEqual([]);
  });

  it('cancels a run while its cell runs: the run rejects with AbortedError and its container is removed', async () => {
    const controller = new AbortController();
    const sub = new ScriptedBackend((request) => {
      // The cell asks this first, so the run is cancelled while the cell is running.
      if (lastUserMessage(request) === 'started') controller.abort();
      return 'ok';
    });
    const rlm = new RLM({
      root: { backend: new ScriptedBackend([repl('llm_query("started"); while (true) {}')]), model: 'm' },
      sub: { backend: sub, model: 's' },
      sandbox,
    });
    await expect(rlm.completion({ context: '', query: 'q', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(await runningSandboxesOfThisProcess()).toEqual([]);
  });

  it('caps the tree at maxSandboxes containers: 3 children at depth 2 with maxSandboxes 2 finish, never more than 2 containers at once', async () => {
    // Each child asks for a grandchild; with the root and one child holding both sandboxes and
    // both waiting, the grandchild is answered as a plain llm_query instead (the deadlock rule).
    const model = new ScriptedBackend((request) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChild(request)) return turn === 0 ? repl('const inner = rlm_query("deeper: " + context); print(inner)') : repl('FINAL("saw " + inner)');
      return turn === 0 ? repl('const rs = rlm_query_batched(["t1", "t2", "t3"]); print(rs.join(" | "))') : repl('FINAL(rs.join(" | "))');
    });
    const samples: Array<Promise<number>> = [];
    const rlm = new RLM({
      root: { backend: model, model: 'm' },
      sub: { backend: echoSub(), model: 's' },
      sandbox,
      limits: { maxDepth: 2, maxSandboxes: 2 },
      // Every container of this process, whatever its state, when a cell starts (all its runs' sandboxes exist then).
      onEvent: (event) => {
        if (event.type === 'cell_start') samples.push(listSandboxes({ docker }).then((all) => all.filter((s) => s.owner.includes(`:${process.pid}:`)).length));
      },
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('saw ECHO DEEPER: T1 | saw ECHO DEEPER: T2 | saw ECHO DEEPER: T3');
    const counts = await Promise.all(samples);
    expect(counts.length).toBeGreaterThanOrEqual(7);
    expect(Math.max(...counts)).toBeLessThanOrEqual(2);
    expect(await runningSandboxesOfThisProcess()).toEqual([]);
  });

  it('runs a Python tree in the image: a Python error reaches the model, a Python child answers', async () => {
    const model = new ScriptedBackend((request) => {
      const turns = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChild(request)) return repl('FINAL(type(context).__name__ + ": " + context.upper())');
      if (turns === 0) return repl('{}["missing"]');
      if (turns === 1) return repl('child = rlm_query("child task")\nFINAL(child)');
      throw new Error(`unexpected turn ${turns}`);
    });
    const rlm = new RLM({ root: { backend: model, model: 'm' }, language: 'python', sandbox, limits: { maxDepth: 1 } });
    const result = await rlm.completion({ context: 'root context', query: 'q' });
    expect(result.answer).toBe('str: CHILD TASK');
    const second = model.calls.filter((call) => !isChild(call.request))[1];
    expect(lastUserMessage(second!.request)).toMatch(/\[error\] KeyError: 'missing'/);
  });
});
