/**
 * Another Docker engine on this machine, for a test that stands in for several machines (one
 * `rlm serve --role worker` per engine). It runs as its own `dockerd` (needs root) with its own
 * socket, data root, exec root, pid file and supervised containerd, all in a temp directory, and a
 * bridge of its own.
 *
 * The bridge matters: measured here, a second daemon started with `--bridge none` deletes the
 * first daemon's `docker0`. So each engine gets `rlmbr<N>` with `10.213.<N>.1/24` (N is the first
 * number whose bridge does not exist and whose /24 no interface uses; `ip link add` failing on an
 * existing name makes two test processes racing for one N safe), and the daemon runs with
 * `--bridge rlmbr<N> --iptables=false --ip-masq=false --ip-forward=false`: it adds no firewall rule,
 * no NAT and changes no sysctl of the host. Nothing is pulled: the daemon has no registry mirror,
 * and rlm builds its sandbox image FROM scratch from local files on first use.
 *
 * The daemon's config file is written by us (the machine's /etc/docker/daemon.json is not read),
 * holding only the OCI runtimes the first engine registers (e.g. gVisor's `runsc`), so a test
 * that selects a runtime gets the same one on both engines.
 *
 * A test process that dies leaves its daemon running; the next {@link startSecondDocker} on the
 * machine stops every daemon whose owning process is gone and removes its bridge and directory,
 * as test/support/postgres.ts does for clusters. On a normal exit, a best-effort hook stops the
 * daemons this process started and forgot to close.
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, rmSync, closeSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type Dockerode from 'dockerode';
import { createDockerClient } from '../../orchestrator/src/sandbox/docker-client.js';

const run = promisify(execFile);

const DIR_PREFIX = 'rlm-test-dockerd-';
const BRIDGE_PREFIX = 'rlmbr';
/** 10.213.<N>.0/24 for bridge N: private, and far from Docker's default pools (172.17+/16, 192.168/20). */
const SUBNET_PREFIX = '10.213';
/** Runtimes every dockerd registers itself; redefining one is refused. */
const BUILT_IN_RUNTIMES = new Set(['runc', 'io.containerd.runc.v2', 'io.containerd.runtime.v1.linux']);

const START_TIMEOUT_MS = 60_000;
/** How long SIGTERM gets (dockerd stops its containers within its 15 s shutdown timeout) before SIGKILL. */
const STOP_TIMEOUT_MS = 30_000;

