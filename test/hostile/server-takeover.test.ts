/**
 * Hostile suite: a cell reaching for the REPL server. The server is the host's only peer in the
 * container; a cell that gets into its memory (the inspector), wakes its debugger (SIGUSR1) or
 * writes to its host-call port past its caps speaks to the host with the server's authority.
 * Each test's cell is the attack; the assertions are the host's.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Sandbox, createDockerClient, type Language, type SubcallParams } from 'rlm';
import { DEFAULT_SANDBOX_CALL_CAPS } from '../../orchestrator/src/sandbox/call-caps.js';
import { TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS } from '../support/docker.js';
import { HostMonitor, expectHostHealthy, expectNoContainerSurvives } from '../support/hostile-host.js';

const docker = createDockerClient();
const sandboxOptions = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME };

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

/** What a cell prints when the attack got through; the host must never see it. */
const GOT_THROUGH = 'ATTACK SUCCEEDED';

/** The attacks on the server's inspector, per language. Each prints {@link GOT_THROUGH} only if it succeeds. */
const INSPECTOR_ATTACKS: Record<Language, { connectToMainThread: string; connect: string; next: string; nextValue: string }> = {
  javascript: {
    // Evaluates code in the main thread of the process (the REPL server, while cells ran in its worker).
    connectToMainThread: `
      const session = new (require('node:inspector').Session)();
      session.connectToMainThread();
      const value = await new Promise((resolve, reject) =>
        session.post('Runtime.evaluate', { expression: 'process.pid + " " + process.argv.length' }, (error, answer) => (error ? reject(error) : resolve(answer.result.value))),
      );
      print('${GOT_THROUGH}: evaluated in the main thread: ' + value);
    `,
    connect: `
      const session = new (require('node:inspector').Session)();
      session.connect();
      const value = await new Promise((resolve, reject) =>
        session.post('Runtime.evaluate', { expression: '6 * 7' }, (error, answer) => (error ? reject(error) : resolve(answer.result.value))),
      );
      print('${GOT_THROUGH}: inspector session evaluated ' + value);
    `,
    next: '1 + 1',
    nextValue: '2',
  },
  python: {
    connectToMainThread: [
      'import js',
      "session = js.process.getBuiltinModule('node:inspector').Session.new()",
      'session.connectToMainThread()',
      `print('${GOT_THROUGH}: connected to the main thread')`,
    ].join('\n'),
    connect: [
      'import js',
      "session = js.process.getBuiltinModule('node:inspector').Session.new()",
      'session.connect()',
      `print('${GOT_THROUGH}: inspector session connected')`,
    ].join('\n'),
    next: '1 + 1',
    nextValue: '2',
  },
};

describe.each(['javascript', 'python'] as const)('a %s cell reaching for the inspector', (language) => {
  const attacks = INSPECTOR_ATTACKS[language];

  for (const variant of ['connectToMainThread', 'connect'] as const) {
    it(`fails inside the cell with Session.${variant}(), and the host and the next cell are unaffected`, async () => {
      await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
      const monitor = HostMonitor.start();
      const result = await sandbox.execute(attacks[variant], { timeoutMs: 30_000 });
      expect(result.stdout.text).not.toContain(GOT_THROUGH);
      expect(result.status, `the inspector attack did not fail inside the cell: ${JSON.stringify(result)}`).toBe('error');
      expect((await sandbox.execute(attacks.next, { timeoutMs: 30_000 })).value).toBe(attacks.nextValue);
      expect(sandbox.restarts).toBe(0);
      expectHostHealthy(monitor, `${language} inspector Session.${variant}()`);
    });
  }
});

