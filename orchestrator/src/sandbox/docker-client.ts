/**
 * Connecting to the Docker engine: where it is (`DOCKER_HOST` or the default socket), whether it
 * answers, and what it can do (rootless, cgroup version, runtimes such as gVisor's `runsc`).
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { AbortedError, DockerUnavailableError, errorMessage, InvalidOptionError } from '../errors.js';

/** The socket a rootful engine listens on when `DOCKER_HOST` is unset. */
export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

const DOCKER_FIX = 'start the Docker engine (dockerd) or set DOCKER_HOST; for rootless Docker, DOCKER_HOST=unix:///run/user/$UID/docker.sock';

/** Options of {@link createDockerClient}: which Docker engine to talk to. */
export interface DockerClientOptions {
  /**
   * Where the engine listens: `unix:///path/docker.sock`, `tcp://host:port` (TLS when
   * `DOCKER_TLS_VERIFY=1` or port 2376, certificates from `DOCKER_CERT_PATH`), `npipe://…` or
   * `ssh://user@host`. Defaults to `DOCKER_HOST`, then `unix:///var/run/docker.sock` (or Docker
   * Desktop's `~/.docker/run/docker.sock` when only that exists). Docker CLI contexts are not read.
   */
  dockerHost?: string;
  /** Where `DOCKER_HOST`, `DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH` and `SSH_AUTH_SOCK` are read; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
}

/** The connection settings a Docker host string stands for. */
export function dockerConnectionOptions(dockerHost: string, env: Readonly<Record<string, string | undefined>> = process.env): Docker.DockerOptions {
  const invalid = (why: string) =>
    new InvalidOptionError(
      'dockerHost',
      `${JSON.stringify(dockerHost)} ${why}; use unix:///path/to/docker.sock or tcp://host:port (DOCKER_HOST takes the same forms)`,
    );
  if (dockerHost.startsWith('/')) return { socketPath: dockerHost };
  if (dockerHost.startsWith('unix://')) {
    const socketPath = dockerHost.slice('unix://'.length);
    if (!socketPath.startsWith('/')) throw invalid('does not name an absolute socket path');
    return { socketPath };
  }
  if (dockerHost.startsWith('npipe://')) {
    return { socketPath: dockerHost.slice('npipe://'.length) || '//./pipe/docker_engine' };
  }
  let url: URL;
  try {
    url = new URL(dockerHost.includes('://') ? dockerHost : `tcp://${dockerHost}`);
  } catch {
    throw invalid('is not a URL');
  }
  if (!url.hostname) throw invalid('has no host name');
  switch (url.protocol) {
    case 'ssh:':
      return {
        protocol: 'ssh',
        host: url.hostname,
        port: url.port || 22,
        ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
        ...(env.SSH_AUTH_SOCK ? { sshOptions: { agent: env.SSH_AUTH_SOCK } } : {}),
      };
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const port = url.port || (url.protocol === 'https:' ? '2376' : '2375');
      const tls = url.protocol === 'https:' || env.DOCKER_TLS_VERIFY === '1' || port === '2376';
      const options: Docker.DockerOptions = { protocol: tls ? 'https' : 'http', host: url.hostname, port };
      const certPath = env.DOCKER_CERT_PATH ?? (tls ? path.join(os.homedir(), '.docker') : undefined);
      if (tls && certPath) {
        try {
          options.ca = readFileSync(path.join(certPath, 'ca.pem'));
          options.cert = readFileSync(path.join(certPath, 'cert.pem'));
          options.key = readFileSync(path.join(certPath, 'key.pem'));
        } catch (error) {
          // Without client certificates the daemon may still accept us (e.g. behind a TLS proxy).
          if (env.DOCKER_CERT_PATH) {
            throw new InvalidOptionError('DOCKER_CERT_PATH', `cannot read ca.pem, cert.pem and key.pem in ${certPath}: ${errorMessage(error)}`, {
              cause: error,
            });
          }
        }
      }
      return options;
    }
    default:
      throw invalid(`has the unsupported scheme ${url.protocol}`);
  }
}

