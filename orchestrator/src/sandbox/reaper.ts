/**
 * Who owns a sandbox container, and removing the ones whose owner is gone.
 *
 * Every sandbox container carries `rlm.sandbox=<host>:<pid>:<start time>`. The start time (field
 * 22 of `/proc/<pid>/stat`, in clock ticks since boot) tells a live owner from an unrelated
 * process that reused its pid. Containers remove themselves when their REPL server exits, so what
 * is left to reap is what a crashed host process left running or never started: containers, the
 * anonymous volumes that mount their context (labelled the same way), and state directories.
 */
import { readFileSync } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { AbortedError, DockerUnavailableError, errorCode, errorMessage, SandboxError } from '../errors.js';
import { debug, warn } from '../logging.js';
import { describeDockerError, describeDockerHost, dockerStatusCode } from './docker-client.js';

/** Label on every sandbox container; its value is the owner, `<host>:<pid>:<start time>`. */
export const SANDBOX_LABEL = 'rlm.sandbox';
export const OWNER_HOST_LABEL = 'rlm.owner.host';
export const OWNER_PID_LABEL = 'rlm.owner.pid';
/** ISO 8601 time the labels were made. */
export const CREATED_LABEL = 'rlm.created';
/** The Sandbox id; also the name of its directory under {@link sandboxStateRoot}. */
export const SANDBOX_ID_LABEL = 'rlm.sandbox.id';

/** File in a sandbox's state directory holding its owner string. */
export const SANDBOX_OWNER_FILE = 'owner';

/** A state directory without an owner file and without a container is left alone this long (it may be being set up). */
const UNOWNED_STATE_DIR_GRACE_MS = 60 * 60 * 1000;

export interface SandboxOwner {
  host: string;
  pid: number;
  /** Clock ticks since boot when the process started; undefined where `/proc` is missing. */
  startTime: string | undefined;
}

/**
 * The start time of `pid` (field 22 of `/proc/<pid>/stat`), or undefined when it cannot be read
 * (no such process, or no `/proc`).
 */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 (the command name) is in parentheses and may itself hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the name, field 3 is at index 0, so field 22 is at index 19.
  return fields[19];
}

let ownOwner: string | undefined;

/** This process as an owner string, `<hostname>:<pid>:<start time>`. */
export function currentOwner(): string {
  ownOwner ??= formatOwner({ host: os.hostname(), pid: process.pid, startTime: processStartTime(process.pid) });
  return ownOwner;
}

export function formatOwner(owner: SandboxOwner): string {
  return `${owner.host}:${owner.pid}:${owner.startTime ?? 'unknown'}`;
}

/** Parses an owner string; undefined when it is not one. Host names never contain `:`. */
export function parseOwner(value: string): SandboxOwner | undefined {
  const match = /^([^:]+):(\d+):(\d+|unknown)$/.exec(value.trim());
  if (!match) return undefined;
  const [, host, pid, startTime] = match as unknown as [string, string, string, string];
  return { host, pid: Number(pid), startTime: startTime === 'unknown' ? undefined : startTime };
}

/**
 * Whether the owner still runs: `dead` when it is on this host and its pid is gone or now belongs
 * to a process that started at another time; `unknown` for another host or an unreadable label
 * (never reaped, except by `pruneSandboxes({ all: true })`).
 */
export function ownerStatus(owner: string): 'alive' | 'dead' | 'unknown' {
  const parsed = parseOwner(owner);
  if (!parsed || parsed.host !== os.hostname()) return 'unknown';
  if (!pidExists(parsed.pid)) return 'dead';
  if (parsed.startTime !== undefined) {
    const now = processStartTime(parsed.pid);
    if (now !== undefined && now !== parsed.startTime) return 'dead';
  }
  return 'alive';
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(error) === 'EPERM';
  }
}

/**
 * The labels every sandbox container must carry: `rlm.sandbox` (owner), `rlm.owner.host`,
 * `rlm.owner.pid` and `rlm.created`.
 */
export function sandboxOwnerLabels(): Record<string, string> {
  const owner = currentOwner();
  return {
    [SANDBOX_LABEL]: owner,
    [OWNER_HOST_LABEL]: os.hostname(),
    [OWNER_PID_LABEL]: String(process.pid),
    [CREATED_LABEL]: new Date().toISOString(),
  };
}

/** Where sandbox state directories live, without creating it: `$XDG_RUNTIME_DIR/rlm-<uid>`, else `<tmpdir>/rlm-<uid>`. */
export function sandboxStateRootPath(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  return path.join(process.env.XDG_RUNTIME_DIR || os.tmpdir(), `rlm-${uid}`);
}

/**
 * The directory holding one subdirectory per sandbox (named by sandbox id), created mode 0700.
 *
 * @throws SandboxError when it exists but is not a directory owned by this user (on a shared
 *   `/tmp` another user could have planted it), or cannot be created.
 */