describe('a JavaScript cell waking the debugger with SIGUSR1', () => {
  it('finds no inspector listening on 127.0.0.1:9229 after signalling the server, itself and process 1', async () => {
    await using sandbox = await Sandbox.create(sandboxOptions);
    const monitor = HostMonitor.start();
    // Every way a process asks Node to open its inspector; then the cell dials the port for a while
    // (the inspector opens asynchronously after the signal), so a slow start is still caught.
    const result = await sandbox.execute(
      `
      const tried = [];
      for (const [name, poke] of [
        ['kill(1, SIGUSR1)', () => process.kill(1, 'SIGUSR1')],
        ['_debugProcess(1)', () => process._debugProcess(1)],
        ['_debugProcess(self)', () => process._debugProcess(process.pid)],
        ['kill(self, SIGUSR1)', () => process.kill(process.pid, 'SIGUSR1')],
      ]) {
        try { poke(); tried.push(name + ': sent'); } catch (error) { tried.push(name + ': ' + (error.code || error.message)); }
      }
      const net = require('node:net');
      const dial = () => new Promise((resolve) => {
        const socket = net.connect(9229, '127.0.0.1');
        socket.once('connect', () => { socket.destroy(); resolve(true); });
        socket.once('error', () => resolve(false));
      });
      let reached = false;
      for (let attempt = 0; attempt < 30 && !reached; attempt++) {
        reached = await dial();
        if (!reached) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      print(tried.join('; '));
      print(reached ? '${GOT_THROUGH}: an inspector listens on 9229' : 'no inspector on 9229');
      `,
      { timeoutMs: 60_000 },
    );
    expect(result.stdout.text).not.toContain(GOT_THROUGH);
    expect(result.stdout.text).toContain('no inspector on 9229');
    expect((await sandbox.execute('1 + 1', { timeoutMs: 30_000 })).value).toBe('2');
    expectHostHealthy(monitor, 'SIGUSR1 to the server and to the cell');
  });
});

/**
 * Forged sub-calls straight onto the cell worker's host-call port: what a cell cannot do through
 * `llm_query`, whose calls block the cell until answered (many calls in flight at once), reaches the
 * host. The host bounds sub-calls in flight per sandbox whatever arrives. The prompts are small, so
 * the calls arrive faster than the handler below answers them.
 */
const FORGED_CALLS = 200;
const FORGED_PROMPT_BYTES = 64 * 1024;
/** Most sub-calls of one sandbox the host lets into its handler at once; without a cap, nearly all {@link FORGED_CALLS} get in. */
const SUBCALLS_IN_FLIGHT_BOUND = DEFAULT_SANDBOX_CALL_CAPS.maxSubcallsInFlight;

const FORGE_SUBCALLS: Record<Language, string> = {
  javascript: `
    const { workerData } = require('node:worker_threads');
    const prompt = 'x'.repeat(${FORGED_PROMPT_BYTES});
    for (let i = 0; i < ${FORGED_CALLS}; i++) {
      workerData.hostCallPort.postMessage({ id: 1_000_000 + i, kind: 'subcall', params: { kind: 'llm_query', prompts: [prompt], batched: false } });
    }
    print(llm_query('last'));
  `,
  python: [
    'import js',
    'from pyodide.ffi import to_js',
    "port = js.process.getBuiltinModule('node:worker_threads').workerData.hostCallPort",
    `prompt = 'x' * ${FORGED_PROMPT_BYTES}`,
    `for i in range(${FORGED_CALLS}):`,
    "    port.postMessage(to_js({'id': 1_000_000 + i, 'kind': 'subcall', 'params': {'kind': 'llm_query', 'prompts': [prompt], 'batched': False}}, dict_converter=js.Object.fromEntries))",
    "print(llm_query('last'))",
  ].join('\n'),
};

describe.each(['javascript', 'python'] as const)('a %s cell forging sub-calls on its host-call port', (language) => {
  it('never has more than the host allows in flight at once, and the host stays within its bounds', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    let forgedSeen = 0;
    const onSubcall = async (request: SubcallParams, { signal }: { signal: AbortSignal }) => {
      if (request.prompts[0] === 'last') return { outcomes: [{ ok: true as const, text: 'last answered' }] };
      forgedSeen += 1;
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        // A slow model: calls let through overlap, so the handler sees as many at once as the host allows.
        await delay(1_000, undefined, { signal }).catch(() => undefined);
        return { outcomes: request.prompts.map(() => ({ ok: true as const, text: 'forged answer' })) };
      } finally {
        inFlight -= 1;
      }
    };
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language, onSubcall });
    const monitor = HostMonitor.start();
    await sandbox.execute(FORGE_SUBCALLS[language], { timeoutMs: 120_000 });
    process.stderr.write(`[hostile] ${language} forged sub-calls: ${forgedSeen} of ${FORGED_CALLS} reached the handler, at most ${maxInFlight} at once\n`);
    expect(maxInFlight).toBeLessThanOrEqual(SUBCALLS_IN_FLIGHT_BOUND);
    expect((await sandbox.execute('1 + 1', { timeoutMs: 60_000 })).value).toBe('2');
    expectHostHealthy(monitor, `${language} forged sub-calls`);
  });
});
