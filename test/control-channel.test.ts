/**
 * The control channel treats the container as hostile, and the container does not outlive its host.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChannelError, Execute } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { killHostOfSandbox } from './support/host-death.js';
import { buildContainerSpec } from '../orchestrator/src/sandbox/container-spec.js';
import { ControlListener, UnixSocketEndpoint } from '../orchestrator/src/sandbox/control/control-listener.js';
import { createDockerClient } from '../orchestrator/src/sandbox/docker-client.js';
import { createSandboxStateDir, sandboxOwnerLabels } from '../orchestrator/src/sandbox/reaper.js';

const docker = createDockerClient();
const image = inject('sandboxImage');
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Starts our image with the hostile peer script in place of the REPL server; resolves once it said hello. */
async function startHostilePeer(mode: 'malformed' | 'oversized' | 'flood-requests') {
  const id = `hostile-${randomBytes(4).toString('hex')}`;
  const stateDir = await createSandboxStateDir(id);
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const contextDir = path.join(stateDir, 'context');
  const controlDir = path.join(stateDir, 'control');
  await mkdir(contextDir, { recursive: true });
  await mkdir(controlDir, { recursive: true });
  await copyFile(path.join(fixtures, 'hostile-peer.cjs'), path.join(contextDir, 'hostile-peer.cjs'));
  const listener = await ControlListener.open({ endpoint: new UnixSocketEndpoint(controlDir), sandboxId: id });
  cleanups.push(() => listener.close());
  const spec = buildContainerSpec({
    image,
    name: `rlm-sandbox-${id}`,
    labels: sandboxOwnerLabels(),
    contextDir,
    controlDir,
    args: ['/context/hostile-peer.cjs', '/run/rlm/control.sock', listener.token, mode],
  });
  const container: Dockerode.Container = await docker.createContainer({ ...spec, Entrypoint: ['/opt/rlm/bin/node'] });
  cleanups.push(() => container.remove({ force: true }));
  await container.start();
  const connection = await listener.accept({ signal: AbortSignal.timeout(20_000) });
  return { connection, container };
}

const cell = { code: '1', language: 'javascript' as const, timeoutMs: 5_000, outputLimitChars: 100 };

describe('a hostile container', () => {
  it('gets its connection closed for a malformed message, failing the pending request instead of the host', async () => {
    const { connection } = await startHostilePeer('malformed');
    // The peer breaks the protocol in answer to this request, so it is pending when that happens.
    const error = await connection.request(Execute, cell).catch((e: unknown) => e);
    expect(ChannelError.isInstance(error)).toBe(true);
    const info = await connection.closed;
    expect(info.code).toBe(1008);
    expect(info.violation?.message).toMatch(/not valid JSON/);
  });

  it('gets its connection closed with 1009 for a message over the size limit, before the host buffers it', async () => {
    const { connection } = await startHostilePeer('oversized');
    const before = process.memoryUsage().rss;
    const info = await connection.closed;
    expect(info.code).toBe(1009);
    expect(info.reason).toMatch(/size limit/);
    // The 65 MiB frame was refused from its header, not read into memory.
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('gets an error answer for each request to an unknown method and the channel stays usable', async () => {
    const { connection } = await startHostilePeer('flood-requests');
    // The peer answers this only once it has an answer to each of its 200 requests.
    const result = await connection.request(Execute, cell);
    expect(result.stdout.text).toBe('200 of 200 requests answered with method_not_found');
    expect(connection.isOpen).toBe(true);
  });
});

describe('when the host goes away', () => {
  it('the REPL server exits because its channel dropped, not for want of heartbeats, and its container is removed', async () => {
    const death = await killHostOfSandbox(docker, image, cleanups);
    expect(death.wasRunning).toBe(true);
    expect(death.removed).toBe(true);
    // 1006: the socket closed without a close frame, as it does when the host process dies. The
    // heartbeat timeout (20 s) would have said "no ping from the host".
    expect(death.lastStderrLine).toMatch(/^control channel closed \(1006 .*\); exiting$/);
  });
});
