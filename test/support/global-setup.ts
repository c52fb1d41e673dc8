/**
 * Integration test setup: Docker must be reachable (the run fails, never skips, when it is not),
 * the sandbox image is ensured once and its tag provided as `inject('sandboxImage')`, and at the
 * end no sandbox container started by this run may be left behind.
 */
import os from 'node:os';
import type { TestProject } from 'vitest/node';
import { errorMessage } from '../../orchestrator/src/errors.js';
import { createDockerClient, describeDockerHost, pingDocker } from '../../orchestrator/src/sandbox/docker-client.js';
import { ensureSandboxImage } from '../../orchestrator/src/sandbox/image/ensure-sandbox-image.js';
import { listSandboxes, parseOwner, type SandboxContainer } from '../../orchestrator/src/sandbox/reaper.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Tag of the sandbox image built from the workspace's Dockerfile and REPL bundle. */
    sandboxImage: string;
  }
}

/** How long AutoRemove containers of the run get to disappear before they count as leaked. */
const LEAK_GRACE_MS = 15_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const startedAt = new Date();
  const docker = createDockerClient();
  try {
    await pingDocker(docker, { timeoutMs: 10_000 });
  } catch (error) {
    throw new Error(`integration tests need a Docker engine: ${errorMessage(error)}`, { cause: error });
  }

  const image = await ensureSandboxImage({
    docker,
    onProgress: (event) => {
      if (event.phase === 'context' || /^Step /.test(event.message)) process.stderr.write(`[sandbox image] ${event.message}\n`);
    },
  });
  if (image.built) process.stderr.write(`[sandbox image] built ${image.tag} in ${(image.durationMs / 1000).toFixed(1)} s\n`);
  project.provide('sandboxImage', image.tag);

  return async () => {
    // Sandboxes this run started: on this host, created since setup, owned by a test process that
    // has exited (workers are gone by now) or by this very process.
    const isLeak = (s: SandboxContainer) => {
      const owner = parseOwner(s.owner);
      return owner?.host === os.hostname() && Date.parse(s.created) >= startedAt.getTime() - 1_000 && (s.ownerStatus === 'dead' || owner.pid === process.pid);
    };
    const deadline = Date.now() + LEAK_GRACE_MS;
    let leaked = (await listSandboxes({ docker })).filter(isLeak);
    while (leaked.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      leaked = (await listSandboxes({ docker })).filter(isLeak);
    }
    if (leaked.length === 0) return;
    await Promise.all(
      leaked.map((s) =>
        docker
          .getContainer(s.id)
          .remove({ force: true, v: true })
          .catch(() => undefined),
      ),
    );
    throw new Error(
      `${leaked.length} sandbox container(s) outlived the tests on ${describeDockerHost(docker)} (now removed): ` +
        leaked.map((s) => `${s.name} [${s.state}, owner ${s.owner}]`).join(', '),
    );
  };
}