/**
 * A dockerode client for `dockerHost`, else `DOCKER_HOST`, else `/var/run/docker.sock`.
 * Nothing is contacted until the first call; {@link pingDocker} checks reachability.
 *
 * @throws InvalidOptionError when the host string cannot be understood.
 */
export function createDockerClient(options: DockerClientOptions = {}): Docker {
  const env = options.env ?? process.env;
  const dockerHost = options.dockerHost ?? (env.DOCKER_HOST || `unix://${defaultSocket()}`);
  return new Docker(dockerConnectionOptions(dockerHost, env));
}

/** `/var/run/docker.sock`, unless only Docker Desktop's per-user socket exists. */
function defaultSocket(): string {
  if (existsSync(DEFAULT_DOCKER_SOCKET)) return DEFAULT_DOCKER_SOCKET;
  const desktop = path.join(os.homedir(), '.docker', 'run', 'docker.sock');
  return existsSync(desktop) ? desktop : DEFAULT_DOCKER_SOCKET;
}

/** A readable name for the engine `docker` talks to, for error messages. */
export function describeDockerHost(docker: Docker): string {
  const modem = docker.modem as { socketPath?: unknown; host?: unknown; port?: unknown; protocol?: unknown };
  if (typeof modem.socketPath === 'string') {
    return modem.socketPath.startsWith('//') ? `npipe://${modem.socketPath}` : `unix://${modem.socketPath}`;
  }
  const protocol = modem.protocol === 'https' ? 'https' : modem.protocol === 'ssh' ? 'ssh' : 'tcp';
  return `${protocol}://${String(modem.host)}${modem.port ? `:${String(modem.port)}` : ''}`;
}

/** Default time allowed for the engine to answer a ping. */
export const DEFAULT_PING_TIMEOUT_MS = 10_000;

/**
 * Checks that the engine answers.
 *
 * @throws DockerUnavailableError naming the host tried and how to fix it, when the engine is not
 *   reachable within `timeoutMs` (default 10 s) or answers with an error.
 * @throws AbortedError when `signal` fires first.
 */
