/**
 * Looks at a running sandbox from the inside and from the Docker engine, and reports each
 * property of the security model as passed or failed. Used by `rlm sandbox check`.
 *
 * "From the inside" is a process the probe starts in the sandbox's container (docker exec): it has
 * the container's user, capabilities, seccomp filter, no-new-privileges, namespaces and mounts, but
 * not the Node permission model the cells run under, which would hide most of what is checked
 * (/proc, the file system). So it sees what a cell that got past that model would meet: the
 * container's boundary.
 */
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { CONTEXT_MOUNT_PATH, CONTROL_MOUNT_PATH } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { z } from 'zod';
import { AbortedError, RlmError, SandboxError } from '../errors.js';
import { GVISOR_RUNTIMES } from './container-spec.js';
import { describeDockerError } from './docker-client.js';
import { IMAGE_NODE_PATH } from './image/node-runtime.js';
import type { Sandbox } from './sandbox.js';

const DOCKER_SET_VARIABLES = new Set(['PATH', 'HOSTNAME', 'HOME']);

/** One check of {@link checkIsolation}: its name, whether the sandbox passed it, and what was seen. */
export interface IsolationFinding {
  /** What was checked, e.g. `root filesystem read-only`, `non-root user`, `no Docker socket`. */
  name: string;
  /** True when the sandbox passed the check. */
  ok: boolean;
  /** What was seen, for a person: `uid 1000, gid 1000`, `Seccomp mode 2 (2 = filter)`. */
  detail: string;
}

// Runs inside the container; everything it needs is a Node built-in.
const PROBE = String.raw`
const print = (text) => process.stdout.write(text + '\n');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const status = fs.readFileSync('/proc/self/status', 'utf8');
const field = (name) => (status.match(new RegExp('^' + name + ':\\s*(.*)$', 'm')) || [])[1];
let rootWritable = true;
try { fs.writeFileSync('/probe-' + process.pid, 'x'); } catch (e) { rootWritable = e.code !== 'EROFS' && e.code !== 'EACCES'; }
let tmpWritable = false;
try { fs.writeFileSync('/tmp/probe', 'x'); fs.rmSync('/tmp/probe'); tmpWritable = true; } catch {}
const hostPort = Number(PROBE_HOST_PORT);
const reach = await new Promise((resolve) => {
  const socket = net.connect({ host: '127.0.0.1', port: hostPort, timeout: 1000 });
  socket.on('connect', () => { socket.destroy(); resolve('connected'); });
  socket.on('error', (e) => resolve(e.code));
  socket.on('timeout', () => { socket.destroy(); resolve('timeout'); });
});
// The limits as the kernel sees them, where the container can read its cgroup (cgroup v2, then v1).
const cgroup = (...paths) => { for (const p of paths) { try { return fs.readFileSync(p, 'utf8').trim(); } catch {} } return null; };
const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').trim().split('\n').map((l) => {
  const parts = l.split(' ');
  return { target: parts[4], options: parts[5], fstype: parts[parts.indexOf('-') + 1] };
});
print(JSON.stringify({
  interfaces: Object.keys(os.networkInterfaces()),
  uid: process.getuid(), gid: process.getgid(),
  rootWritable, tmpWritable,
  capEff: field('CapEff'), noNewPrivs: field('NoNewPrivs'), seccomp: field('Seccomp'),
  env: process.env,
  dockerSocket: fs.existsSync('/var/run/docker.sock') || fs.existsSync('/run/docker.sock'),
  shell: ['/bin/sh', '/bin/bash', '/usr/bin/sh', '/bin/busybox'].filter((p) => fs.existsSync(p)),
  hostLoopback: reach,
  cgroup: {
    memory: cgroup('/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes'),
    cpu: cgroup('/sys/fs/cgroup/cpu.max', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us', '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us'),
    pids: cgroup('/sys/fs/cgroup/pids.max', '/sys/fs/cgroup/pids/pids.max'),
  },
  mounts: mounts.filter((m) => !['proc', 'sysfs', 'cgroup', 'cgroup2', 'mqueue', 'devpts', 'tmpfs'].includes(m.fstype) || m.target === '/tmp'),
}));
`;

const ProbeResult = z.object({
  interfaces: z.array(z.string()),
  uid: z.number(),
  gid: z.number(),
  rootWritable: z.boolean(),
  tmpWritable: z.boolean(),
  capEff: z.string().optional(),
  noNewPrivs: z.string().optional(),
  seccomp: z.string().optional(),
  env: z.record(z.string(), z.string()),
  dockerSocket: z.boolean(),
  shell: z.array(z.string()),
  hostLoopback: z.string(),
  mounts: z.array(z.object({ target: z.string(), options: z.string(), fstype: z.string() })),
  cgroup: z.object({ memory: z.string().nullable(), cpu: z.string().nullable(), pids: z.string().nullable() }),
});

/**
 * Whether a cgroup limit file says "no limit": `max` (v2 memory, pids), `max <period>` (v2 cpu),
 * `-1` (v1 cpu quota), or a v1 memory limit of 2^63 rounded down to a page. Null for no file.
 */
