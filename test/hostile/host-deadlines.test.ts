/**
 * Hostile suite: cells that stop answering. Whatever a cell does to the processes in its container
 * (freezes the REPL server through the inspector, stops itself with SIGSTOP, spins where no
 * interrupt reaches), `Sandbox.execute` settles — the host keeps its own deadline — the result says
 * the state is lost, and the next cell runs. A run without a wall-clock limit still ends.
 *
 * No test here asserts how long anything took: a cell that is never answered fails by the test's
 * own timeout, far beyond the host's deadline.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { RLM, Sandbox, createDockerClient, type Language } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { lastUserMessage, replResponse } from '../../orchestrator/src/testing/scripted-models.js';
import { TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS } from '../support/docker.js';
import { FREEZE_EXPRESSION } from '../support/hostile-cells.js';
import { HostMonitor, expectHostHealthy, expectNoContainerSurvives } from '../support/hostile-host.js';

const docker = createDockerClient();
const sandboxOptions = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME };

/** The cells' own timeout: short, so the host's deadline (this plus its grace) comes soon. */
const CELL_TIMEOUT_MS = 3_000;
/** Room for the host's deadline, a replacement container on a loaded machine, and the next cell. */
const TEST_TIMEOUT_MS = 240_000;

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

/** Freezes the main thread of the cell's process through the inspector: the REPL server, while cells ran in its worker. */
const FREEZE_MAIN_THREAD: Record<Language, string> = {
  javascript: `
    const session = new (require('node:inspector').Session)();
    session.connectToMainThread();
    await new Promise((resolve) => session.post('Runtime.evaluate', { expression: ${JSON.stringify(FREEZE_EXPRESSION)} }, resolve));
    for (;;) {}
  `,
  python: [
    'import js',
    'from pyodide.ffi import to_js',
    "session = js.process.getBuiltinModule('node:inspector').Session.new()",
    'session.connectToMainThread()',
    `session.post('Runtime.evaluate', to_js({'expression': ${JSON.stringify(FREEZE_EXPRESSION)}}, dict_converter=js.Object.fromEntries))`,
    'while True:',
    '    pass',
  ].join('\n'),
};

/** Stops the cell's own process, which then neither runs nor answers. */
const STOP_ITSELF: Record<Language, string> = {
  javascript: `process.kill(process.pid, 'SIGSTOP'); for (;;) {}`,
  python: ['import js', "js.process.kill(js.process.pid, 'SIGSTOP')", 'while True:', '    pass'].join('\n'),
};

/** Spins where the REPL's interrupt does not reach: after an await (JavaScript), swallowing KeyboardInterrupt (Python). */
const SPIN_PAST_INTERRUPT: Record<Language, string> = {
  javascript: `await null; for (;;) {}`,
  python: ['while True:', '    try:', '        while True:', '            pass', '    except BaseException:', '        pass'].join('\n'),
};

/** Every freezing move at once, each allowed to fail: what the host-death and run tests use. */
const FREEZE_EVERYTHING: Record<Language, string> = {
  javascript: `
    try {
      const session = new (require('node:inspector').Session)();
      session.connectToMainThread();
      await new Promise((resolve) => session.post('Runtime.evaluate', { expression: ${JSON.stringify(FREEZE_EXPRESSION)} }, resolve));
    } catch {}
    try { process.kill(process.pid, 'SIGSTOP'); } catch {}
    await null;
    for (;;) {}
  `,
  python: [
    'import js',
    'from pyodide.ffi import to_js',
    'try:',
    "    session = js.process.getBuiltinModule('node:inspector').Session.new()",
    '    session.connectToMainThread()',
    `    session.post('Runtime.evaluate', to_js({'expression': ${JSON.stringify(FREEZE_EXPRESSION)}}, dict_converter=js.Object.fromEntries))`,
    'except BaseException:',
    '    pass',
    'try:',
    "    js.process.kill(js.process.pid, 'SIGSTOP')",
    'except BaseException:',
    '    pass',
    'while True:',
    '    try:',
    '        while True:',
    '            pass',
    '    except BaseException:',
    '        pass',
  ].join('\n'),
};

const NEXT_CELL: Record<Language, { code: string; value: string }> = {
  javascript: { code: '"still " + "here"', value: "'still here'" },
  python: { code: '"still " + "here"', value: "'still here'" },
};

describe.each(['javascript', 'python'] as const)('a %s cell that stops answering', (language) => {
  async function expectSettlesAndRecovers(code: string, attack: string, options: { stateLost: boolean | 'either' }) {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
    const monitor = HostMonitor.start();
    const result = await sandbox.execute(code, { timeoutMs: CELL_TIMEOUT_MS });
    expect(['timeout', 'error'], `${attack}: ${JSON.stringify(result.error)}`).toContain(result.status);
    if (options.stateLost !== 'either') expect(result.stateLost).toBe(options.stateLost);
    const next = await sandbox.execute(NEXT_CELL[language].code, { timeoutMs: 60_000 });
    expect(next.value, `${attack}: the next cell gave ${JSON.stringify(next)}`).toBe(NEXT_CELL[language].value);
    expectHostHealthy(monitor, `${language} ${attack}`);
  }

  it(
    'freezing the main thread through the inspector: execute settles (the attack fails, or the host gives up on the container) and the next cell runs',
    async () => {
      // Where the inspector is out of the cell's reach the cell fails at once with its state kept;
      // where it is not, only the host's own deadline ends the call.
      await expectSettlesAndRecovers(FREEZE_MAIN_THREAD[language], 'inspector freeze of the main thread', { stateLost: 'either' });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'stopping its own process with SIGSTOP: execute settles as a timeout or error with the state lost, and the next cell runs',
    async () => {
      await expectSettlesAndRecovers(STOP_ITSELF[language], 'SIGSTOP of its own process', { stateLost: true });
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'spinning where the interrupt does not reach: execute settles as a timeout or error with the state lost, and the next cell runs',
    async () => {
      await expectSettlesAndRecovers(SPIN_PAST_INTERRUPT[language], 'spin past the interrupt', { stateLost: true });
    },
    TEST_TIMEOUT_MS,
  );
});

describe.each(['javascript', 'python'] as const)('a %s run whose cell freezes everything it can', (language) => {
  it(
    'ends without a wall-clock limit: the model hears the cell failed with its state lost, and answers',
    async () => {
      const model = new ScriptedBackend((request) => {
        const turns = request.messages.filter((m) => m.role === 'assistant').length;
        return turns === 0 ? replResponse(FREEZE_EVERYTHING[language]) : replResponse('FINAL("survived")');
      });
      const monitor = HostMonitor.start();
      const rlm = new RLM({
        root: { backend: model, model: 'root-model' },
        language,
        sandbox: sandboxOptions,
        // No timeoutMs: nothing but the host's deadline on the cell can end the frozen turn.
        limits: { cellTimeoutMs: CELL_TIMEOUT_MS, maxIterations: 4 },
      });
      const result = await rlm.completion({ context: 'ctx', query: 'q' });
      expect(result.answer).toBe('survived');
      expect(result.success).toBe(true);
      const second = model.requests[1];
      expect(second && lastUserMessage(second)).toMatch(/TimeoutError|lost|error/i);
      expectHostHealthy(monitor, `${language} run with a frozen cell`);
    },
    TEST_TIMEOUT_MS,
  );
});
