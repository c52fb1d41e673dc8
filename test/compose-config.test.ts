/**
 * docker-compose.yml as `docker-compose config` (Debian's docker-compose) resolves it: the services
 * rlm and postgres and their volumes, the database URL, the engine's socket and the sandboxes' state
 * directory, provider keys passed through from the environment and nothing else, and a clear
 * refusal when no engine socket is chosen. Each run gets an empty env file and a clean environment,
 * so a developer's `.env` or exported keys cannot change what is checked.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');

interface ComposeService {
  image?: string;
  build?: unknown;
  pull_policy?: string;
  command?: string[];
  user?: string;
  hostname?: string;
  init?: boolean;
  read_only?: boolean;
  cap_drop?: string[];
  security_opt?: string[];
  ports?: string[];
  environment?: Record<string, string | null>;
  volumes?: Array<string | { type: string; source: string; target: string }>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

let dir: string;
let emptyEnvFile: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-compose-config-'));
  emptyEnvFile = path.join(dir, 'empty.env');
  await writeFile(emptyEnvFile, '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `docker-compose config` of the repository's file with only `env` (and PATH) in its environment. */
async function composeConfig(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('docker-compose', ['--env-file', emptyEnvFile, '--project-directory', dir, '-f', COMPOSE_FILE, 'config'], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

async function resolved(env: Record<string, string>): Promise<ComposeConfig> {
  const result = await composeConfig(env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return YAML.parse(result.stdout) as ComposeConfig;
}

const ROOTLESS_SOCKET = '/run/user/1000/docker.sock';

describe('docker-compose.yml', () => {
  it('defines the rlm and postgres services with their volumes', async () => {
    const config = await resolved({ RLM_DOCKER_SOCKET: ROOTLESS_SOCKET });
    expect(Object.keys(config.services).sort()).toEqual(['postgres', 'rlm']);
    expect(Object.keys(config.volumes).sort()).toEqual(['postgres-data', 'rlm-data']);

    const postgres = config.services.postgres!;
    expect(postgres.image).toBe('postgres:17');
    expect(postgres.volumes).toContain('postgres-data:/var/lib/postgresql/data:rw');
    expect(postgres.healthcheck?.test.join(' ')).toContain('pg_isready -U rlm -d rlm');
    expect(postgres.environment).toMatchObject({ POSTGRES_USER: 'rlm', POSTGRES_DB: 'rlm', POSTGRES_PASSWORD: 'rlm' });
    // PostgreSQL is reachable only on the project's network.
    expect(postgres.ports).toBeUndefined();
  });

  it('runs the locally built server image, never pulled or built by compose, after PostgreSQL is healthy', async () => {
    const rlm = (await resolved({ RLM_DOCKER_SOCKET: ROOTLESS_SOCKET })).services.rlm!;
    expect(rlm.image).toBe('rlm-server:local');
    expect(rlm.pull_policy).toBe('never');
    expect(rlm.build).toBeUndefined();
    expect(rlm.command).toEqual(['serve']);
    expect(rlm.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(rlm.environment?.DATABASE_URL).toBe('postgres://rlm:rlm@postgres:5432/rlm');
    // Published on loopback only unless RLM_BIND_ADDRESS says otherwise.
    expect(rlm.ports).toEqual(['127.0.0.1:8080:8080/tcp']);
    // The healthcheck needs no curl: the image's Node fetches /healthz.
    expect(rlm.healthcheck?.test.slice(0, 3)).toEqual(['CMD', '/usr/local/bin/node', '-e']);
    expect(rlm.healthcheck?.test[3]).toContain("fetch('http://127.0.0.1:8080/healthz')");
    // A fixed host name, so a replacement server reaps what a crashed one left; tini for signals.
    expect(rlm.hostname).toBe('rlm-server');
    expect(rlm.init).toBe(true);
    expect(rlm).toMatchObject({ read_only: true, cap_drop: ['ALL'], security_opt: ['no-new-privileges:true'] });
  });

  it("mounts the chosen engine socket at the server's default DOCKER_HOST and shares the sandbox state directory at the same path", async () => {
    const rlm = (await resolved({ RLM_DOCKER_SOCKET: ROOTLESS_SOCKET })).services.rlm!;
    expect(rlm.volumes).toContainEqual({ type: 'bind', source: ROOTLESS_SOCKET, target: '/var/run/docker.sock' });
    expect(rlm.volumes).toContain('/tmp/rlm-serve:/tmp/rlm-serve:rw');
    expect(rlm.environment?.XDG_RUNTIME_DIR).toBe('/tmp/rlm-serve');
    expect(rlm.volumes).toContain('rlm-data:/data:rw');
    // Root in a rootless engine's container is the engine's own unprivileged user.
    expect(rlm.user).toBe('0:0');

    const moved = (
      await resolved({
        RLM_DOCKER_SOCKET: '/var/run/docker.sock',
        RLM_SANDBOX_STATE_DIR: '/var/lib/rlm-sandboxes',
        RLM_USER: '10001:111',
        RLM_BIND_ADDRESS: '0.0.0.0',
        RLM_PORT: '9090',
        POSTGRES_PASSWORD: 'other-secret',
      })
    ).services.rlm!;
    expect(moved.volumes).toContainEqual({ type: 'bind', source: '/var/run/docker.sock', target: '/var/run/docker.sock' });
    expect(moved.volumes).toContain('/var/lib/rlm-sandboxes:/var/lib/rlm-sandboxes:rw');
    expect(moved.environment?.XDG_RUNTIME_DIR).toBe('/var/lib/rlm-sandboxes');
    expect(moved.user).toBe('10001:111');
    expect(moved.ports).toEqual(['0.0.0.0:9090:8080/tcp']);
    expect(moved.environment?.DATABASE_URL).toBe('postgres://rlm:other-secret@postgres:5432/rlm');
  });

  it('passes provider keys through from the environment only when they are set, and holds none itself', async () => {
    const rlm = (await resolved({ RLM_DOCKER_SOCKET: ROOTLESS_SOCKET, ANTHROPIC_API_KEY: 'sk-ant-compose-test', RLM_MODEL: 'claude-test' })).services.rlm!;
    expect(rlm.environment?.ANTHROPIC_API_KEY).toBe('sk-ant-compose-test');
    expect(rlm.environment?.RLM_MODEL).toBe('claude-test');
    // Declared, unset: compose passes nothing for it.
    expect(rlm.environment).toHaveProperty('OPENAI_API_KEY', null);
    const keys = Object.keys(rlm.environment ?? {}).filter((name) => /_API_KEY$|^HF_TOKEN$/.test(name));
    expect(keys.length).toBeGreaterThanOrEqual(10);
    for (const key of keys) if (key !== 'ANTHROPIC_API_KEY') expect(rlm.environment?.[key], key).toBeNull();
    // The file itself assigns no key a value.
    const text = await readFile(COMPOSE_FILE, 'utf8');
    expect(text).not.toMatch(/^[ \t]*[A-Z_]*(API_KEY|TOKEN):[ \t]*\S/m);
  });

  it('refuses to resolve without RLM_DOCKER_SOCKET, saying which sockets to choose from', async () => {
    const result = await composeConfig({});
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('set RLM_DOCKER_SOCKET');
    expect(result.stderr).toContain('rootless');
    expect(result.stderr).toContain('/var/run/docker.sock');
  });
});
