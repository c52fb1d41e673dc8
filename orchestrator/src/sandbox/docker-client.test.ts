import { describe, expect, it } from 'vitest';
import { DockerUnavailableError, errorMessage, InvalidOptionError } from '../errors.js';
import {
  assertRuntimeAvailable,
  createDockerClient,
  describeDockerHost,
  dockerConnectionOptions,
  parseDockerInfo,
  pingDocker,
  unenforcedLimitsReason,
} from './docker-client.js';

describe('dockerConnectionOptions', () => {
  it('reads unix sockets, rootless ones included', () => {
    expect(dockerConnectionOptions('unix:///var/run/docker.sock')).toEqual({ socketPath: '/var/run/docker.sock' });
    expect(dockerConnectionOptions('unix:///run/user/1000/docker.sock')).toEqual({ socketPath: '/run/user/1000/docker.sock' });
  });

  it('reads tcp hosts, with TLS on port 2376 or DOCKER_TLS_VERIFY', () => {
    expect(dockerConnectionOptions('tcp://10.0.0.5:2375', {})).toEqual({ protocol: 'http', host: '10.0.0.5', port: '2375' });
    expect(dockerConnectionOptions('tcp://docker:2375', { DOCKER_TLS_VERIFY: '1', HOME: '/nonexistent' })).toMatchObject({
      protocol: 'https',
      host: 'docker',
    });
  });

  it('names dockerHost when it cannot understand it', () => {
    expect(() => dockerConnectionOptions('unix://relative.sock')).toThrow(InvalidOptionError);
    expect(() => dockerConnectionOptions('ftp://host:21')).toThrow(/dockerHost: .*unsupported scheme ftp:/);
  });
});

describe('createDockerClient', () => {
  it('honours DOCKER_HOST, else the default socket', () => {
    expect(describeDockerHost(createDockerClient({ env: { DOCKER_HOST: 'unix:///run/user/7/docker.sock' } }))).toBe('unix:///run/user/7/docker.sock');
    expect(describeDockerHost(createDockerClient({ env: {} }))).toBe('unix:///var/run/docker.sock');
    expect(describeDockerHost(createDockerClient({ dockerHost: 'tcp://127.0.0.1:2375', env: {} }))).toBe('tcp://127.0.0.1:2375');
  });
});

describe('pingDocker', () => {
  it('names the host tried and the fix when the engine is not there', async () => {
    const docker = createDockerClient({ dockerHost: 'unix:///nonexistent/docker.sock', env: {} });
    const error = await pingDocker(docker).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DockerUnavailableError);
    expect(error).toMatchObject({
      dockerHost: 'unix:///nonexistent/docker.sock',
      message: expect.stringMatching(/unix:\/\/\/nonexistent\/docker\.sock.*ENOENT/),
    });
    expect(errorMessage(error)).toMatch(
      /start the Docker engine \(dockerd\) or set DOCKER_HOST; for rootless Docker, DOCKER_HOST=unix:\/\/\/run\/user\/\$UID\/docker\.sock/,
    );
  });
});

describe('parseDockerInfo', () => {
  it('reports rootless daemons, the cgroup version and the runtimes', () => {
    const info = parseDockerInfo({
      ServerVersion: '27.1.0',
      Architecture: 'x86_64',
      CgroupVersion: '2',
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=rootless', 'name=cgroupns'],
      Runtimes: { runc: {}, runsc: {} },
      DefaultRuntime: 'runc',
    });
    expect(info).toMatchObject({ rootless: true, cgroupVersion: 2, runtimes: ['runc', 'runsc'], defaultRuntime: 'runc' });
    expect(parseDockerInfo({ SecurityOptions: ['name=seccomp,profile=default'], CgroupVersion: '1' })).toMatchObject({
      rootless: false,
      cgroupVersion: 1,
      runtimes: [],
    });
  });

  it('knows when the engine cannot enforce resource limits', () => {
    const rootlessV1 = parseDockerInfo({ SecurityOptions: ['name=seccomp,profile=default', 'name=rootless'], CgroupVersion: '1', CgroupDriver: 'none' });
    expect(rootlessV1).toMatchObject({ rootless: true, cgroupVersion: 1, cgroupDriver: 'none' });
    expect(unenforcedLimitsReason(rootlessV1)).toMatch(/rootless on a cgroup v1 host/);
    expect(unenforcedLimitsReason(parseDockerInfo({ SecurityOptions: ['name=rootless'], CgroupVersion: '2', CgroupDriver: 'systemd' }))).toBeUndefined();
    expect(
      unenforcedLimitsReason(parseDockerInfo({ SecurityOptions: ['name=seccomp,profile=default'], CgroupVersion: '1', CgroupDriver: 'cgroupfs' })),
    ).toBeUndefined();
    expect(unenforcedLimitsReason(parseDockerInfo({ CgroupDriver: 'none' }))).toMatch(/without cgroups/);
  });

  it('names the runtime option when the engine lacks it', () => {
    const info = parseDockerInfo({ Runtimes: { runc: {} } });
    expect(() => assertRuntimeAvailable(info, 'runc')).not.toThrow();
    expect(() => assertRuntimeAvailable(info, 'runsc')).toThrow(/runtime: the Docker engine has no runtime "runsc" \(it has: runc\).*gVisor/);
  });
});