export async function pingDocker(docker: Docker, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  const signal = combineSignals(options.signal, AbortSignal.timeout(timeoutMs));
  const host = describeDockerHost(docker);
  try {
    // The typings miss the options argument dockerode accepts.
    const ping = docker.ping as (options: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping.call(docker, { abortSignal: signal });
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedError('pingDocker was aborted', { cause: error });
    const why = signal.aborted ? `no answer within ${timeoutMs} ms` : describeDockerError(error);
    throw new DockerUnavailableError(`Docker engine at ${host} is not reachable (${why}): ${DOCKER_FIX}`, host, {
      cause: error,
    });
  }
}

/** What the engine reports about itself that rlm cares about. */
export interface DockerEngineInfo {
  serverVersion: string;
  /** `x86_64`, `aarch64`… as the engine names it. */
  architecture: string;
  /** True for a rootless daemon (`SecurityOptions` holds `name=rootless`). */
  rootless: boolean;
  /** 1 or 2; undefined when the engine does not say (older than 20.10). */
  cgroupVersion: 1 | 2 | undefined;
  /** `cgroupfs`, `systemd`, or `none` when the engine runs containers without cgroups (rootless on cgroup v1). */
  cgroupDriver: string | undefined;
  /** OCI runtimes the engine can start containers with, e.g. `runc`, `runsc`. */
  runtimes: string[];
  defaultRuntime: string | undefined;
  /** Raw `SecurityOptions`, e.g. `name=seccomp,profile=default`. */
  securityOptions: string[];
}

/**
 * Reads `GET /info`.
 *
 * @throws DockerUnavailableError when the engine does not answer.
 */
export async function dockerInfo(docker: Docker, options: { signal?: AbortSignal } = {}): Promise<DockerEngineInfo> {
  let raw: Record<string, unknown>;
  try {
    // The typings miss the options argument dockerode accepts.
    const info = docker.info as (options: { abortSignal?: AbortSignal }) => Promise<unknown>;
    raw = (await info.call(docker, options.signal ? { abortSignal: options.signal } : {})) as Record<string, unknown>;
  } catch (error) {
    if (options.signal?.aborted) throw new AbortedError('dockerInfo was aborted', { cause: error });
    const host = describeDockerHost(docker);
    throw new DockerUnavailableError(`Docker engine at ${host} did not answer GET /info (${describeDockerError(error)}): ${DOCKER_FIX}`, host, {
      cause: error,
    });
  }
  return parseDockerInfo(raw);
}

/** The pure half of {@link dockerInfo}. */
export function parseDockerInfo(raw: Record<string, unknown>): DockerEngineInfo {
  const securityOptions = Array.isArray(raw.SecurityOptions) ? raw.SecurityOptions.filter((entry): entry is string => typeof entry === 'string') : [];
  const cgroup = raw.CgroupVersion;
  const runtimes = raw.Runtimes && typeof raw.Runtimes === 'object' ? Object.keys(raw.Runtimes as Record<string, unknown>) : [];
  return {
    serverVersion: typeof raw.ServerVersion === 'string' ? raw.ServerVersion : 'unknown',
    architecture: typeof raw.Architecture === 'string' ? raw.Architecture : 'unknown',
    rootless: securityOptions.some((entry) => entry.split(',').includes('name=rootless')),
    cgroupVersion: cgroup === '1' || cgroup === 1 ? 1 : cgroup === '2' || cgroup === 2 ? 2 : undefined,
    cgroupDriver: typeof raw.CgroupDriver === 'string' && raw.CgroupDriver !== '' ? raw.CgroupDriver : undefined,
    runtimes: runtimes.sort(),
    defaultRuntime: typeof raw.DefaultRuntime === 'string' ? raw.DefaultRuntime : undefined,
    securityOptions,
  };
}

/**
 * Why the engine cannot enforce a container's memory, CPU and pids limits, or undefined when it can
 * (as far as `GET /info` tells).
 *
 * A rootless daemon on a cgroup v1 host runs containers without cgroups (its cgroup driver is
 * `none`): it accepts `Memory`, `NanoCpus` and `PidsLimit`, shows them in `docker inspect`, and
 * applies none of them, without a warning.
 */
export function unenforcedLimitsReason(info: DockerEngineInfo): string | undefined {
  if (info.rootless && info.cgroupVersion === 1) {
    return 'the Docker engine is rootless on a cgroup v1 host, where it runs containers without cgroups';
  }
  if (info.cgroupDriver === 'none') return 'the Docker engine runs containers without cgroups (cgroup driver "none")';
  return undefined;
}

/**
 * Checks that the engine offers `runtime` (e.g. `runsc` for gVisor).
 *
 * @throws InvalidOptionError naming `runtime` and the runtimes on offer.
 */
export function assertRuntimeAvailable(info: DockerEngineInfo, runtime: string): void {
  if (info.runtimes.includes(runtime)) return;
  const hint =
    runtime === 'runsc'
      ? '; install gVisor and register it in /etc/docker/daemon.json ("runtimes": {"runsc": {"path": "/usr/local/bin/runsc"}}), then restart dockerd'
      : '';
  throw new InvalidOptionError(
    'runtime',
    `the Docker engine has no runtime ${JSON.stringify(runtime)} (it has: ${info.runtimes.join(', ') || 'none listed'})${hint}`,
  );
}

/** A short description of a dockerode/Node error: the code and message, or the engine's reply. */
export function describeDockerError(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const e = error as { code?: unknown; statusCode?: unknown; json?: unknown; message?: unknown; reason?: unknown };
  const json = e.json as { message?: unknown } | null | undefined;
  if (typeof e.statusCode === 'number') {
    const message = typeof json?.message === 'string' ? json.message : String(e.reason ?? e.message ?? '');
    return `HTTP ${e.statusCode}: ${message}`;
  }
  if (typeof e.code === 'string') return `${e.code}: ${String(e.message ?? '')}`;
  return String(e.message ?? error);
}

/** The HTTP status of a failed engine call, when there was one. */
export function dockerStatusCode(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

function combineSignals(...signals: (AbortSignal | undefined)[]): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined));
}
