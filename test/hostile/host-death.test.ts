/**
 * Hostile suite: the host dies (SIGKILL) while a hostile cell runs — one that spins and tries to
 * freeze the REPL server and stop process 1. The container must still go, and the host's
 * state directory with it once the reaper runs, whatever the cell does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createDockerClient, reapOrphanedSandboxes, type Language } from 'rlm';
import { SANDBOX_LABEL, sandboxStateRootPath } from '../../orchestrator/src/sandbox/reaper.js';
import { containerRemoved } from '../support/host-death.js';
import { FREEZE_EXPRESSION } from '../support/hostile-cells.js';
import { expectNoContainerSurvives } from '../support/hostile-host.js';

const docker = createDockerClient();
const image = inject('sandboxImage');
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/**
 * How long the container may take to go after its host died. Generous (the issue asks for 10 s and
 * the benchmark reports how fast): this proves that it goes, not how fast.
 */
const REMOVAL_DEADLINE_MS = 90_000;

/**
 * The label the holder's container carries its owner under, instead of `rlm.sandbox`: the reapers
 * of the other test processes (every process reaps dead owners' sandboxes at its first sandbox)
 * would otherwise remove the container of the killed holder and hide whether it went by itself.
 */
const PRIVATE_OWNER_LABEL = `${SANDBOX_LABEL}.test-${randomBytes(4).toString('hex')}`;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  await expectNoContainerSurvives(docker);
});

/** What a hostile cell writes straight to the container's stderr once it froze the REPL server. */
const FROZE_THE_SERVER = 'HOSTILE: the server is frozen';

/**
 * The cell: freezes the main thread of its process through the inspector (the REPL server, where
 * cells run in its worker) and, once that has landed, says so on the container's stderr — the only
 * way out left; where the inspector is out of reach it says it runs through a sub-call instead.
 * Then it tries to stop process 1 and spins where no interrupt reaches.
 */
const HOSTILE_CELL: Record<Language, string> = {
  javascript: `
    let froze = false;
    try {
      const session = new (require('node:inspector').Session)();
      session.connectToMainThread();
      await new Promise((resolve, reject) => session.post('Runtime.evaluate', { expression: ${JSON.stringify(FREEZE_EXPRESSION)} }, (e) => (e ? reject(e) : resolve())));
      froze = true;
    } catch {}
    if (froze) {
      // The freeze lands 200 ms after the evaluation answered.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      require('node:fs').writeSync(2, ${JSON.stringify(`${FROZE_THE_SERVER}
`)});
    } else {
      llm_query('running');
    }
    try { process.kill(1, 'SIGSTOP'); } catch {}
    await null;
    for (;;) {}
  `,
  python: [
    'import js',
    'from pyodide.ffi import to_js',
    'froze = False',
    'try:',
    "    session = js.process.getBuiltinModule('node:inspector').Session.new()",
    '    session.connectToMainThread()',
    `    session.post('Runtime.evaluate', to_js({'expression': ${JSON.stringify(FREEZE_EXPRESSION)}}, dict_converter=js.Object.fromEntries))`,
    '    froze = True',
    'except BaseException:',
    '    pass',
    'if froze:',
    '    # The freeze lands 200 ms after the evaluation ran.',
    '    js.Atomics.wait(js.Int32Array.new(js.SharedArrayBuffer.new(4)), 0, 0, 1000)',
    `    js.process.getBuiltinModule('node:fs').writeSync(2, ${JSON.stringify(`${FROZE_THE_SERVER}
`)})`,
    'else:',
    "    llm_query('running')",
    'try:',
    "    js.process.kill(1, 'SIGSTOP')",
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

/** Resolves once `text` appears in the container's output (what it wrote before this call included). */
async function containerSays(container: Dockerode.Container, text: string): Promise<void> {
  const stream = await container.attach({ stream: true, stdout: true, stderr: true, logs: true });
  const sink = new PassThrough();
  let seen = '';
  docker.modem.demuxStream(stream, sink, sink);
  await new Promise<void>((resolve) => {
    sink.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-4096);
      if (seen.includes(text)) resolve();
    });
  });
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

/**
 * Starts the holder and resolves once its hostile cell is in place (the server frozen, or the cell's
 * sub-call reached the holder), with the ids the holder printed.
 */
async function startHostileHolder(language: Language): Promise<{ holder: ChildProcess; containerId: string; sandboxId: string }> {
  const encoded = Buffer.from(HOSTILE_CELL[language]).toString('base64');
  const holder = spawn(process.execPath, [path.join(fixtures, 'hostile-hold-sandbox.mjs'), image, language, encoded, PRIVATE_OWNER_LABEL], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: path.join(fixtures, '..'),
  });
  cleanups.push(async () => holder.kill('SIGKILL'));
  const exited = new Promise<never>((_, reject) => holder.once('exit', (code) => reject(new Error(`the holder exited with ${code} before its cell ran`))));
  exited.catch(() => undefined);
  let created: { containerId: string; sandboxId: string } | undefined;
  const lines = createInterface({ input: holder.stdout! });
  const inPlace = new Promise<void>((resolve, reject) => {
    lines.on('line', (line) => {
      const message = JSON.parse(line) as { event: string; containerId?: string; sandboxId?: string };
      if (message.event === 'created') {
        created = { containerId: message.containerId ?? '', sandboxId: message.sandboxId ?? '' };
        const container = docker.getContainer(created.containerId);
        cleanups.push(() => container.remove({ force: true }));
        containerSays(container, FROZE_THE_SERVER).then(resolve, reject);
      }
      if (message.event === 'cell-running') resolve();
    });
  });
  await Promise.race([inPlace, exited]);
  if (!created) throw new Error('the holder announced its cell before its container');
  return { holder, ...created };
}

describe.each(['javascript', 'python'] as const)('a host SIGKILLed while a hostile %s cell runs', (language) => {
  it(
    'leaves no container behind, and the reaper removes its state directory',
    async () => {
      const { holder, containerId, sandboxId } = await startHostileHolder(language);
      const container = docker.getContainer(containerId);
      expect((await container.inspect()).State.Running).toBe(true);
      // Asked for before the kill, so the removal cannot be missed.
      const removed = containerRemoved(container, AbortSignal.timeout(REMOVAL_DEADLINE_MS));
      holder.kill('SIGKILL');
      expect(await removed, `the container of a SIGKILLed host was still there ${REMOVAL_DEADLINE_MS / 1000} s later`).toBe(true);

      const stateDir = path.join(sandboxStateRootPath(), sandboxId);
      await reapOrphanedSandboxes({ docker, signal: AbortSignal.timeout(60_000) });
      expect(existsSync(stateDir), `the dead host's state directory ${stateDir} is still on disk after the reaper ran`).toBe(false);
    },
    REMOVAL_DEADLINE_MS + 180_000,
  );
});
