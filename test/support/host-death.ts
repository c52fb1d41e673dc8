/**
 * A host process that crashes: a child process starts a sandbox, then is SIGKILLed, and we time
 * how long its container outlives it.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface HostDeath {
  /** Whether the container was running before the kill. */
  wasRunning: boolean;
  /** Whether the container was gone within `giveUpMs` of the kill. */
  gone: boolean;
  /** Milliseconds from the kill to the container being gone (or to giving up). */
  elapsedMs: number;
}

/**
 * Starts `fixtures/hold-sandbox.mjs` (which finds the engine through the inherited DOCKER_HOST),
 * kills it once its sandbox runs, and polls until the container is gone. Registers its own cleanups.
 */
export async function killHostOfSandbox(
  docker: Dockerode,
  image: string,
  cleanups: Array<() => Promise<unknown>>,
  giveUpMs = 10_000,
): Promise<HostDeath> {
  const holder = spawn(process.execPath, [path.join(fixtures, 'hold-sandbox.mjs'), image], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: path.join(fixtures, '..'),
  });
  cleanups.push(async () => holder.kill('SIGKILL'));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: holder.stdout }).once('line', resolve);
    holder.once('exit', (code) => reject(new Error(`holder exited with ${code} before starting a sandbox`)));
  });
  const { containerId } = JSON.parse(line) as { containerId: string };
  const container = docker.getContainer(containerId);
  cleanups.push(() => container.remove({ force: true }));
  const wasRunning = (await container.inspect()).State.Running;

  holder.kill('SIGKILL');
  const killedAt = performance.now();
  let gone = false;
  while (!gone && performance.now() - killedAt < giveUpMs) {
    gone = await container.inspect().then(
      () => false,
      (error: { statusCode?: number }) => error.statusCode === 404,
    );
    if (!gone) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { wasRunning, gone, elapsedMs: performance.now() - killedAt };
}
