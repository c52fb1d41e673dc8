/**
 * Setup of the `rootless` test project: the engine `DOCKER_HOST` names must answer and must be a
 * rootless daemon (the run fails, never skips, otherwise); then the integration setup does the
 * rest (the sandbox image, built against that daemon, provided as `inject('sandboxImage')`, and
 * the check that no sandbox container outlives the run).
 *
 * `test/rootless/run-tests.sh` (`pnpm test:rootless`) starts such a daemon and runs this project as
 * the daemon's user.
 */
import type { TestProject } from 'vitest/node';
import { errorMessage } from '../../orchestrator/src/errors.js';
import { createDockerClient, describeDockerHost, dockerInfo, pingDocker } from '../../orchestrator/src/sandbox/docker-client.js';
import integrationSetup from '../support/global-setup.js';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!process.env.DOCKER_HOST) {
    throw new Error(
      'the rootless tests talk to a rootless Docker daemon through DOCKER_HOST, which is unset; run them with `pnpm test:rootless` ' +
        '(as root it starts one), or point DOCKER_HOST at yours, e.g. unix:///run/user/$UID/docker.sock',
    );
  }
  const docker = createDockerClient();
  const host = describeDockerHost(docker);
  try {
    await pingDocker(docker, { timeoutMs: 10_000 });
  } catch (error) {
    throw new Error(`the rootless tests need the rootless Docker daemon at ${host}: ${errorMessage(error)}`, { cause: error });
  }
  const info = await dockerInfo(docker);
  if (!info.rootless) {
    throw new Error(
      `the Docker engine at ${host} is not rootless (SecurityOptions: ${info.securityOptions.join('; ') || 'none'}); ` +
        'the rootless tests must run against a rootless daemon',
    );
  }
  process.stderr.write(
    `[rootless] ${host}: Docker ${info.serverVersion}, cgroup v${info.cgroupVersion ?? '?'} (driver ${info.cgroupDriver ?? '?'}), ` +
      `tests running as uid ${process.getuid?.()}\n`,
  );
  return integrationSetup(project);
}