export interface SecondDocker {
  /** `unix:///tmp/rlm-test-dockerd-…/docker.sock`: for DOCKER_HOST or `docker -H`. */
  readonly host: string;
  /** The bridge the engine's default network uses, e.g. `rlmbr1`. */
  readonly bridge: string;
  /** Its address, e.g. `10.213.1.1/24`. */
  readonly bridgeAddress: string;
  /** The engine's pid. */
  readonly pid: number;
  /** A client of this engine. */
  docker(): Dockerode;
  /**
   * Stops the daemon (SIGTERM, SIGKILL past 30 s, it and its containerd), removes its bridge and
   * its directory. Safe to call twice; never throws for something already gone.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What a daemon's directory holds, for closing and reaping it. */
interface DaemonFiles {
  dir: string;
  pidFile: string;
  containerdPidFile: string;
  bridgeFile: string;
}

function filesOf(dir: string): DaemonFiles {
  return {
    dir,
    pidFile: path.join(dir, 'dockerd.pid'),
    containerdPidFile: path.join(dir, 'exec', 'containerd', 'containerd.pid'),
    bridgeFile: path.join(dir, 'bridge'),
  };
}

/**
 * Starts a Docker engine and answers once `docker -H <host> info` does. `name` labels the temp
 * directory and error messages.
 * @throws when not root, when `dockerd`/`ip` are missing, or when the daemon does not answer within
 *   60 s (with the tail of its log); whatever was set up is removed first.
 */
export async function startSecondDocker(name = 'second'): Promise<SecondDocker> {
  if (process.getuid?.() !== 0) throw new Error('startSecondDocker needs root: it runs dockerd and creates a bridge (ip link add)');
  for (const tool of ['dockerd', 'ip', 'docker']) {
    await run('which', [tool]).catch(() => {
      throw new Error(`startSecondDocker needs \`${tool}\` on PATH (Debian: apt-get install -y docker.io iproute2)`);
    });
  }
  await reapOrphanedDaemons();
  const dir = await mkdtemp(path.join(os.tmpdir(), `${DIR_PREFIX}${name.replace(/[^a-z0-9-]/gi, '')}-`));
  const files = filesOf(dir);
  await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const log = path.join(dir, 'dockerd.log');
  let child: ChildProcess | undefined;
  let childExited: Promise<void> | undefined;
  let bridge: { name: string; address: string } | undefined;
  try {
    bridge = await createBridge();
    await writeFile(files.bridgeFile, bridge.name);
    const config = path.join(dir, 'daemon.json');
    await writeFile(config, JSON.stringify({ runtimes: await firstEngineRuntimes() }, null, 2));
    const logFd = openSync(log, 'a');
    try {
      child = spawn(
        'dockerd',
        [
          '--config-file',
          config,
          '--host',
          host,
          '--data-root',
          path.join(dir, 'data'),
          '--exec-root',
          path.join(dir, 'exec'),
          '--pidfile',
          files.pidFile,
          '--storage-driver',
          'overlay2',
          // Never `--bridge none`: that deletes the first daemon's docker0.
          '--bridge',
          bridge.name,
          '--iptables=false',
          '--ip6tables=false',
          '--ip-masq=false',
          '--ip-forward=false',
          '--userland-proxy=false',
        ],
        // Not detached: a Ctrl-C of the test run reaches it too, and it shuts down cleanly.
        { stdio: ['ignore', logFd, logFd] },
      );
    } finally {
      closeSync(logFd);
    }
    const daemon = child;
    const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
    childExited = exited;
    daemon.once('error', () => undefined);
    await waitForInfo(host, exited);
    const pid = daemon.pid as number;
    const owned = { files, child: daemon, exited };
    started.add(owned);
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        await stopDaemon(files, daemon, exited);
        await removeBridge(files);
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        started.delete(owned);
      })();
      return closing;
    };
    let client: Dockerode | undefined;
    return {
      host,
      bridge: bridge.name,
      bridgeAddress: bridge.address,
      pid,
      docker: () => {
        client ??= createDockerClient({ dockerHost: host });
        return client;
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    const logTail = await readFile(log, 'utf8').then(
      (text) => text.slice(-4000),
      () => '',
    );
    if (child) await stopDaemon(files, child, childExited);
    if (bridge) await removeBridge(files);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw new Error(`could not start the ${name} Docker engine at ${host}: ${(error as Error).message}\n${logTail}`, { cause: error });
  }
}

