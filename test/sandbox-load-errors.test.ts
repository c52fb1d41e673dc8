/**
 * How loading a context and defining tools fail, in real containers: a context too large for the
 * sandbox's memory is refused as `out_of_memory`, naming the limit and the option to raise, and
 * the sandbox goes on; a container that died under a load or a tool definition surfaces as a
 * SandboxError carrying the channel's error as its cause (never a bare ConnectionClosedError), and
 * the next call runs in a fresh container.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ConnectionClosedError, RemoteError } from '@rlm/shared';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Sandbox, SandboxError, contextFromFile, createDockerClient } from 'rlm';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';
import { TEST_SANDBOX_RUNTIME } from './support/runtime.js';

const docker = createDockerClient();
const image = inject('sandboxImage');
const MIB = 1024 * 1024;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-load-errors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function create(memoryMb?: number) {
  return Sandbox.create({
    docker,
    image,
    ...TEST_SANDBOX_RUNTIME,
    startTimeoutMs: TEST_START_TIMEOUT_MS,
    ...(memoryMb === undefined ? {} : { limits: { memoryBytes: memoryMb * MIB } }),
  });
}

/**
 * Kills the sandbox's container behind the host's back, as a crash would, and waits until it is
 * gone. SIGKILL: the REPL server is the container's PID 1, which ignores signals it has no handler for.
 */
async function killContainer(sandbox: Sandbox): Promise<void> {
  const id = sandbox.containerId;
  if (!id) throw new Error('the sandbox has no container');
  await docker.getContainer(id).kill({ signal: 'SIGKILL' });
  await docker
    .getContainer(id)
    .wait({ condition: 'removed' })
    .catch(() => undefined);
}

describe('loading a context', () => {
  it('refuses a context too large for the memory limit as out_of_memory, naming the limit and --memory-mb; the sandbox keeps its state', async () => {
    await using sandbox = await create(256);
    await sandbox.execute('globalThis.kept = "still here"');
    // 120 MB of text needs 229 MiB to load, more than a 256 MiB sandbox's REPL may hold.
    await writeFile(path.join(dir, 'large.txt'), Buffer.alloc(120 * 1024 * 1024, 'x'));
    const loading = sandbox.loadContext(await contextFromFile(path.join(dir, 'large.txt')));
    const error = await loading.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(SandboxError.isInstance(error)).toBe(true);
    const failure = error as SandboxError;
    expect(failure.kind).toBe('out_of_memory');
    expect(failure.message).toMatch(
      /ran out of memory loading context "context" \(a 126 MB file\) at its memory limit of 256 MiB: loading it takes at least 240 MiB/,
    );
    expect(failure.message).toContain('raise the limit with limits.memoryBytes (--memory-mb on the CLI');
    expect(failure.cause).toBeInstanceOf(RemoteError);
    expect((await sandbox.execute('kept')).value).toBe("'still here'");
    expect(sandbox.restarts).toBe(0);
  });

  it('turns a container that died before the load into a SandboxError with the channel error as cause; the next load runs in a fresh container', async () => {
    await using sandbox = await create();
    const first = sandbox.containerId;
    await killContainer(sandbox);
    const error = await sandbox.loadContext('after the crash').then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(SandboxError.isInstance(error)).toBe(true);
    // Killed with exit code 137, the container reads as killed for memory (what 137 most often means).
    expect((error as SandboxError).message).toMatch(/loading context "context"/);
    expect((error as SandboxError).message).toContain('exit 137');
    expect((error as SandboxError).cause).toBeInstanceOf(ConnectionClosedError);
    await sandbox.loadContext('in a fresh container');
    expect(sandbox.containerId).not.toBe(first);
    expect((await sandbox.execute('context')).value).toBe("'in a fresh container'");
  });
});

describe('defining tools', () => {
  it('turns a container that died before the definition into a SandboxError with the channel error as cause', async () => {
    await using sandbox = await create();
    await killContainer(sandbox);
    const error = await sandbox.defineTools({ echo: { handler: (args) => args } }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(SandboxError.isInstance(error)).toBe(true);
    expect((error as SandboxError).message).toMatch(/failed while defining the tools: the sandbox was killed \(exit 137\)/);
    expect((error as SandboxError).cause).toBeInstanceOf(ConnectionClosedError);
    expect(await sandbox.defineTools({ echo: { handler: (args) => args } })).toEqual(['echo']);
    expect((await sandbox.execute('echo(1, "a")')).value).toBe("[ 1, 'a' ]");
  });
});
