/**
 * Setup of the `runsc` test project (`pnpm test:runsc`): the container tests again, with every
 * sandbox under gVisor. The engine must offer `runsc` (the run fails, never skips, otherwise); then
 * the integration setup does the rest (the image, the leak check). While the tests run, every
 * sandbox container this run starts is inspected as the engine creates it: one that runs under any
 * other runtime (a test that forgot `TEST_SANDBOX_RUNTIME`) fails the run, so a green `runsc`
 * project means the tests really ran under gVisor.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { TestProject } from 'vitest/node';
import { errorMessage } from '../../orchestrator/src/errors.js';
import { createDockerClient, describeDockerHost, dockerInfo, pingDocker } from '../../orchestrator/src/sandbox/docker-client.js';
import { SANDBOX_LABEL, parseOwner } from '../../orchestrator/src/sandbox/reaper.js';
import integrationSetup from './global-setup.js';
import { TEST_RUNTIME, TEST_RUNTIME_ENV } from './runtime.js';

/** How long teardown waits for the inspections of containers created last to answer. */
const INSPECT_GRACE_MS = 10_000;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The project sets the variable for its workers (vitest.config.ts); this process reads it too.
  const runtime = TEST_RUNTIME ?? project.config.env?.[TEST_RUNTIME_ENV];
  if (!runtime) throw new Error(`the runsc project runs its sandboxes under ${TEST_RUNTIME_ENV}, which is unset; run it with \`pnpm test:runsc\``);
  const docker = createDockerClient();
  const host = describeDockerHost(docker);
  try {
    await pingDocker(docker, { timeoutMs: 10_000 });
  } catch (error) {
    throw new Error(`the ${runtime} tests need a Docker engine at ${host}: ${errorMessage(error)}`, { cause: error });
  }
  const info = await dockerInfo(docker);
  if (!info.runtimes.includes(runtime)) {
    throw new Error(
      `the Docker engine at ${host} has no runtime ${JSON.stringify(runtime)} (it has: ${info.runtimes.join(', ') || 'none'}); ` +
        'install Debian\'s runsc and register it in /etc/docker/daemon.json: {"runtimes": {"runsc": {"path": "/usr/bin/runsc", ' +
        '"runtimeArgs": ["--network=none", "--platform=ptrace"]}}}, then restart dockerd (.ci/run does both)',
    );
  }
  process.stderr.write(`[${runtime}] ${host}: Docker ${info.serverVersion}, sandboxes under ${runtime} (runtimes: ${info.runtimes.join(', ')})\n`);

  const watcher = await watchSandboxRuntimes(docker);
  const teardownIntegration = await integrationSetup(project);
  return async () => {
    const seen = await watcher.stop();
    const wrong = seen.filter((s) => s.runtime !== runtime);
    process.stderr.write(`[${runtime}] ${seen.length - wrong.length} sandbox container(s) of this run ran under ${runtime}\n`);
    // The integration teardown (the leak check) runs whatever the runtimes were.
    const leaks = await teardownIntegration().then(
      () => undefined,
      (error: unknown) => error,
    );
    if (wrong.length > 0) {
      throw new Error(
        `${wrong.length} sandbox container(s) of the ${runtime} run ran under another runtime ` +
          `(a test that does not spread TEST_SANDBOX_RUNTIME from test/support/runtime.ts): ` +
          wrong.map((s) => `${s.name} [${s.runtime}]`).join(', '),
        leaks === undefined ? {} : { cause: leaks },
      );
    }
    if (leaks !== undefined) {
      // The leak check counts every sandbox a dead process of this host started during the run,
      // including other runs' on the same engine: say which containers were this run's.
      process.stderr.write(`[${runtime}] this run's sandbox containers: ${seen.map((s) => s.name).join(', ')}\n`);
      throw leaks;
    }
  };
}

interface SeenSandbox {
  name: string;
  /** `HostConfig.Runtime`, or `unknown` when the container was gone before it could be inspected. */
  runtime: string;
}

/**
 * Follows the engine's container `create` events of sandboxes owned by this process or its
 * descendants (the test workers, and the hosts they start), and inspects each for its runtime.
 */
async function watchSandboxRuntimes(docker: ReturnType<typeof createDockerClient>): Promise<{ stop: () => Promise<SeenSandbox[]> }> {
  const seen: SeenSandbox[] = [];
  const inspections = new Set<Promise<void>>();
  // Ends only when destroyed (stop below): the engine streams events until the client hangs up.
  const stream = (await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [SANDBOX_LABEL] } })) as Readable;
  stream.on('error', () => undefined);
  const lines = createInterface({ input: stream });
  lines.on('line', (line) => {
    const event = parseCreateEvent(line);
    if (!event || !isOursOrDescendants(event.owner)) return;
    const inspection = docker
      .getContainer(event.id)
      .inspect()
      .then(
        (info) => {
          seen.push({ name: event.name, runtime: info.HostConfig.Runtime ?? 'unknown' });
        },
        // Removed before the inspection arrived: a container that lived a few milliseconds (it
        // failed to start); nothing ran in it.
        () => undefined,
      )
      .finally(() => inspections.delete(inspection));
    inspections.add(inspection);
  });
  return {
    stop: async () => {
      await Promise.race([Promise.all(inspections), new Promise((resolve) => setTimeout(resolve, INSPECT_GRACE_MS).unref())]);
      lines.close();
      stream.destroy();
      return seen;
    },
  };
}

function parseCreateEvent(line: string): { id: string; name: string; owner: string } | undefined {
  try {
    const event = JSON.parse(line) as { Actor?: { ID?: unknown; Attributes?: Record<string, unknown> } };
    const id = event.Actor?.ID;
    const attributes = event.Actor?.Attributes ?? {};
    const owner = attributes[SANDBOX_LABEL];
    if (typeof id !== 'string' || typeof owner !== 'string') return undefined;
    return { id, name: typeof attributes.name === 'string' ? attributes.name : id.slice(0, 12), owner };
  } catch {
    return undefined;
  }
}

/** Whether the sandbox's owner is this process or one it started (other runs on this engine are not ours). */
function isOursOrDescendants(ownerLabel: string): boolean {
  const owner = parseOwner(ownerLabel);
  if (!owner || owner.host !== os.hostname()) return false;
  let pid = owner.pid;
  for (let depth = 0; depth < 16 && pid > 1; depth++) {
    if (pid === process.pid) return true;
    pid = parentPid(pid);
  }
  return false;
}

function parentPid(pid: number): number {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}