/** Polls `docker -H host info` until it answers; fails when the daemon exits or 60 s pass. */
async function waitForInfo(host: string, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = '';
  while (Date.now() < deadline) {
    if (gone) throw new Error('dockerd exited while starting');
    try {
      await run('docker', ['-H', host, 'info', '--format', '{{.ServerVersion}}'], { timeout: 10_000 });
      return;
    } catch (error) {
      last = String((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`dockerd did not answer \`docker info\` within ${START_TIMEOUT_MS / 1000} s: ${last}`);
}

/** The runtimes the first engine registers beyond the built-in ones, in daemon.json's shape. */
async function firstEngineRuntimes(): Promise<Record<string, { path: string; runtimeArgs?: string[] }>> {
  const { stdout } = await run('docker', ['info', '--format', '{{json .Runtimes}}'], { timeout: 15_000 }).catch(() => ({ stdout: '{}' }));
  const runtimes: Record<string, { path: string; runtimeArgs?: string[] }> = {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    return runtimes;
  }
  for (const [runtime, spec] of Object.entries((parsed ?? {}) as Record<string, { path?: unknown; runtimeArgs?: unknown }>)) {
    if (BUILT_IN_RUNTIMES.has(runtime) || typeof spec?.path !== 'string') continue;
    const args = Array.isArray(spec.runtimeArgs) ? spec.runtimeArgs.filter((a): a is string => typeof a === 'string') : [];
    runtimes[runtime] = { path: spec.path, ...(args.length > 0 ? { runtimeArgs: args } : {}) };
  }
  return runtimes;
}

interface IpAddress {
  ifname: string;
  addr_info?: { family: string; local: string }[];
}

/** Creates `rlmbr<N>` with `10.213.<N>.1/24`, up; the first N free on this machine. */
async function createBridge(): Promise<{ name: string; address: string }> {
  for (let n = 1; n <= 254; n++) {
    const name = `${BRIDGE_PREFIX}${n}`;
    const { stdout } = await run('ip', ['-j', 'address', 'show']);
    const interfaces = JSON.parse(stdout) as IpAddress[];
    const subnet = `${SUBNET_PREFIX}.${n}.`;
    if (interfaces.some((i) => i.ifname === name || i.addr_info?.some((a) => a.family === 'inet' && a.local.startsWith(subnet)))) continue;
    try {
      await run('ip', ['link', 'add', name, 'type', 'bridge']);
    } catch {
      continue; // another test process took this one between our look and our add
    }
    const address = `${subnet}1/24`;
    try {
      await run('ip', ['address', 'add', address, 'dev', name]);
      await run('ip', ['link', 'set', name, 'up']);
    } catch (error) {
      await run('ip', ['link', 'delete', name, 'type', 'bridge']).catch(() => undefined);
      throw error;
    }
    return { name, address };
  }
  throw new Error(`no free ${BRIDGE_PREFIX}<N> bridge with a free ${SUBNET_PREFIX}.<N>.0/24 (N = 1…254)`);
}

/** Deletes the bridge named in the daemon's directory, if it is still there and one of ours. */
async function removeBridge(files: DaemonFiles): Promise<void> {
  const name = await readFile(files.bridgeFile, 'utf8').then(
    (text) => text.trim(),
    () => '',
  );
  if (!new RegExp(`^${BRIDGE_PREFIX}\\d+$`).test(name)) return;
  await run('ip', ['link', 'delete', name, 'type', 'bridge']).catch(() => undefined);
}

/** SIGTERM, wait, SIGKILL past the deadline; then its containerd if it outlived it. */
async function stopDaemon(files: DaemonFiles, child: ChildProcess | undefined, exited: Promise<unknown> | undefined): Promise<void> {
  const pid = child?.pid ?? readPid(files.pidFile);
  if (pid !== undefined && isAlive(pid)) {
    signal(pid, 'SIGTERM');
    const stopped = exited ? await settlesWithin(exited, STOP_TIMEOUT_MS) : await exitsWithin(pid, STOP_TIMEOUT_MS);
    if (!stopped) {
      signal(pid, 'SIGKILL');
      if (exited) await exited;
      else await exitsWithin(pid, 10_000);
    }
  }
  // dockerd stops its supervised containerd on a clean shutdown; after a SIGKILL it may not.
  const containerd = readPid(files.containerdPidFile);
  if (containerd !== undefined && isAlive(containerd) && isContainerdOf(containerd, files.dir)) {
    signal(containerd, 'SIGTERM');
    if (!(await exitsWithin(containerd, 10_000))) signal(containerd, 'SIGKILL');
  }
  await unmountUnder(files.dir);
}

/** Lazily unmounts whatever a killed daemon left mounted under `dir` (overlays, netns), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await run('umount', ['-l', point]).catch(() => undefined);
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isContainerdOf(pid: number, dir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return false;
  }
}

/** Whether `pid` runs; a zombie (exited, not yet reaped by its parent — ours, inside an exit hook) does not. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {}
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls until `pid` is gone (a process that is not our child: no exit event). */
async function exitsWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

/** Stops the daemons of test processes that died without closing them; removes their bridges and directories. */
async function reapOrphanedDaemons(): Promise<void> {
  const tmp = os.tmpdir();
  const entries = await readdir(tmp).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.startsWith(DIR_PREFIX))) {
    const dir = path.join(tmp, entry);
    const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => 'NaN'));
    if (!Number.isInteger(owner) || isAlive(owner)) continue;
    const files = filesOf(dir);
    await stopDaemon(files, undefined, undefined);
    await removeBridge(files);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Daemons this process started and has not closed: stopped on exit, best effort. */
const started = new Set<{ files: DaemonFiles; child: ChildProcess; exited: Promise<void> }>();

process.once('exit', () => {
  for (const { files, child } of started) {
    const pid = child.pid;
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
    signal(pid, 'SIGTERM');
    // Synchronous: an exit hook cannot wait on events. Up to the stop timeout, then SIGKILL.
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (isAlive(pid) && Date.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    if (isAlive(pid)) signal(pid, 'SIGKILL');
    try {
      const name = readFileSync(files.bridgeFile, 'utf8').trim();
      if (new RegExp(`^${BRIDGE_PREFIX}\\d+$`).test(name)) execFileSync('ip', ['link', 'delete', name, 'type', 'bridge'], { stdio: 'ignore' });
    } catch {}
    if (!existsSync(files.dir)) continue;
    try {
      rmSync(files.dir, { recursive: true, force: true });
    } catch {}
  }
});
