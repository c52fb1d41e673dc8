/**
 * The server image as a team runs it: built by deploy/build-server-image.mjs from local files only
 * (the workspace's build, the pnpm store, this machine's Node on `scratch`), started with
 * testcontainers' GenericContainer (Ryuk disabled: its image cannot be pulled here) as the
 * unprivileged user 10001 in the Docker socket's group, with the host's engine socket and a shared
 * sandbox state directory mounted at the same path, as docker-compose.yml does. Inside, `rlm serve`
 * builds the sandbox image from the image's own Node (no `ldd` in a scratch image), a team and a
 * token are created with `docker exec … rlm serve …`, one run is served end to end against a
 * provider fake on the host, with PostgreSQL from Debian's package as the store (both reached
 * through relays on the docker bridge's gateway address, since they listen on 127.0.0.1), and
 * SIGTERM stops the server with every sandbox gone.
 */
import { spawn } from 'node:child_process';
import { chown, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { createDockerClient, listSandboxes } from 'rlm';
import { parseOwner } from '../orchestrator/src/sandbox/reaper.js';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';

// Ryuk (testcontainers' reaper) is an image from Docker Hub; every container here is stopped by the test.
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TAG = 'rlm-server:test';
const SERVER_UID = 10001;
/** The container's host name: the owner of the sandboxes it starts, so they can be told from everyone else's. */
const SERVER_HOSTNAME = `rlm-serve-image-test-${process.pid}`;
const PROVIDER_KEY = 'sk-test-serve-image-key';
const CONTEXT = 'served from a container';

interface BuildResult {
  tag: string;
  imageId: string;
  baseImage: string;
  sizeBytes: number;
  durationMs: number;
}

const docker = createDockerClient();
let build: BuildResult;
let fake: FakeOpenAIServer;
let postgres: TestPostgres | undefined;
const relays: net.Server[] = [];
/** Their open connections, cut when the relays close. */
const relayed = new Set<net.Socket>();
let stateDir: string | undefined;
let containerUid: number;
let container: StartedTestContainer | undefined;
let serverUrl: string;
let token: string;
/** The server's output (pino's JSON lines and its stderr), for the message of a failed expectation. */
let serverLog = '';

/** Runs deploy/build-server-image.mjs as `pnpm build:server-image` does after its build; its progress is kept for a failure's message. */
async function buildServerImage(): Promise<BuildResult> {
  const child = spawn(process.execPath, [path.join(ROOT, 'deploy', 'build-server-image.mjs'), '--tag', TAG, '--json'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`build-server-image.mjs exited ${code}:\n${stderr.slice(-4000)}`);
  return JSON.parse(stdout) as BuildResult;
}

/** The engine's socket on this machine, as the tests' own Docker client reaches it. */
function dockerSocketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  if (host) throw new Error(`this test mounts the engine's Unix socket into the server; DOCKER_HOST=${host} is not one`);
  return '/var/run/docker.sock';
}

/** The default bridge network's gateway: the host as containers on that bridge see it. */
async function bridgeGateway(): Promise<string> {
  const network = await docker.getNetwork('bridge').inspect();
  const gateway = (network as { IPAM?: { Config?: Array<{ Gateway?: string }> } }).IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
  if (!gateway) throw new Error('the bridge network has no gateway address');
  return gateway;
}

/** A TCP relay from `host` (the bridge gateway) to a port on 127.0.0.1; returns its port. */
async function startRelay(host: string, targetPort: number): Promise<number> {
  const server = net.createServer((socket) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    relayed.add(socket).add(upstream);
    socket.on('close', () => relayed.delete(socket));
    upstream.on('close', () => relayed.delete(upstream));
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
    socket.pipe(upstream).pipe(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  relays.push(server);
  return (server.address() as net.AddressInfo).port;
}

const fence = (code: string) => `Let me look.\n\`\`\`repl\n${code}\n\`\`\``;

/** Sandbox containers the server in the container started (and not yet removed). */
async function serverSandboxes() {
  return (await listSandboxes({ docker })).filter((s) => parseOwner(s.owner)?.host === SERVER_HOSTNAME);
}

async function api(method: 'GET' | 'POST', route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${serverUrl}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  // The script removes the image this build replaces under the tag, so runs leave one test image.
  build = await buildServerImage();
  process.stderr.write(
    `[serve-image] built ${build.tag} on ${build.baseImage}: ${(build.sizeBytes / 1e6).toFixed(0)} MB in ${(build.durationMs / 1000).toFixed(1)} s\n`,
  );

  fake = await startFakeOpenAIServer(() => fence("FINAL('served: ' + context.toUpperCase())"));
  // PostgreSQL, as docker-compose.yml runs it: the management commands below run while the
  // server does (the embedded database belongs to one process at a time).
  postgres = await startPostgres();
  const database = new URL(await postgres.newDatabase());
  const gateway = await bridgeGateway();
  const providerPort = await startRelay(gateway, Number(new URL(fake.origin).port));
  const postgresPort = await startRelay(gateway, Number(database.port));
  database.hostname = gateway;
  database.port = String(postgresPort);

  // The state directory is shared at the same path with the engine, which bind-mounts each
  // sandbox's control socket and context from it; the server's user must own it.
  stateDir = await mkdtemp('/tmp/rlm-serve-image-state-');
  const self = process.getuid?.() ?? 0;
  containerUid = self === 0 ? SERVER_UID : self;
  if (self === 0) await chown(stateDir, SERVER_UID, SERVER_UID);
  const socket = dockerSocketPath();
  const socketGid = (await stat(socket)).gid;

  container = await new GenericContainer(TAG)
    .withHostname(SERVER_HOSTNAME)
    // The image's user, with the socket's group as its group: the unprivileged way to a rootful engine.
    .withUser(`${containerUid}:${socketGid}`)
    .withCommand(['serve', '--max-sandboxes', '2', '--warm', '1'])
    .withEnvironment({
      XDG_RUNTIME_DIR: stateDir,
      RLM_BACKEND: 'openai',
      RLM_MODEL: 'gpt-serve-image-test',
      RLM_BASE_URL: `http://${gateway}:${providerPort}/v1`,
      DATABASE_URL: database.href,
      OPENAI_API_KEY: PROVIDER_KEY,
    })
    .withBindMounts([
      { source: socket, target: '/var/run/docker.sock' },
      { source: stateDir, target: stateDir },
    ])
    // The first start builds the sandbox image on the engine from the image's own Node: minutes on a busy machine.
    .withLogConsumer((stream) => {
      stream.on('data', (chunk: Buffer | string) => {
        serverLog += chunk.toString();
      });
    })
    .withWaitStrategy(Wait.forLogMessage(/listening on/))
    .withStartupTimeout(600_000)
    .start();
  serverUrl = `http://${container.getIpAddress('bridge')}:8080`;
}, 900_000);

afterAll(async () => {
  await container?.stop({ timeout: 60_000 }).catch(() => undefined);
  for (const sandbox of await serverSandboxes().catch(() => [])) {
    await docker
      .getContainer(sandbox.id)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  }
  for (const socket of relayed) socket.destroy();
  for (const relay of relays) await new Promise<void>((resolve) => relay.close(() => resolve()));
  await fake?.close();
  await postgres?.close();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
}, 120_000);

describe('the rlm server image', () => {
  it('runs rlm serve as the unprivileged user 10001 from an image without a shell', async () => {
    const image = await docker.getImage(TAG).inspect();
    expect(image.Config.User).toBe(`${SERVER_UID}:${SERVER_UID}`);
    expect(image.Config.Entrypoint).toEqual(['/usr/local/bin/node', '/opt/rlm/bin/rlm.js']);
    expect(image.Config.Cmd).toEqual(['serve']);
    expect(image.Config.Labels?.['rlm.image.base']).toBe(build.baseImage);
    const shell = await container!.exec(['/bin/sh', '-c', 'true']).catch((error: unknown) => ({ exitCode: -1, output: String(error) }));
    expect(shell.exitCode).not.toBe(0);
    const whoami = await container!.exec(['node', '-e', 'console.log(JSON.stringify([process.getuid(), process.cwd()]))']);
    expect(JSON.parse(whoami.stdout)).toEqual([containerUid, '/data']);
  });

  it('creates a team and a token with `rlm serve` inside the running container', async () => {
    const team = await container!.exec(['rlm', 'serve', 'teams', 'create', 'image-team', '--json']);
    expect(team.stderr).toBe('');
    expect(team.exitCode).toBe(0);
    expect(JSON.parse(team.stdout)).toMatchObject({ name: 'image-team' });

    const created = await container!.exec(['rlm', 'serve', 'tokens', 'create', '--team', 'image-team', '--json']);
    expect(created.exitCode).toBe(0);
    const parsed = JSON.parse(created.stdout) as { token: string; team: string };
    expect(parsed.team).toBe('image-team');
    expect(parsed.token).toMatch(/^rlm_/);
    token = parsed.token;
  });

  it('serves a run end to end: accepted, run in a sandbox on the host engine, answered from the model’s code', async () => {
    const accepted = await api('POST', '/v1/runs', { query: 'Shout the context.', context: CONTEXT });
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ status: 'queued' });
    const id = accepted.json.id as string;

    let run = (await api('GET', `/v1/runs/${id}`)).json;
    const deadline = Date.now() + 240_000;
    while (!['succeeded', 'failed', 'cancelled'].includes(run.status as string) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      run = (await api('GET', `/v1/runs/${id}`)).json;
    }
    expect(run, serverLog.slice(-4000)).toMatchObject({ id, status: 'succeeded', answer: `served: ${CONTEXT.toUpperCase()}`, error: null });
    // The provider key reached the fake from the server's environment; the context never did.
    expect(fake.received[0]?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    expect(JSON.stringify(fake.requests)).not.toContain(CONTEXT);
    expect(JSON.stringify(run)).not.toContain(PROVIDER_KEY);
  });

  it("passes docker-compose.yml's healthcheck, which needs no curl", async () => {
    const compose = YAML.parse(await readFile(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: { rlm: { healthcheck: { test: string[] } } } };
    const [kind, ...command] = compose.services.rlm.healthcheck.test;
    expect(kind).toBe('CMD');
    const check = await container!.exec(command);
    expect(check.exitCode).toBe(0);
  });

  it('drains on SIGTERM and exits 0, leaving no sandbox and no state directory behind', async () => {
    const id = container!.getId();
    await container!.stop({ timeout: 60_000, remove: false });
    container = undefined;
    const state = (await docker.getContainer(id).inspect()).State;
    await docker.getContainer(id).remove({ v: true });
    expect(state.ExitCode, serverLog.slice(-4000)).toBe(0);
    expect(await serverSandboxes()).toEqual([]);
    const root = path.join(stateDir!, `rlm-${containerUid}`);
    expect(await readdir(root).catch(() => [])).toEqual([]);
  });
});
