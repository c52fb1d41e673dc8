/**
 * Cells that look at the sandbox from the inside, shared by the rootful, rootless and gVisor
 * (`runsc`) suites, with what each must print under the runtime of this run
 * (test/support/runtime.ts).
 *
 * Where gVisor differs from Linux, the probe proves the same property another way:
 * - a write to a read-only mount fails with EACCES, not EROFS, for a non-root user: gVisor checks
 *   permissions before the mount's read-only flag (Linux the other way round). So each write probe
 *   also reads the mount's options from /proc/self/mountinfo, and prints the error code only when
 *   the mount is read-only there; a writable mount prints `mounted rw`.
 * - gVisor's /proc/self/status has no NoNewPrivs line, and Seccomp is 0 inside: Docker's seccomp
 *   profile filters the gVisor kernel (the sentry) on the host, not the cells (its runtimeArgs
 *   cannot add --oci-seccomp: Node then fails to start its threads). {@link sandboxHostProcess}
 *   shows the host side: the container's process is `runsc-sandbox`, under seccomp and
 *   no-new-privileges, as nobody.
 * - the cells see gVisor's kernel ({@link KERNEL_RELEASE_PROBE}), not the host's.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import type Dockerode from 'dockerode';
import { IS_GVISOR } from './runtime.js';

/** The error a write to a read-only mount gives the sandbox's non-root user under this run's runtime. */
export const READ_ONLY_WRITE_ERROR: string = IS_GVISOR ? 'EACCES' : 'EROFS';

/**
 * A JavaScript cell function `readOnlyWriteError(dir, file)`: tries to write `dir/file` and returns
 * the error code if `dir`'s mount is read-only in /proc/self/mountinfo, `mounted rw (<code>)` if it
 * is not, `written` if the write succeeded.
 */
const READ_ONLY_WRITE_HELPER = `
  const readOnlyWriteError = (dir, file) => {
    const fs = require('node:fs');
    const mount = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').map((l) => l.split(' ')).find((f) => f[4] === dir);
    const ro = mount !== undefined && mount[5].split(',').includes('ro');
    try { fs.writeFileSync(dir.replace(/\\/$/, '') + '/' + file, 'x'); return 'written'; } catch (e) { return ro ? e.code : 'mounted rw (' + e.code + ')'; }
  };
`;

/**
 * Prints the error of a write to the root (see {@link READ_ONLY_WRITE_ERROR}), a /tmp round trip
 * (ok), and /tmp's noexec. {@link READ_ONLY_ROOT_EXPECTED} is what it prints.
 */
export const READ_ONLY_ROOT_PROBE = `${READ_ONLY_WRITE_HELPER}
  const fs = require('node:fs');
  print(readOnlyWriteError('/', 'etc-evil'));
  fs.writeFileSync('/tmp/scratch', 'ok'); print(fs.readFileSync('/tmp/scratch', 'utf8'));
  const tmp = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').find((l) => l.split(' ')[4] === '/tmp');
  print(tmp.includes('noexec') ? 'noexec' : 'exec allowed');
`;

/** The lines {@link READ_ONLY_ROOT_PROBE} prints under this run's runtime. */
export const READ_ONLY_ROOT_EXPECTED: readonly string[] = Object.freeze([READ_ONLY_WRITE_ERROR, 'ok', 'noexec']);

/** Prints `<mount point> <write error>` for /context and /run/rlm, each checked like the root. */
export const READ_ONLY_MOUNTS_PROBE = `${READ_ONLY_WRITE_HELPER}
  for (const dir of ['/context', '/run/rlm']) print(dir + ' ' + readOnlyWriteError(dir, 'planted'));
`;

/** The lines {@link READ_ONLY_MOUNTS_PROBE} prints under this run's runtime. */
export const READ_ONLY_MOUNTS_EXPECTED: readonly string[] = Object.freeze([`/context ${READ_ONLY_WRITE_ERROR}`, `/run/rlm ${READ_ONLY_WRITE_ERROR}`]);

/**
 * Prints, space-separated: uid, gid, and the CapEff, CapBnd, NoNewPrivs and Seccomp fields of
 * /proc/self/status (`-` for a field the kernel does not show).
 */
export const PROCESS_HARDENING_PROBE = `
  const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
  const field = (n) => status.match(new RegExp('^' + n + ':\\\\s*(.*)$', 'm'))?.[1] ?? '-';
  print(process.getuid(), process.getgid(), field('CapEff'), field('CapBnd'), field('NoNewPrivs'), field('Seccomp'));
`;

/** What {@link PROCESS_HARDENING_PROBE} shows of no-new-privileges and seccomp under this run's runtime. */
export const IN_SANDBOX_HARDENING_EXPECTED: Readonly<{ noNewPrivs: string; seccomp: string }> = Object.freeze(
  IS_GVISOR ? { noNewPrivs: '-', seccomp: '0' } : { noNewPrivs: '1', seccomp: '2' },
);

/** Prints the kernel release the cell sees. */
export const KERNEL_RELEASE_PROBE = `print(require('node:os').release())`;

/** Whether `release`, printed by {@link KERNEL_RELEASE_PROBE}, is what this run's runtime shows: gVisor's own kernel, or the host's. */
export function isExpectedKernelRelease(release: string): boolean {
  return IS_GVISOR ? release !== os.release() : release === os.release();
}

/** The container's main process as the host sees it. */
export interface SandboxHostProcess {
  /** argv[0], e.g. `runsc-sandbox` under gVisor, the REPL's node under runc. */
  command: string;
  /** Real uid on the host. */
  uid: number;
  /** `/proc/<pid>/status` NoNewPrivs and Seccomp fields (`2`: a filter). */
  noNewPrivs: string;
  seccomp: string;
}

/**
 * Reads the container's main process (`State.Pid`) from the host's /proc: under gVisor that is
 * the sandbox (the sentry, which runs every cell), whose confinement is the boundary.
 * Needs the engine's pid namespace to be this one's (a rootful engine on this host).
 */
export async function sandboxHostProcess(docker: Dockerode, containerId: string): Promise<SandboxHostProcess> {
  const pid = (await docker.getContainer(containerId).inspect()).State.Pid;
  const [cmdline, status] = await Promise.all([readFile(`/proc/${pid}/cmdline`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? '-';
  return {
    command: cmdline.split('\0')[0] ?? '',
    uid: Number(field('Uid').split(/\s+/)[0]),
    noNewPrivs: field('NoNewPrivs'),
    seccomp: field('Seccomp'),
  };
}
