/**
 * The container a sandbox runs in, as a Docker create request. Every isolation setting lives here,
 * in one pure function, so it can be read — and tested — in one place.
 */
import path from 'node:path';
import { CONTEXT_MOUNT_PATH, CONTROL_MOUNT_PATH } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { z } from 'zod';
import { InvalidOptionError } from '../errors.js';
import { SANDBOX_USER } from './image/build-context.js';

/** Resource limits of one sandbox container. */
export interface SandboxLimits {
  /** Memory the container may use, tmpfs included, in bytes; no swap on top. Default 1 GiB. */
  memoryBytes: number;
  /** CPU time as a number of cores (fractions allowed). Default 1. */
  cpus: number;
  /** Most processes and threads alive at once. Node needs about 20; default 128. Under gVisor the engine is given more, for gVisor's own threads: see {@link enginePidsLimit}. */
  pids: number;
  /** Size of the scratch tmpfs at `/tmp`, in bytes; counts against `memoryBytes`. Default 64 MiB. */
  tmpfsBytes: number;
}

/** A sandbox's container limits when none are given: 1 GiB of memory, 1 CPU, 128 processes, a 64 MiB `/tmp`; frozen. */
export const DEFAULT_SANDBOX_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  memoryBytes: 1024 * 1024 * 1024,
  cpus: 1,
  pids: 128,
  tmpfsBytes: 64 * 1024 * 1024,
});

/** Open files per process in the sandbox. */
export const SANDBOX_NOFILE_LIMIT = 1024;

/** Seconds `docker stop` waits before killing the sandbox. */
export const SANDBOX_STOP_TIMEOUT_SECONDS = 2;

/** Bytes of stdout/stderr the engine keeps for a sandbox container, so a chatty cell cannot fill the host's disk. */
export const SANDBOX_LOG_MAX_BYTES = 1024 * 1024;

const MiB = 1024 * 1024;

// Bind specs are `source:target:options`, so a colon in a host path would be misread; a newline or
// NUL would be refused by the engine with a less helpful message.
const hostDir = z
  .string()
  .refine((p) => path.isAbsolute(p), 'must be an absolute path')
  .refine((p) => !/[:\n\0]/.test(p), 'must not contain ":", a newline or NUL (Docker bind syntax)');

const limitsSchema = z.object({
  memoryBytes: z
    .number()
    .int('must be a whole number of bytes')
    .min(64 * MiB, 'must be at least 64 MiB (67108864); Node needs about 50 MiB to start'),
  cpus: z.number().positive('must be more than 0').max(1024, 'must be at most 1024'),
  pids: z.number().int('must be a whole number').min(32, 'must be at least 32; Node starts about 20 threads').max(1_000_000),
  tmpfsBytes: z.number().int('must be a whole number of bytes').min(MiB, 'must be at least 1 MiB (1048576)'),
});

const inputSchema = z.object({
  image: z.string().min(1, 'must name an image'),
  name: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,252}$/, 'must be a Docker container name: letters, digits, "_", "." and "-", starting with a letter or digit'),
  labels: z.record(z.string().min(1, 'label keys must not be empty'), z.string()),
  contextDir: hostDir,
  controlDir: hostDir,
  args: z.array(z.string().refine((a) => !a.includes('\0'), 'must not contain NUL')),
  limits: limitsSchema.partial().optional(),
  runtime: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'must be the name of a runtime the engine knows, e.g. runsc')
    .optional(),
});

export interface ContainerSpecInput {
  image: string;
  /** Container name; unique on the engine. */
  name: string;
  /** Labels, owner labels from `sandboxOwnerLabels()` included. */
  labels: Record<string, string>;
  /** Host directory mounted at `CONTEXT_MOUNT_PATH`: read-only, noexec, nosuid, nodev. */
  contextDir: string;
  /** Host directory holding the control socket (the host listens on it), mounted read-only at `CONTROL_MOUNT_PATH`. */
  controlDir: string;
  /** Arguments appended to the image's entrypoint (the REPL server). */
  args: string[];
  /** Unset fields take {@link DEFAULT_SANDBOX_LIMITS}. */
  limits?: Partial<SandboxLimits>;
  /** OCI runtime, e.g. `runsc` for gVisor; default: the engine's default (runc). */
  runtime?: string;
}

