/**
 * The reaper against the real engine: a sandbox container whose owner died is removed, one whose
 * owner lives is left alone.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildContainerSpec } from '../orchestrator/src/sandbox/container-spec.js';
import { IMAGE_NODE_PATH } from '../orchestrator/src/sandbox/image/node-runtime.js';
import {
  SANDBOX_ID_LABEL,
  SANDBOX_LABEL,
  listSandboxes,
  reapOrphanedSandboxes,
  sandboxOwnerLabels,
  sandboxStateRootPath,
} from '../orchestrator/src/sandbox/reaper.js';
import { deadOwner, testDocker } from './support/docker.js';
import { containerRemoved, startSandboxHost } from './support/host-death.js';

const docker = testDocker();
const image = inject('sandboxImage');
const created: Dockerode.Container[] = [];
let workDir: string;

/**
 * Starts a sandbox-like container from our image carrying `labels`. It runs until removed, or for
 * ten minutes should this process die before removing it (the container is auto-removed then).
 */
async function runningContainer(labels: Record<string, string>): Promise<Dockerode.Container> {
  const dir = await mkdtemp(path.join(workDir, 'sb-'));
  await chmod(dir, 0o755);
  const spec = buildContainerSpec({
    image,
    name: `rlm-test-reaper-${randomBytes(4).toString('hex')}`,
    labels,
    contextDir: dir,
    controlDir: dir,
    args: [],
    limits: { memoryBytes: 128 * 1024 * 1024 },
  });
  const container = await docker.createContainer({
    ...spec,
    Entrypoint: [IMAGE_NODE_PATH, '-e', 'setTimeout(() => {}, 600_000)'],
  });
  created.push(container);
  await container.start();
  return container;
}

beforeAll(async () => {
  workDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-reaper-'));
});

afterAll(async () => {
  await Promise.all(created.map((c) => c.remove({ force: true }).catch(() => undefined)));
  await rm(workDir, { recursive: true, force: true });
});

// Other test files start sandboxes whose first start reaps orphans in the background; a label of
// this run's own keeps their reapers away from these containers.
const label = `${SANDBOX_LABEL}.test-${randomBytes(4).toString('hex')}`;

describe('reapOrphanedSandboxes', () => {
  it('removes a sandbox whose owner died and leaves one whose owner lives', async () => {
    const { [SANDBOX_LABEL]: liveOwner, ...otherLabels } = sandboxOwnerLabels();
    const orphan = await runningContainer({ ...otherLabels, [label]: await deadOwner() });
    const owned = await runningContainer({ ...otherLabels, [label]: liveOwner ?? '' });

    const listed = await listSandboxes({ docker, label });
    expect(listed.find((s) => s.id === orphan.id)).toMatchObject({ ownerStatus: 'dead', ownerAlive: false, state: 'running' });
    expect(listed.find((s) => s.id === owned.id)).toMatchObject({ ownerStatus: 'alive', ownerAlive: true });

    const result = await reapOrphanedSandboxes({ docker, label, signal: AbortSignal.timeout(60_000), stateRoot: workDir });
    expect(result.removed).toContain(orphan.id);
    expect(result.removed).not.toContain(owned.id);
    expect(result.failed).toEqual([]);

    const after = await listSandboxes({ docker, label });
    expect(after.some((s) => s.id === orphan.id)).toBe(false);
    expect(after.find((s) => s.id === owned.id)?.state).toBe('running');
  });
});

describe('after a host process was killed', () => {
  it('removes the state directory of its sandbox once its container is gone on its own', async () => {
    // A state root of its own: every process that starts a sandbox reaps the state directories of
    // dead hosts under its root, so under the shared one another test's process could remove this
    // directory first.
    const runtimeDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-reaper-xdg-'));
    const stateRoot = path.join(runtimeDir, path.basename(sandboxStateRootPath()));
    const { holder, containerId } = await startSandboxHost(image, { env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir } });
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    const container = docker.getContainer(containerId);
    created.push(container);
    const sandboxId = (await container.inspect()).Config.Labels?.[SANDBOX_ID_LABEL] ?? '';
    const stateDir = path.join(stateRoot, sandboxId);
    expect(existsSync(stateDir)).toBe(true);

    const removed = containerRemoved(container, AbortSignal.timeout(60_000));
    holder.kill('SIGKILL');
    await exited;
    // The REPL server exits when its channel drops: no container is left for the reaper to find.
    expect(await removed).toBe(true);
    expect(existsSync(stateDir)).toBe(true);

    const result = await reapOrphanedSandboxes({ docker, signal: AbortSignal.timeout(60_000), stateRoot });
    expect(result.removed).not.toContain(containerId);
    expect(result.removedStateDirs).toContain(stateDir);
    expect(existsSync(stateDir)).toBe(false);
    await rm(runtimeDir, { recursive: true, force: true });
  });
});
