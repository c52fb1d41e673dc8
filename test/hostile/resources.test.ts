/**
 * Hostile suite: cells that go for the host's resources — its file descriptors (connections to the
 * control socket), its memory (prompts the host refuses but keeps, output floods) and its
 * containers (many child RLMs at once). Each cell is the attack; the assertions are the host's.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_OUTPUT_LIMIT_CHARS } from '@rlm/shared';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DEFAULT_LIMITS, RLM, Sandbox, createDockerClient, readTrajectory, type Language } from 'rlm';
import { ScriptedBackend } from 'rlm/testing';
import { isChildRequest, replResponse } from '../../orchestrator/src/testing/scripted-models.js';
import { TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS } from '../support/docker.js';
import {
  HOST_BOUNDS,
  HostMonitor,
  LiveContainerCounter,
  expectHostHealthy,
  expectNoContainerSurvives,
  openFdCount,
  settledFdCount,
} from '../support/hostile-host.js';

const docker = createDockerClient();
const sandboxOptions = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME };
const MIB = 1024 * 1024;

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

describe('a cell dialing the control socket over and over', () => {
  /** Connections per process: under the container's 1024 open files per process. */
  const PER_PROCESS = 900;
  /** Processes besides the cell's own that dial too, where the cell may start any. */
  const CHILD_PROCESSES = 4;

  it('leaves the host with a bounded number of open files, and the next Sandbox.create works', async () => {
    // One dialer, run in the cell itself and in each child: opens PER_PROCESS connections, keeps
    // them, and prints how they went once every one connected or failed.
    const dialer = `
      const net = require('node:net');
      const counts = {};
      const kept = [];
      let pending = ${PER_PROCESS};
      const done = (key) => {
        counts[key] = (counts[key] || 0) + 1;
        if (--pending === 0) (globalThis.reportDialed || ((c) => process.stdout.write(JSON.stringify(c) + '\\n')))(counts);
      };
      for (let i = 0; i < ${PER_PROCESS}; i++) {
        const socket = net.connect('/run/rlm/control.sock');
        kept.push(socket);
        socket.once('connect', () => done('connected'));
        socket.once('error', (error) => done(error.code || 'error'));
      }
      globalThis.keptSockets = (globalThis.keptSockets || []).concat(kept);
    `;
    let fdsWhileHeld = 0;
    let monitor: HostMonitor | undefined;
    await using sandbox = await Sandbox.create({
      ...sandboxOptions,
      onSubcall: async (request) => {
        // The cell asks this once every connection it could make is open: the moment to look.
        monitor?.sample();
        fdsWhileHeld = openFdCount();
        return { outcomes: request.prompts.map(() => ({ ok: true as const, text: 'measured' })) };
      },
    });
    monitor = HostMonitor.start();
    const result = await sandbox.execute(
      `
      const dialer = ${JSON.stringify(dialer)};
      const own = new Promise((resolve) => { globalThis.reportDialed = resolve; });
      new Function('require', dialer)(require);
      const children = [];
      for (let i = 0; i < ${CHILD_PROCESSES}; i++) {
        children.push(new Promise((resolve) => {
          try {
            const child = require('node:child_process').spawn(process.execPath, ['-e', dialer + ';setInterval(() => {}, 1e9)'], { stdio: ['ignore', 'pipe', 'ignore'] });
            child.on('error', (error) => resolve({ spawn: error.code || error.message }));
            child.stdout.once('data', (line) => resolve(JSON.parse(String(line))));
          } catch (error) {
            resolve({ spawn: error.code || error.message });
          }
        }));
      }
      const outcomes = [await own, ...(await Promise.all(children))];
      llm_query('every connection is open');
      print(JSON.stringify(outcomes));
      `,
      { timeoutMs: 120_000 },
    );
    process.stderr.write(`[hostile] control-socket dialing: ${result.stdout.text.trim() || JSON.stringify(result.error)}\n`);
    const report = expectHostHealthy(monitor, 'dialing the control socket');
    expect(fdsWhileHeld - report.fdBaseline).toBeLessThanOrEqual(HOST_BOUNDS.maxExtraFds);

    // Another sandbox of this process still starts and runs while the dialer's connections are held.
    await using other = await Sandbox.create(sandboxOptions);
    expect((await other.execute('1 + 1', { timeoutMs: 30_000 })).value).toBe('2');
    await other.close();
    await sandbox.close();
    expect(await settledFdCount(report.fdBaseline, 16)).toBeLessThanOrEqual(report.fdBaseline + 16);
  }, 300_000);
});