export async function sandboxStateRoot(): Promise<string> {
  const root = sandboxStateRootPath();
  try {
    await mkdir(root, { recursive: true, mode: 0o700 });
    const info = await lstat(root);
    const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
    if (!info.isDirectory() || (uid !== undefined && info.uid !== uid)) {
      throw new Error('it exists but is not a directory owned by this user; remove it');
    }
    if ((info.mode & 0o077) !== 0) {
      throw new Error(`its mode is ${(info.mode & 0o777).toString(8)}, open to other users; chmod 700 it`);
    }
  } catch (error) {
    throw new SandboxError(`cannot use the sandbox state directory ${root}: ${errorMessage(error)}`, undefined, { cause: error });
  }
  return root;
}

/**
 * Creates `<state root>/<sandboxId>` (mode 0755, so the container's user can reach the socket
 * directory inside) with an `owner` file, which lets the reaper remove it if this process dies.
 */
export async function createSandboxStateDir(sandboxId: string, stateRoot?: string): Promise<string> {
  const dir = path.join(stateRoot ?? (await sandboxStateRoot()), sandboxId);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(path.join(dir, SANDBOX_OWNER_FILE), `${currentOwner()}\n`, { mode: 0o644 });
  return dir;
}

/** An rlm sandbox container on the engine. */
export interface SandboxContainer {
  /** The engine's container id (64 hex digits). */
  id: string;
  /** The container's name, without Docker's leading `/`. */
  name: string;
  /** `created`, `running`, `exited`, `removing`… */
  state: string;
  /** The image the container runs, as the engine reports it (a tag such as `rlm-sandbox:…`, or an image id). */
  image: string;
  /** The `rlm.sandbox` label. */
  owner: string;
  /**
   * Whether the owning process still runs: `dead` when it ran on this host and is gone (the
   * container is an orphan that pruning removes); `unknown` for another host or an unreadable label.
   */
  ownerStatus: 'alive' | 'dead' | 'unknown';
  /** False only when the owner is known to be dead. */
  ownerAlive: boolean;
  /** The `rlm.sandbox.id` label: the id of the sandbox the container served (its errors carry it too); undefined when absent. */
  sandboxId: string | undefined;
  /** ISO 8601. */
  created: string;
}

/** Options of {@link listSandboxes}: the engine and the label that marks sandboxes. */
export interface SandboxListOptions {
  /** The Docker engine to ask (see `createDockerClient`). */
  docker: Dockerode;
  /** Cancels the call: it rejects with `AbortedError`. */
  signal?: AbortSignal;
  /**
   * The label that marks sandboxes and holds their owner; default `rlm.sandbox`. Another label is a
   * separate namespace that no other rlm process lists or reaps (tests use one per run).
   */
  label?: string;
}

/**
 * Every container labelled `rlm.sandbox` (or `options.label`) on the engine, in any state.
 *
 * @throws {DockerUnavailableError} the engine cannot list containers; {@link AbortedError} when `signal` fires.
 */