function unlimited(value: string | null): boolean | null {
  if (value === null) return null;
  const first = value.split(/\s+/)[0] ?? '';
  if (first === 'max' || first === '-1') return true;
  const n = Number(first);
  return Number.isFinite(n) && n >= 2 ** 62;
}

/**
 * Runs the probe in `sandbox` and inspects its container.
 *
 * @param hostPort a port listening on the host's 127.0.0.1, which the container must not reach.
 * @throws {AbortedError} `options.signal` fired.
 * @throws {SandboxError} the probe could not run or did not finish within 30 s, or the engine
 *   refused to describe the container; the message says which.
 */
export async function checkIsolation(
  sandbox: Sandbox,
  docker: Dockerode,
  hostPort: number,
  options: { signal?: AbortSignal } = {},
): Promise<IsolationFinding[]> {
  try {
    return await inspectIsolation(sandbox, docker, hostPort, options);
  } catch (error) {
    if (RlmError.isInstance(error)) throw error;
    if (options.signal?.aborted) throw new AbortedError('the isolation check was cancelled', { cause: error });
    throw new SandboxError(`the isolation check of sandbox ${sandbox.id} failed: ${describeDockerError(error)}`, sandbox.id, { cause: error });
  }
}

async function inspectIsolation(sandbox: Sandbox, docker: Dockerode, hostPort: number, options: { signal?: AbortSignal }): Promise<IsolationFinding[]> {
  const container = docker.getContainer(sandbox.containerId ?? '');
  const output = await runInContainer(container, `(async () => {\nconst PROBE_HOST_PORT = ${hostPort};\n${PROBE}\n})()`, options.signal);
  if (output.exitCode !== 0) {
    throw new SandboxError(`the isolation probe failed in the sandbox (exit ${output.exitCode}): ${output.stderr.slice(-2000)}`, sandbox.id);
  }
  const probe = ProbeResult.parse(JSON.parse(output.stdout));
  const info = await container.inspect();
  const host = info.HostConfig;
  // Docker itself sets PATH, HOSTNAME and HOME (from the image's passwd); anything else, or a value
  // equal to the host's, came from the host.
  const leaked = Object.entries(probe.env)
    .filter(([name, value]) => !DOCKER_SET_VARIABLES.has(name) || (name !== 'PATH' && value === process.env[name]))
    .map(([name]) => name);
  const binds = host.Binds ?? [];
  // The context is a local-driver volume bind-mounted with these flags (see container-spec.ts).
  const mounts = host.Mounts ?? [];
  const contextOptions = mounts.find((m) => m.Target === CONTEXT_MOUNT_PATH)?.VolumeOptions?.DriverConfig?.Options?.o ?? '';
  const contextFlags = ['ro', 'noexec', 'nosuid', 'nodev'].filter((flag) => !contextOptions.split(',').includes(flag));
  const gvisor = host.Runtime !== undefined && GVISOR_RUNTIMES.has(host.Runtime);
  // The engine may accept limits, show them in `docker inspect` and apply none of them (rootless on
  // cgroup v1): a limit passes only when it was requested, the engine enforces limits, and the
  // container's own cgroup, where readable, does not say "unlimited".
  const limit = (name: string, requested: boolean, cgroupValue: string | null, detail: string) => {
    const why = sandbox.unenforcedLimitsReason ?? (unlimited(cgroupValue) === true ? `the container's cgroup says ${cgroupValue}` : undefined);
    return finding(name, requested && why === undefined, why ? `${detail} requested, NOT enforced: ${why}` : detail);
  };
  return [
    finding(
      'network: loopback only',
      probe.interfaces.length === 1 && probe.interfaces[0] === 'lo',
      `interfaces: ${probe.interfaces.join(', ')}; NetworkMode ${host.NetworkMode}`,
    ),
    finding(
      "host's loopback unreachable",
      probe.hostLoopback !== 'connected',
      `connect to the host's 127.0.0.1:${hostPort} from inside: ${probe.hostLoopback}`,
    ),
    finding('root filesystem read-only', !probe.rootWritable && host.ReadonlyRootfs === true, `write to / ${probe.rootWritable ? 'succeeded' : 'refused'}`),
    finding(
      'scratch /tmp writable, size-limited',
      probe.tmpWritable && Boolean(host.Tmpfs?.['/tmp']?.includes('size=')),
      `tmpfs /tmp: ${host.Tmpfs?.['/tmp'] ?? 'none'}`,
    ),
    finding('non-root user', probe.uid !== 0 && probe.gid !== 0, `uid ${probe.uid}, gid ${probe.gid}`),
    finding('all capabilities dropped', /^0+$/.test(probe.capEff ?? ''), `CapEff ${probe.capEff}`),
    ...(gvisor
      ? sentryFindings(info.State.Pid)
      : [
          finding('no-new-privileges', probe.noNewPrivs === '1', `NoNewPrivs ${probe.noNewPrivs}`),
          finding('seccomp filter active', probe.seccomp === '2', `Seccomp mode ${probe.seccomp} (2 = filter)`),
        ]),
    finding(
      'no host environment',
      leaked.length === 0,
      `variables inside: ${Object.keys(probe.env).join(', ') || 'none'}${leaked.length ? `; from the host: ${leaked.join(', ')}` : ''}`,
    ),
    finding('no Docker socket', !probe.dockerSocket, probe.dockerSocket ? 'a Docker socket is visible' : 'absent'),
    finding('no shell', probe.shell.length === 0, probe.shell.length ? `found ${probe.shell.join(', ')}` : 'no /bin/sh, bash or busybox'),
    gvisor
      ? finding(
          'only the context and control mounts, read-only',
          binds.length === 2 &&
            binds.some((b) => b.endsWith(`:${CONTEXT_MOUNT_PATH}:ro`)) &&
            binds.some((b) => b.endsWith(`:${CONTROL_MOUNT_PATH}:ro`)) &&
            mounts.length === 0,
          `${binds.join('; ')} (under gVisor; noexec does not apply there)`,
        )
      : finding(
          'only the context (ro, noexec, nosuid, nodev) and control (ro) mounts',
          binds.length === 1 && binds[0]?.endsWith(`:${CONTROL_MOUNT_PATH}:ro`) === true && mounts.length === 1 && contextFlags.length === 0,
          `binds: ${binds.join('; ') || 'none'}; ${CONTEXT_MOUNT_PATH}: ${contextOptions || 'not a volume'}${contextFlags.length ? ` (missing ${contextFlags.join(', ')})` : ''}`,
        ),
    limit(
      'memory limit',
      (host.Memory ?? 0) > 0 && host.MemorySwap === host.Memory,
      probe.cgroup.memory,
      `${Math.round((host.Memory ?? 0) / 1048576)} MiB, swap ${host.MemorySwap === host.Memory ? 'none' : String(host.MemorySwap)}`,
    ),
    limit('cpu limit', (host.NanoCpus ?? 0) > 0, probe.cgroup.cpu, `${(host.NanoCpus ?? 0) / 1e9} CPUs`),
    limit('pids limit', (host.PidsLimit ?? 0) > 0, probe.cgroup.pids, `${host.PidsLimit} processes`),
  ];
}