describe.each(['javascript', 'python'] as const)('a %s cell looping llm_query with 5 MiB prompts the host refuses', (language) => {
  const PROMPTS = 150;
  const CELL: Record<Language, string> = {
    javascript: `
      const big = 'x'.repeat(5 * 1024 * 1024);
      let refused = 0;
      for (let i = 0; i < ${PROMPTS}; i++) if (llm_query(big).startsWith('Error')) refused++;
      print('refused ' + refused);
    `,
    python: [
      'big = "x" * (5 * 1024 * 1024)',
      `refused = sum(1 for _ in range(${PROMPTS}) if llm_query(big).startswith("Error"))`,
      'print(f"refused {refused}")',
    ].join('\n'),
  };

  it('keeps the host within its memory bound, logs the turn, and the run ends with its answer', async () => {
    const logDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-hostile-log-'));
    try {
      const root = new ScriptedBackend((request) => {
        const turns = request.messages.filter((m) => m.role === 'assistant').length;
        return turns === 0 ? replResponse(CELL[language]) : replResponse('FINAL("done")');
      });
      const sub = new ScriptedBackend(() => 'never asked: every prompt is over the window');
      const monitor = HostMonitor.start();
      const rlm = new RLM({
        root: { backend: root, model: 'root-model' },
        // A small window, so the context-window guard refuses every one of the cell's prompts.
        sub: { backend: sub, model: 'sub-model', contextWindowTokens: 1_000 },
        language,
        sandbox: sandboxOptions,
        logDir,
        limits: { maxIterations: 4 },
      });
      const result = await rlm.completion({ context: 'ctx', query: 'q' });
      expectHostHealthy(monitor, `${language} ${PROMPTS} refused 5 MiB prompts`);
      expect(result.answer).toBe('done');
      expect(sub.calls).toEqual([]);
      expect(result.trajectoryFile).not.toBeNull();
      const file = result.trajectoryFile ?? '';
      // Each refused prompt is recorded by its length and a prefix, not whole: 750 MiB of prompts, a small log.
      const { size } = await stat(file);
      process.stderr.write(`[hostile] ${language} refused prompts: trajectory ${Math.round(size / 1024)} KiB\n`);
      expect(size).toBeLessThan(16 * MIB);
      const trajectory = await readTrajectory(file);
      expect(trajectory.iterations).toHaveLength(2);
    } finally {
      await rm(logDir, { recursive: true, force: true });
    }
  }, 600_000);
});

describe.each(['javascript', 'python'] as const)('a %s cell flooding its output', (language) => {
  const FLOOD: Record<Language, string> = {
    javascript: `print('x'.repeat(30 * 1024 * 1024)); console.error('y'.repeat(20 * 1024 * 1024))`,
    python: 'import sys\nprint("x" * (30 * 1024 * 1024))\nsys.stderr.write("y" * (20 * 1024 * 1024))',
  };

  it('gets 30 MB of stdout and 20 MB of stderr cut to the output limit; the host stays within its bounds', async () => {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
    const monitor = HostMonitor.start();
    const result = await sandbox.execute(FLOOD[language], { timeoutMs: 120_000 });
    expect(result.stdout.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS + 200);
    expect(result.stderr.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS + 200);
    expect(result.stdout.truncatedChars).toBeGreaterThan(0);
    expect(result.stderr.truncatedChars).toBeGreaterThan(0);
    expect(result.stateLost).toBe(false);
    expectHostHealthy(monitor, `${language} 30 MB stdout + 20 MB stderr`);
  }, 300_000);
});

describe('a Python cell writing 100 MB to file descriptor 1 with os.write', () => {
  it('gets it cut to the output limit like print, and the container lives on', async () => {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language: 'python' });
    const containerId = sandbox.containerId;
    const monitor = HostMonitor.start();
    const result = await sandbox.execute('import os\nos.write(1, b"x" * (100 * 1024 * 1024))\nprint("after")', { timeoutMs: 120_000 });
    expect(result.stateLost, `the write killed the sandbox: ${JSON.stringify(result.error)}`).toBe(false);
    expect(result.stdout.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS + 200);
    expect(result.stdout.truncatedChars).toBeGreaterThan(0);
    expect(result.stdout.text).toContain('after');
    expect((await sandbox.execute('1 + 1', { timeoutMs: 30_000 })).value).toBe('2');
    expect(sandbox.containerId).toBe(containerId);
    expect(sandbox.restarts).toBe(0);
    expectHostHealthy(monitor, 'Python os.write of 100 MB to fd 1');
  }, 300_000);
});

describe('a JavaScript cell starting 40 child RLMs at once', () => {
  const CHILDREN = 40;
  /** The default per-run cap on the tree's sandboxes (4), root included. */
  const DEFAULT_MAX_SANDBOXES = DEFAULT_LIMITS.maxSandboxes;

  it(`never has more than ${DEFAULT_MAX_SANDBOXES} containers of the run alive, and every child still answers`, async () => {
    const model = new ScriptedBackend((request) => {
      if (isChildRequest(request)) return replResponse('FINAL("child saw " + context)');
      const turns = request.messages.filter((m) => m.role === 'assistant').length;
      if (turns === 0) {
        return replResponse(
          `const answers = rlm_query_batched(Array.from({ length: ${CHILDREN} }, (_, i) => 'task ' + i)); ` +
            `print(answers.filter((a) => a.startsWith('child saw task')).length)`,
        );
      }
      return replResponse('FINAL("answered: " + answers.filter((a) => a.startsWith("child saw task")).length)');
    });
    const counter = await LiveContainerCounter.start(docker);
    try {
      const monitor = HostMonitor.start();
      const rlm = new RLM({
        root: { backend: model, model: 'root-model' },
        sandbox: sandboxOptions,
        // Every prompt of the batch at once, as a forged burst on the host-call port would be.
        limits: { maxDepth: 1, subcallConcurrency: CHILDREN, maxIterations: CHILDREN * 2 + 4, cellTimeoutMs: 600_000 },
      });
      const result = await rlm.completion({ context: 'ctx', query: 'q' });
      process.stderr.write(`[hostile] ${CHILDREN} children: ${counter.started} containers started, at most ${counter.max} alive at once\n`);
      expect(result.answer).toBe(`answered: ${CHILDREN}`);
      expect(counter.max).toBeLessThanOrEqual(DEFAULT_MAX_SANDBOXES);
      expectHostHealthy(monitor, `${CHILDREN} child RLMs at once`);
    } finally {
      counter.close();
    }
  }, 900_000);
});