export async function listSandboxes(options: SandboxListOptions): Promise<SandboxContainer[]> {
  const { docker, signal, label = SANDBOX_LABEL } = options;
  let containers: Dockerode.ContainerInfo[];
  try {
    containers = await docker.listContainers({ all: true, filters: { label: [label] }, ...(signal ? { abortSignal: signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw new AbortedError('listing sandboxes was aborted', { cause: error });
    const host = describeDockerHost(docker);
    throw new DockerUnavailableError(
      `cannot list the sandbox containers on the Docker engine at ${host} (${describeDockerError(error)}): check that the engine runs and that your user may use it`,
      host,
      { cause: error },
    );
  }
  return containers.map((c) => {
    const owner = c.Labels[label] ?? '';
    const status = ownerStatus(owner);
    return {
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      state: c.State,
      image: c.Image,
      owner,
      ownerStatus: status,
      ownerAlive: status !== 'dead',
      sandboxId: c.Labels[SANDBOX_ID_LABEL],
      created: c.Labels[CREATED_LABEL] ?? new Date(c.Created * 1000).toISOString(),
    };
  });
}

/** What {@link pruneSandboxes} removed and what it could not. */
export interface PruneResult {
  /** Ids of the containers removed (or already being removed by the engine). */
  removed: string[];
  /** Containers that could not be removed, with the engine's reason. */
  failed: { id: string; error: string }[];
  /** State directories removed. */
  removedStateDirs: string[];
  /** State directories that could not be removed. */
  failedStateDirs: { path: string; error: string }[];
  /** Names of the context volumes removed (left behind by a container removed without its volumes). */
  removedVolumes: string[];
}

/** Options of {@link pruneSandboxes}: which sandboxes to remove. */
export interface PruneOptions extends SandboxListOptions {
  /** Remove every rlm sandbox on the engine, live owners' included. Default false: only orphans. */
  all?: boolean;
  /** Where sandbox state directories live; default {@link sandboxStateRootPath}. */
  stateRoot?: string;
}

/**
 * Removes (forcibly) the sandbox containers whose owner ran on this host and is gone, then the
 * state directories of sandboxes whose owner is gone and which have no container left. Removal
 * failures are collected in the result (and logged), never thrown.
 *
 * @throws {DockerUnavailableError} the engine cannot list containers; {@link AbortedError} when `signal` fires.
 */
export async function reapOrphanedSandboxes(options: Omit<PruneOptions, 'all'>): Promise<PruneResult> {
  return pruneSandboxes({ ...options, all: false });
}

/**
 * {@link reapOrphanedSandboxes}, or with `all: true` every rlm sandbox container on the engine —
 * including those of live processes, whose runs will fail.
 */
export async function pruneSandboxes(options: PruneOptions): Promise<PruneResult> {
  const { docker, signal } = options;
  const sandboxes = await listSandboxes(options);
  const doomed = sandboxes.filter((s) => options.all === true || s.ownerStatus === 'dead');
  const result: PruneResult = { removed: [], failed: [], removedStateDirs: [], failedStateDirs: [], removedVolumes: [] };

  await Promise.all(
    doomed.map(async (s) => {
      try {
        // v: the container's anonymous context volume goes with it.
        await docker.getContainer(s.id).remove({ force: true, v: true, ...(signal ? { abortSignal: signal } : {}) });
        result.removed.push(s.id);
      } catch (error) {
        const status = dockerStatusCode(error);
        // 404: already gone; 409: the engine is already removing it (AutoRemove).
        if (status === 404 || status === 409) {
          result.removed.push(s.id);
        } else {
          result.failed.push({ id: s.id, error: describeDockerError(error) });
          warn(`could not remove orphaned sandbox container ${s.id.slice(0, 12)} (${s.name}): ${describeDockerError(error)}`);
        }
      }
    }),
  );
  if (signal?.aborted) throw new AbortedError('pruning sandboxes was aborted', { cause: signal.reason });

  const removed = new Set(result.removed);
  const stillThere = new Set(sandboxes.filter((s) => !removed.has(s.id) && s.sandboxId !== undefined).map((s) => s.sandboxId));
  await removeStaleStateDirs(options.stateRoot ?? sandboxStateRootPath(), stillThere, result);
  await removeOrphanedVolumes(options, result);
  if (result.removed.length > 0 || result.removedStateDirs.length > 0 || result.removedVolumes.length > 0) {
    debug(
      `reaped ${result.removed.length} sandbox container(s), ${result.removedStateDirs.length} state dir(s) and ${result.removedVolumes.length} context volume(s)`,
    );
  }
  return result;
}

/**
 * Removes the labelled context volumes whose owner is dead (every labelled one with `all`). A volume
 * still mounted by a container is refused by the engine (409) and left for later; a failure is
 * logged at debug level only, since a volume holds nothing but a mount of a host directory.
 */
async function removeOrphanedVolumes(options: PruneOptions, result: PruneResult): Promise<void> {
  const { docker, signal, label = SANDBOX_LABEL } = options;
  let volumes: Dockerode.VolumeInspectInfo[];
  try {
    volumes = (await docker.listVolumes({ filters: { label: [label] }, ...(signal ? { abortSignal: signal } : {}) })).Volumes ?? [];
  } catch (error) {
    debug(`could not list sandbox context volumes: ${describeDockerError(error)}`);
    return;
  }
  for (const volume of volumes) {
    if (options.all !== true && ownerStatus(volume.Labels?.[label] ?? '') !== 'dead') continue;
    try {
      await docker.getVolume(volume.Name).remove(signal ? { abortSignal: signal } : {});
      result.removedVolumes.push(volume.Name);
    } catch (error) {
      if (dockerStatusCode(error) === 404) continue;
      debug(`could not remove sandbox context volume ${volume.Name}: ${describeDockerError(error)}`);
    }
  }
}

async function removeStaleStateDirs(root: string, inUse: ReadonlySet<string | undefined>, result: PruneResult): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return; // No state root yet: nothing to clean.
  }
  const now = Date.now();
  for (const name of entries) {
    if (inUse.has(name)) continue;
    const dir = path.join(root, name);
    let stale: boolean;
    try {
      const info = await lstat(dir);
      if (!info.isDirectory()) continue;
      const owner = await readFile(path.join(dir, SANDBOX_OWNER_FILE), 'utf8').catch(() => undefined);
      stale = owner !== undefined ? ownerStatus(owner) === 'dead' : now - info.mtimeMs > UNOWNED_STATE_DIR_GRACE_MS;
    } catch {
      continue;
    }
    if (!stale) continue;
    try {
      await rm(dir, { recursive: true, force: true });
      result.removedStateDirs.push(dir);
    } catch (error) {
      result.failedStateDirs.push({ path: dir, error: errorMessage(error) });
      warn(`could not remove the stale sandbox state directory ${dir}: ${errorMessage(error)}`);
    }
  }
}
