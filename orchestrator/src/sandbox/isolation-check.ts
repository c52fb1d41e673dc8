/**
 * Looks at a running sandbox from the inside and from the Docker engine, and reports each
 * property of the security model as passed or failed. Used by `rlm sandbox check`.
 */
import type Dockerode from 'dockerode';
import { z } from 'zod';
import type { Sandbox } from './sandbox.js';

const DOCKER_SET_VARIABLES = new Set(['PATH', 'HOSTNAME', 'HOME']);

export interface IsolationFinding {
  name: string;
  ok: boolean;
  detail: string;
}

// Runs inside the container; everything it needs is a Node built-in.
const PROBE = String.raw`
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
 */
export async function checkIsolation(
  sandbox: Sandbox,
  docker: Dockerode,
  hostPort: number,
  options: { signal?: AbortSignal } = {},
): Promise<IsolationFinding[]> {
  const result = await sandbox.execute(`const PROBE_HOST_PORT = ${hostPort};\n${PROBE}`, {
    timeoutMs: 15_000,
    outputLimitChars: 100_000,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (result.status !== 'ok') {
    throw new Error(`the isolation probe failed in the sandbox: ${result.error?.type}: ${result.error?.message}`);
  }
  const probe = ProbeResult.parse(JSON.parse(result.stdout.text));
  const info = await docker.getContainer(sandbox.containerId ?? '').inspect();
  const host = info.HostConfig;
  // Docker itself sets PATH, HOSTNAME and HOME (from the image's passwd); anything else, or a value
  // equal to the host's, came from the host.
  const leaked = Object.entries(probe.env)
    .filter(([name, value]) => !DOCKER_SET_VARIABLES.has(name) || (name !== 'PATH' && value === process.env[name]))
    .map(([name]) => name);
  const binds = host.Binds ?? [];
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
    finding('no-new-privileges', probe.noNewPrivs === '1', `NoNewPrivs ${probe.noNewPrivs}`),
    finding('seccomp filter active', probe.seccomp === '2', `Seccomp mode ${probe.seccomp} (2 = filter)`),
    finding(
      'no host environment',
      leaked.length === 0,
      `variables inside: ${Object.keys(probe.env).join(', ') || 'none'}${leaked.length ? `; from the host: ${leaked.join(', ')}` : ''}`,
    ),
    finding('no Docker socket', !probe.dockerSocket, probe.dockerSocket ? 'a Docker socket is visible' : 'absent'),
    finding('no shell', probe.shell.length === 0, probe.shell.length ? `found ${probe.shell.join(', ')}` : 'no /bin/sh, bash or busybox'),
    finding('only the context (ro) and control mounts', binds.length === 2 && binds.some((b) => b.endsWith(':/context:ro')), binds.join('; ')),
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

function finding(name: string, ok: boolean, detail: string): IsolationFinding {
  return { name, ok, detail };
}
