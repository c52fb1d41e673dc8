import { CONTEXT_MOUNT_PATH, CONTROL_MOUNT_PATH } from '@rlm/shared';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { DEFAULT_SANDBOX_LIMITS, buildContainerSpec, enginePidsLimit, type ContainerSpecInput } from './container-spec.js';

const input: ContainerSpecInput = {
  image: 'rlm-sandbox:0123456789abcdef',
  name: 'rlm-sandbox-abc',
  labels: { 'rlm.sandbox': 'host:1:2' },
  contextDir: '/run/user/1000/rlm-1000/abc/context',
  controlDir: '/run/user/1000/rlm-1000/abc/control',
  args: ['--url', 'ws+unix:///run/rlm/control.sock:/'],
};

function expectInvalid(change: Partial<ContainerSpecInput> & Record<string, unknown>, option: string, message: RegExp): void {
  let error: unknown;
  try {
    buildContainerSpec({ ...input, ...change } as ContainerSpecInput);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(InvalidOptionError);
  expect(error).toMatchObject({ option, message: expect.stringMatching(message) });
}

describe('buildContainerSpec', () => {
  it('isolates the container: no network, read-only root, no capabilities, no new privileges, no IPC', () => {
    const host = buildContainerSpec(input).HostConfig!;
    expect(host.NetworkMode).toBe('none');
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.CapAdd).toEqual([]);
    expect(host.SecurityOpt).toEqual(['no-new-privileges:true']);
    expect(host.SecurityOpt!.some((o: string) => o.startsWith('seccomp'))).toBe(false);
    expect(host.Privileged).toBe(false);
    expect(host.Devices).toEqual([]);
    expect(host.IpcMode).toBe('none');
    expect(host.Init).toBe(false);
    expect(host.AutoRemove).toBe(true);
    expect(host.PublishAllPorts).toBe(false);
    expect(host.Runtime).toBeUndefined();
  });

  it('runs as 10001 with no host environment, the given args and labels', () => {
    const spec = buildContainerSpec({ ...input, labels: { a: 'b' } });
    expect(spec.User).toBe('10001:10001');
    expect(spec.Env).toEqual([]);
    expect(spec.Cmd).toEqual(input.args);
    expect(spec.Entrypoint).toBeUndefined();
    expect(spec.Labels).toEqual({ a: 'b' });
    expect(spec.name).toBe('rlm-sandbox-abc');
    expect(spec.Image).toBe(input.image);
    expect(spec.StopTimeout).toBeLessThanOrEqual(5);
  });

  it('mounts exactly the context (read-only, noexec, nosuid, nodev, through a local volume) and the control directory (read-only)', () => {
    const host = buildContainerSpec(input).HostConfig!;
    expect(host.Binds).toEqual([`${input.controlDir}:${CONTROL_MOUNT_PATH}:ro`]);
    expect(host.Mounts).toEqual([
      {
        Type: 'volume',
        Source: '',
        Target: CONTEXT_MOUNT_PATH,
        VolumeOptions: {
          NoCopy: true,
          Labels: input.labels,
          DriverConfig: { Name: 'local', Options: { type: 'none', o: 'bind,ro,noexec,nosuid,nodev', device: input.contextDir } },
        },
      },
    ]);
  });

  it('binds the context read-only under gVisor, whose kernel takes none of the host mount flags', () => {
    const host = buildContainerSpec({ ...input, runtime: 'runsc' }).HostConfig!;
    expect(host.Binds).toEqual([`${input.contextDir}:${CONTEXT_MOUNT_PATH}:ro`, `${input.controlDir}:${CONTROL_MOUNT_PATH}:ro`]);
    expect(host.Mounts).toBeUndefined();
  });

  it('applies the default limits: 1 GiB without swap, 1 CPU, 128 pids, 64 MiB noexec tmpfs, 1024 files', () => {
    const host = buildContainerSpec(input).HostConfig!;
    expect(DEFAULT_SANDBOX_LIMITS).toEqual({ memoryBytes: 2 ** 30, cpus: 1, pids: 128, tmpfsBytes: 64 * 2 ** 20 });
    expect(host.Memory).toBe(2 ** 30);
    expect(host.MemorySwap).toBe(2 ** 30);
    expect(host.NanoCpus).toBe(1e9);
    expect(host.PidsLimit).toBe(128);
    expect(host.Tmpfs).toEqual({ '/tmp': `rw,noexec,nosuid,nodev,size=${64 * 2 ** 20}` });
    expect(host.Ulimits).toContainEqual({ Name: 'nofile', Soft: 1024, Hard: 1024 });
    expect(host.Ulimits).toContainEqual({ Name: 'core', Soft: 0, Hard: 0 });
    expect(host.LogConfig?.Config?.['max-size']).toBe(String(1024 * 1024));
  });

  it('takes partial limits and a runtime', () => {
    const host = buildContainerSpec({ ...input, limits: { memoryBytes: 512 * 2 ** 20, cpus: 0.5 }, runtime: 'runsc' }).HostConfig!;
    expect(host.Memory).toBe(512 * 2 ** 20);
    expect(host.MemorySwap).toBe(512 * 2 ** 20);
    expect(host.NanoCpus).toBe(5e8);
    expect(host.PidsLimit).toBe(2 * 128 + 128);
    expect(host.Runtime).toBe('runsc');
  });

  it("gives gVisor's own host threads room under runsc: the engine's pids limit is 2 × limits.pids + 128 there, limits.pids itself under runc", () => {
    expect(buildContainerSpec({ ...input, limits: { pids: 64 } }).HostConfig?.PidsLimit).toBe(64);
    expect(buildContainerSpec({ ...input, limits: { pids: 64 }, runtime: 'runc' }).HostConfig?.PidsLimit).toBe(64);
    expect(buildContainerSpec({ ...input, limits: { pids: 64 }, runtime: 'runsc' }).HostConfig?.PidsLimit).toBe(256);
    expect(enginePidsLimit(32, 'runsc')).toBe(192);
    expect(enginePidsLimit(32, undefined)).toBe(32);
  });

  it('rejects bad inputs with errors that name the option', () => {
    expectInvalid({ limits: { memoryBytes: 1024 } }, 'limits.memoryBytes', /at least 64 MiB.*got 1024/);
    expectInvalid({ limits: { cpus: 0 } }, 'limits.cpus', /more than 0/);
    expectInvalid({ limits: { pids: 10.5 } }, 'limits.pids', /whole number/);
    expectInvalid({ limits: { tmpfsBytes: 2 ** 30 } }, 'limits.tmpfsBytes', /less than limits.memoryBytes/);
    expectInvalid({ contextDir: 'relative/dir' }, 'contextDir', /absolute path/);
    expectInvalid({ controlDir: '/tmp/a:b' }, 'controlDir', /must not contain ":"/);
    expectInvalid({ name: '-bad name' }, 'name', /Docker container name/);
    expectInvalid({ runtime: 'runsc --debug' }, 'runtime', /name of a runtime/);
    expectInvalid({ args: ['ok', 'bad\0'] }, 'args.1', /NUL/);
    expectInvalid({ image: '' }, 'image', /must name an image/);
  });

  it('does not share its arrays or labels with the input', () => {
    const labels = { a: 'b' };
    const args = ['x'];
    const spec = buildContainerSpec({ ...input, labels, args });
    args.push('y');
    labels.a = 'c';
    expect(spec.Cmd).toEqual(['x']);
    expect(spec.Labels).toEqual({ a: 'b' });
  });
});