/**
 * The create request for a sandbox container: no network, read-only root, a small noexec tmpfs at
 * `/tmp`, every capability dropped, no-new-privileges, Docker's default seccomp profile (never
 * overridden), user 10001, memory without swap, CPU, pids and open-file limits, no host
 * environment, and exactly two mounts, both read-only: the context (also noexec, nosuid, nodev,
 * except under gVisor, see {@link GVISOR_RUNTIMES}) and the control directory. The container
 * removes itself, and its context volume, when it stops.
 *
 * @throws InvalidOptionError naming the offending field (e.g. `limits.memoryBytes`).
 */
export function buildContainerSpec(input: ContainerSpecInput): Dockerode.ContainerCreateOptions {
  const parsed = inputSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const option = issue && issue.path.length > 0 ? issue.path.join('.') : 'containerSpec';
    throw new InvalidOptionError(option, `${issue?.message ?? 'invalid'} (got ${describe(valueAt(input, issue?.path ?? []))})`, {
      cause: parsed.error,
    });
  }
  const { image, name, labels, contextDir, controlDir, args, runtime } = parsed.data;
  const limits: SandboxLimits = { ...DEFAULT_SANDBOX_LIMITS, ...stripUndefined(parsed.data.limits ?? {}) };
  if (limits.tmpfsBytes >= limits.memoryBytes) {
    throw new InvalidOptionError(
      'limits.tmpfsBytes',
      `must be less than limits.memoryBytes (${limits.memoryBytes}), since files in /tmp count as the container's memory (got ${limits.tmpfsBytes})`,
    );
  }

  return {
    name,
    Image: image,
    Cmd: [...args],
    // Nothing of the host's environment, and no secrets, ever reach the sandbox.
    Env: [],
    User: SANDBOX_USER,
    Labels: { ...labels },
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    StopTimeout: SANDBOX_STOP_TIMEOUT_SECONDS,
    HostConfig: {
      NetworkMode: 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': `rw,noexec,nosuid,nodev,size=${limits.tmpfsBytes}` },
      CapDrop: ['ALL'],
      CapAdd: [],
      // Leaving out `seccomp=…` keeps Docker's default seccomp profile in force.
      SecurityOpt: ['no-new-privileges:true'],
      Privileged: false,
      Devices: [],
      Memory: limits.memoryBytes,
      MemorySwap: limits.memoryBytes,
      NanoCpus: Math.round(limits.cpus * 1e9),
      PidsLimit: enginePidsLimit(limits.pids, runtime),
      Ulimits: [
        { Name: 'nofile', Soft: SANDBOX_NOFILE_LIMIT, Hard: SANDBOX_NOFILE_LIMIT },
        { Name: 'core', Soft: 0, Hard: 0 },
      ],
      // No /dev/shm and no shared IPC namespace: nothing in the sandbox needs System V or POSIX shm.
      IpcMode: 'none',
      // The control directory is read-only too: the host listens on the socket and connecting to a
      // socket needs write permission on the socket, not a writable mount. Read-only, a cell cannot
      // fill the host's runtime directory or plant files beside the socket.
      ...(runtime !== undefined && GVISOR_RUNTIMES.has(runtime)
        ? // gVisor's kernel opens the context's files itself and takes none of the host mount's flags:
          // a plain read-only bind gives it read-only, and noexec is not to be had there.
          { Binds: [`${contextDir}:${CONTEXT_MOUNT_PATH}:ro`, `${controlDir}:${CONTROL_MOUNT_PATH}:ro`] }
        : { Binds: [`${controlDir}:${CONTROL_MOUNT_PATH}:ro`], Mounts: [contextMount(contextDir, labels)] }),
      AutoRemove: true,
      Init: false,
      PublishAllPorts: false,
      LogConfig: { Type: 'json-file', Config: { 'max-size': String(SANDBOX_LOG_MAX_BYTES), 'max-file': '1' } },
      ...(runtime ? { Runtime: runtime } : {}),
    },
  };
}

