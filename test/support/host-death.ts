/**
 * A host process that crashes: a child process starts a sandbox, then is SIGKILLed, and we watch
 * what its container does next.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface HostDeath {
  /** Whether the container was running before the kill. */
  wasRunning: boolean;
  /** Whether the container was removed before the deadline. */
  removed: boolean;
  /**
   * The last line the REPL server wrote to stderr before it exited, e.g. `control channel closed
   * (1006 ); exiting`: it says why the server exited (the channel dropped, or no heartbeat came).
   */
  lastStderrLine: string;
}

/**
 * Starts `fixtures/hold-sandbox.mjs` (which finds the engine through the inherited DOCKER_HOST): a
 * host process that holds one sandbox until it is killed. Resolves once the sandbox runs.
 */
export async function startSandboxHost(image: string, options: { env?: NodeJS.ProcessEnv } = {}): Promise<{ holder: ChildProcess; containerId: string }> {
  const holder = spawn(process.execPath, [path.join(fixtures, 'hold-sandbox.mjs'), image], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: path.join(fixtures, '..'),
    ...(options.env ? { env: options.env } : {}),
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: holder.stdout }).once('line', resolve);
      holder.once('exit', (code) => reject(new Error(`holder exited with ${code} before starting a sandbox`)));
    });
    return { holder, containerId: (JSON.parse(line) as { containerId: string }).containerId };
  } catch (error) {
    holder.kill('SIGKILL');
    throw error;
  }
}

/**
 * Resolves true once the engine has removed the container (a 404 counts: it was gone before the
 * request arrived), false when `signal` fires first. Ask before causing the removal.
 */
export function containerRemoved(container: Dockerode.Container, signal: AbortSignal): Promise<boolean> {
  return container.wait({ condition: 'removed', abortSignal: signal }).then(
    () => true,
    (error: { statusCode?: number }) => error.statusCode === 404,
  );
}

/**
 * Kills the host of a sandbox ({@link startSandboxHost}) once its sandbox runs, and waits for the
 * container to be removed, up to `deadlineMs` (generous: this proves that it happens and why, not
 * how fast; the benchmark reports how fast). Registers its own cleanups.
 */
export async function killHostOfSandbox(docker: Dockerode, image: string, cleanups: Array<() => Promise<unknown>>, deadlineMs = 60_000): Promise<HostDeath> {
  const { holder, containerId } = await startSandboxHost(image);
  cleanups.push(async () => holder.kill('SIGKILL'));
  const container = docker.getContainer(containerId);
  cleanups.push(() => container.remove({ force: true }));
  const wasRunning = (await container.inspect()).State.Running;

  // Both asked for before the kill: the server's last words, and the moment the container is gone.
  const { lastLine } = await attachStderr(docker, container);
  const removed = containerRemoved(container, AbortSignal.timeout(deadlineMs));

  holder.kill('SIGKILL');
  const [lastStderrLine, wasRemoved] = await Promise.all([lastLine, removed]);
  return { wasRunning, removed: wasRemoved, lastStderrLine };
}

/** Attaches to the container's stderr; `lastLine` resolves once the container has exited. */
async function attachStderr(docker: Dockerode, container: Dockerode.Container): Promise<{ lastLine: Promise<string> }> {
  const stream = await container.attach({ stream: true, stdout: true, stderr: true, logs: false });
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  docker.modem.demuxStream(stream, new PassThrough().resume(), stderr);
  const lastLine = new Promise<string>((resolve) => {
    const done = () => resolve(text.trim().split('\n').at(-1) ?? '');
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
  return { lastLine };
}
