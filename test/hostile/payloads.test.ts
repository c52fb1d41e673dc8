/**
 * Hostile suite: payloads shaped to break the host's handling of a cell's values — model names that
 * are properties of every object, a 100,000-deep FINAL, a heap bomb, a 100 MB FINAL. Each is an
 * error the cell or the model sees, never a crash, a protocol violation or a thrown `execute`.
 */
import { MAX_FINAL_CHARS } from '@rlm/shared';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { RLM, Sandbox, createDockerClient, type ExecuteResult, type Language } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { replResponse } from '../../orchestrator/src/testing/scripted-models.js';
import { TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS } from '../support/docker.js';
import { HostMonitor, expectHostHealthy, expectNoContainerSurvives } from '../support/hostile-host.js';

const docker = createDockerClient();
const sandboxOptions = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME };

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

const INHERITED_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];

describe.each(['javascript', 'python'] as const)('a %s cell naming models after properties every object has', (language) => {
  const CELL: Record<Language, string> = {
    javascript: `print(JSON.stringify(${JSON.stringify(INHERITED_NAMES)}.map((model) => llm_query('hi', { model }))))`,
    python: `print(json.dumps([llm_query("hi", model=m) for m in ${JSON.stringify(INHERITED_NAMES)}]))`,
  };

  it('gets "not configured" error strings in the cell and the run goes on', async () => {
    const cells: ExecuteResult[] = [];
    const model = new ScriptedBackend((request) => {
      const turns = request.messages.filter((m) => m.role === 'assistant').length;
      return turns === 0 ? replResponse(CELL[language]) : replResponse('FINAL("went on")');
    });
    const sub = new ScriptedBackend(() => 'the sub model');
    const rlm = new RLM({
      root: { backend: model, model: 'root-model' },
      sub: { backend: sub, model: 'sub-model' },
      language,
      sandbox: sandboxOptions,
      onEvent: (event) => {
        if (event.type === 'cell_end' && event.depth === 0) cells.push(event.result);
      },
    });
    const result = await rlm.completion({ context: 'ctx', query: 'q' });
    expect(result.answer).toBe('went on');
    expect(cells[0]?.error).toBeNull();
    const answers = JSON.parse(cells[0]?.stdout.text ?? 'null') as string[];
    expect(answers).toHaveLength(INHERITED_NAMES.length);
    for (const [index, name] of INHERITED_NAMES.entries()) {
      expect(answers[index]).toMatch(new RegExp(`^Error: model "${name}" is not configured`));
    }
    expect(sub.calls).toEqual([]);
  }, 300_000);
});

describe.each(['javascript', 'python'] as const)('a %s cell ending with a 100,000-deep list', (language) => {
  const CELL: Record<Language, string> = {
    javascript: 'let deep = []; for (let i = 0; i < 100000; i++) deep = [deep]; FINAL(deep)',
    python: 'deep = []\nfor _ in range(100000):\n    deep = [deep]\nFINAL(deep)',
  };

  it('gets an answer or an error result, never a protocol violation, and keeps its state', async () => {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
    const monitor = HostMonitor.start();
    const result = await sandbox.execute(CELL[language], { timeoutMs: 120_000 });
    expect(result.error?.type).not.toBe('SandboxProtocolError');
    expect(result.stateLost).toBe(false);
    expect(result.final !== null || result.error !== null).toBe(true);
    expect(result.final?.value.length ?? 0).toBeLessThanOrEqual(MAX_FINAL_CHARS);
    expect((await sandbox.execute('1 + 1', { timeoutMs: 30_000 })).value).toBe('2');
    expect(sandbox.restarts).toBe(0);
    expectHostHealthy(monitor, `${language} 100,000-deep FINAL`);
  }, 300_000);
});

describe.each(['javascript', 'python'] as const)('a %s cell ending with a 100 MB FINAL', (language) => {
  const CELL: Record<Language, string> = {
    javascript: `FINAL('x'.repeat(100 * 1024 * 1024))`,
    python: 'FINAL("x" * (100 * 1024 * 1024))',
  };

  it('gets an error result the model can see, not an answer and not a thrown execute; the state survives', async () => {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
    await sandbox.execute(language === 'javascript' ? 'const kept = 42' : 'kept = 42');
    const monitor = HostMonitor.start();
    const result = await sandbox.execute(CELL[language], { timeoutMs: 120_000 });
    expect(result.final).toBeNull();
    expect(result.error).not.toBeNull();
    expect(result.stateLost).toBe(false);
    expect((await sandbox.execute('kept + 1', { timeoutMs: 30_000 })).value).toBe('43');
    expectHostHealthy(monitor, `${language} 100 MB FINAL`);
  }, 300_000);
});

describe('a JavaScript heap bomb', () => {
  const BOMBS = {
    'small objects': 'const hog = []; for (;;) hog.push({ n: hog.length, s: "x" + hog.length })',
    'megabyte strings': 'const hog = []; for (let i = 0; ; i++) hog.push(String(i).padEnd(1024 * 1024, "x"))',
  };

  for (const [shape, code] of Object.entries(BOMBS)) {
    it(`of ${shape} in a sandbox of the default size is an OutOfMemoryError with the state lost, and the next cell runs`, async () => {
      await using sandbox = await Sandbox.create({ ...sandboxOptions, context: 'the context' });
      const monitor = HostMonitor.start();
      const result = await sandbox.execute(code, { timeoutMs: 120_000 });
      expect(result.status).toBe('error');
      expect(result.error?.type).toBe('OutOfMemoryError');
      expect(result.stateLost).toBe(true);
      expect((await sandbox.execute('typeof hog + " " + context', { timeoutMs: 60_000 })).value).toBe("'undefined the context'");
      expectHostHealthy(monitor, `JavaScript heap bomb of ${shape}`);
    }, 300_000);
  }
});