/**
 * The context directory as an anonymous volume of the `local` driver that bind-mounts it with
 * `ro,noexec,nosuid,nodev`. A plain bind mount cannot carry noexec (Docker's bind options are
 * read-only and propagation only), and a bind of a read-only source with Docker's own `ro` flag is
 * remounted with exactly that flag, which drops the others. The local driver mounts the directory
 * with all four flags (the daemon does it, so it works for an unprivileged host process and inside a
 * rootless daemon's namespace), and the container's bind of that mount, left without Docker's `ro`
 * (which anonymous volumes refuse anyway), keeps them: the mount is read-only in the kernel even
 * though `docker inspect` lists it as RW. Anonymous, the volume is removed with the container
 * (AutoRemove, or removal with `v`); the labels let a reaper find one a crash left behind.
 * `NoCopy`: the daemon must never copy the image's `/context` into the host directory.
 */
function contextMount(contextDir: string, labels: Record<string, string>): Dockerode.MountSettings {
  return {
    Type: 'volume',
    // No name: an anonymous volume, which the engine removes with its container.
    Source: '',
    Target: CONTEXT_MOUNT_PATH,
    VolumeOptions: {
      NoCopy: true,
      Labels: { ...labels },
      DriverConfig: { Name: 'local', Options: { type: 'none', o: CONTEXT_MOUNT_OPTIONS, device: contextDir } },
    },
  };
}

/** How the context directory is mounted (see {@link contextMount}). */
export const CONTEXT_MOUNT_OPTIONS = 'bind,ro,noexec,nosuid,nodev';

/**
 * Runtime names that run gVisor. Its kernel (the sentry) opens mounted files through its own file
 * proxy and applies only the mount options of the container's spec, so the host mount's noexec,
 * nosuid and nodev mean nothing inside it, and Docker has no way to put them in the spec: the
 * context gets a plain read-only bind there.
 */
export const GVISOR_RUNTIMES: ReadonlySet<string> = new Set(['runsc']);

/**
 * Host threads the engine's pids limit must leave gVisor beyond twice the sandbox's own
 * `limits.pids`: see {@link enginePidsLimit}.
 */
export const GVISOR_PIDS_HEADROOM = 128;

/**
 * The pids limit the engine gets for a sandbox whose processes and threads may number `pids`.
 * Under runc, `pids` itself. Under gVisor the engine counts the sandbox's host threads, and those
 * are mostly gVisor's own: its kernel's and file proxy's threads and, on the ptrace platform, host
 * threads for each of the sandbox's threads (an idle Python sandbox: 17 pids under runc, about 105
 * under runsc 20221219 with ptrace on 2 cores). Given only `pids`, gVisor ran out of threads when a
 * cell's process was restarted (the sentry panics, "error initializing first thread: resource
 * temporarily unavailable", and the container exits with 2). So there it gets
 * `2 × pids + GVISOR_PIDS_HEADROOM`: the cells keep about the room `pids` gives them under runc, and
 * a fork bomb is still bounded.
 */
export function enginePidsLimit(pids: number, runtime: string | undefined): number {
  return runtime !== undefined && GVISOR_RUNTIMES.has(runtime) ? 2 * pids + GVISOR_PIDS_HEADROOM : pids;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function valueAt(root: unknown, keys: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of keys) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    const json = JSON.stringify(value);
    return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    return typeof value;
  }
}