/** Most output of the probe kept, per stream: its JSON is a few KiB. */
const MAX_PROBE_OUTPUT_CHARS = 1024 * 1024;

/**
 * Runs `script` with the image's Node in a new process of `container` (as its user), and collects
 * its output and exit code. Gives up after 30 s or when `signal` fires.
 */
async function runInContainer(
  container: Dockerode.Container,
  script: string,
  signal: AbortSignal | undefined,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const timeout = AbortSignal.timeout(30_000);
  const abort = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const exec = await container.exec({ Cmd: [IMAGE_NODE_PATH, '-e', script], AttachStdout: true, AttachStderr: true, abortSignal: abort });
  const stream = await exec.start({ hijack: true, stdin: false, abortSignal: abort });
  const collect = () => {
    let text = '';
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => {
      if (text.length < MAX_PROBE_OUTPUT_CHARS) text += chunk.toString('utf8');
    });
    return { sink, text: () => text };
  };
  const out = collect();
  const err = collect();
  container.modem.demuxStream(stream, out.sink, err.sink);
  await new Promise<void>((resolve, reject) => {
    const onAbort = () =>
      reject(
        signal?.aborted
          ? new AbortedError('the isolation check was cancelled', { cause: signal.reason })
          : new SandboxError('the isolation probe did not finish within 30 s; the sandbox may be overloaded: run `rlm sandbox check` again', undefined, {
              cause: abort.reason,
            }),
      );
    abort.addEventListener('abort', onAbort, { once: true });
    const done = () => {
      abort.removeEventListener('abort', onAbort);
      resolve();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, stdout: out.text(), stderr: err.text() };
}

/**
 * Under gVisor the cells' kernel is gVisor's own, which shows no NoNewPrivs and seccomp mode 0
 * inside; Docker's seccomp profile and no-new-privileges confine gVisor's sandbox process on the
 * host instead. That process (the container's `State.Pid`) is read from this host's /proc, which
 * works when the engine runs here.
 */
function sentryFindings(pid: number | undefined): IsolationFinding[] {
  let status: string | undefined;
  try {
    status = pid ? readFileSync(`/proc/${pid}/status`, 'utf8') : undefined;
  } catch {
    status = undefined;
  }
  const field = (name: string) => (status === undefined ? undefined : new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim());
  const where =
    status === undefined ? "gVisor's sandbox process is not visible from here (an engine on another machine?)" : "gVisor's sandbox process on the host";
  return [
    finding('no-new-privileges', field('NoNewPrivs') === '1', `NoNewPrivs ${field('NoNewPrivs') ?? 'unknown'} (${where})`),
    finding('seccomp filter active', field('Seccomp') === '2', `Seccomp mode ${field('Seccomp') ?? 'unknown'} (2 = filter; ${where})`),
  ];
}

function finding(name: string, ok: boolean, detail: string): IsolationFinding {
  return { name, ok, detail };
}
