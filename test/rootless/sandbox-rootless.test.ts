/**
 * The sandbox against a rootless Docker daemon, reached through DOCKER_HOST only, run by the
 * daemon's own unprivileged user (`pnpm test:rootless` arranges both).
 *
 * What rootless changes: the daemon and the containers live in the user's user namespace. Inside
 * it, the user's own uid is root (0) and uids from 1 up are the user's subordinate ids, so the
 * sandbox's uid 10001 is host uid <first subordinate id> + 10000, a uid with no rights on the host.
 * The control socket sits in the user's 0700 state root and is mode 0666 so that uid can connect.
 * On a cgroup v1 host the daemon runs containers without cgroups: it accepts memory, CPU and pids
 * limits and applies none of them; the Sandbox starts anyway and warns once.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { execInContainer } from '../support/docker.js';
import { killHostOfSandbox } from '../support/host-death.js';
import { READ_ONLY_ROOT_PROBE } from '../support/isolation-probes.js';
import { Sandbox, checkIsolation, createDockerClient, setLogSink, type SubcallParams } from 'rlm';
import { dockerInfo, type DockerEngineInfo } from '../../orchestrator/src/sandbox/docker-client.js';
import { sandboxStateRootPath } from '../../orchestrator/src/sandbox/reaper.js';

// No `dockerHost` option anywhere: the client is found through DOCKER_HOST, as a user's would be.
const docker = createDockerClient();
const image = inject('sandboxImage');
const uid = process.getuid?.() ?? -1;

let engine: DockerEngineInfo;
const warnings: string[] = [];
let restoreLogSink: (() => void) | undefined;

beforeAll(async () => {
  engine = await dockerInfo(docker);
  // Before any sandbox of this file starts: the limits warning comes once per process.
  const previous = setLogSink((line) => {
    warnings.push(line);
    process.stderr.write(`${line}\n`);
  });
  restoreLogSink = () => setLogSink(previous);
});
afterAll(() => restoreLogSink?.());

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** This user's first subordinate uid, from /etc/subuid. */
function firstSubordinateUid(): number {
  const name = os.userInfo().username;
  const line = readFileSync('/etc/subuid', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`) || l.startsWith(`${uid}:`));
  if (!line) throw new Error(`no /etc/subuid range for ${name}`);
  return Number(line.split(':')[1]);
}

/**
 * Runs `code` (a probe that calls `print`) in a process of a sandbox's container (docker exec),
 * outside the cells' permission model, which keeps cells away from /proc, /sys and /run/rlm.
 */
async function probeContainer(containerId: string | undefined, code: string): Promise<string> {
  const { exitCode, stdout, stderr } = await execInContainer(docker, containerId ?? '', code);
  expect(exitCode, stderr).toBe(0);
  return stdout;
}

describe('the environment', () => {
  it('is a rootless daemon reached through DOCKER_HOST, driven by an unprivileged user', () => {
    expect(process.env.DOCKER_HOST).toMatch(/^unix:\/\/\//);
    expect(engine.rootless).toBe(true);
    expect(uid).toBeGreaterThan(0);
  });
});

describe('a sandbox on a rootless daemon', () => {
  let sandbox: Sandbox;
  const calls: SubcallParams[] = [];

  beforeAll(async () => {
    process.env.RLM_TEST_SECRET_API_KEY = 'sk-must-not-leak';
    sandbox = await Sandbox.create({
      docker,
      image,
      onSubcall: async (request) => {
        calls.push(request);
        return { outcomes: request.prompts.map((p) => ({ ok: true as const, text: `echo ${p}` })) };
      },
    });
  });
  afterAll(async () => {
    await sandbox?.close();
    delete process.env.RLM_TEST_SECRET_API_KEY;
  });

  async function run(code: string) {
    const result = await sandbox.execute(code, { timeoutMs: 10_000 });
    expect(result.error, `cell failed: ${result.error?.message}`).toBeNull();
    return result;
  }

  it('starts and runs cells, keeping state between them', async () => {
    await run('let counter = 40');
    expect((await run('counter += 2; counter')).value).toBe('42');
  });

  it('answers llm_query through the host handler', async () => {
    const result = await run('print(llm_query("ping", { model: "tiny" }))');
    expect(result.stdout.text).toBe('echo ping\n');
    expect(calls.map((c) => [c.kind, c.model, c.prompts])).toEqual([['llm_query', 'tiny', ['ping']]]);
  });

  it('has no network interface but loopback', async () => {
    const result = await run(`print(JSON.stringify(Object.keys(require('node:os').networkInterfaces())))`);
    expect(JSON.parse(result.stdout.text)).toEqual(['lo']);
  });

  it('has a read-only root filesystem and a writable, noexec /tmp', async () => {
    expect((await probeContainer(sandbox.containerId, READ_ONLY_ROOT_PROBE)).trim().split('\n')).toEqual(['EROFS', 'ok', 'noexec']);
  });

  it('runs as uid 10001, which is a subordinate uid of the user on the host, never the user or root', async () => {
    const probed = await probeContainer(
      sandbox.containerId,
      `
      const fs = require('node:fs');
      print(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), uidMap: fs.readFileSync('/proc/self/uid_map', 'utf8') }));
    `,
    );
    const seen = JSON.parse(probed) as { uid: number; gid: number; uidMap: string };
    expect(seen.uid).toBe(10001);
    expect(seen.gid).toBe(10001);
    // The daemon's user namespace: its root is this user, uids 1… are the user's subordinate ids.
    const map = seen.uidMap
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/).map(Number));
    const subordinate = firstSubordinateUid();
    expect(map).toEqual([
      [0, uid, 1],
      [1, subordinate, 65536],
    ]);
    // The REPL server's process as the host sees it (rootlesskit makes no pid namespace of its own).
    const info = await docker.getContainer(sandbox.containerId ?? '').inspect();
    const status = await readFile(`/proc/${info.State.Pid}/status`, 'utf8');
    const hostUids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number);
    expect(hostUids).toEqual([subordinate + 10000, subordinate + 10000, subordinate + 10000, subordinate + 10000]);
  });

  it('sees none of the host environment', async () => {
    // Cells run with no environment at all; the container's own holds nothing of the host's either.
    const result = await run('print(JSON.stringify(process.env))');
    expect(JSON.parse(result.stdout.text)).toEqual({});
    const containerEnv = (await docker.getContainer(sandbox.containerId ?? '').inspect()).Config.Env ?? [];
    expect(containerEnv.map((entry: string) => entry.split('=')[0] ?? '').filter((name: string) => !['PATH', 'HOSTNAME', 'HOME'].includes(name))).toEqual([]);
    expect(containerEnv.join('\n')).not.toContain('sk-must-not-leak');
    expect(containerEnv.join('\n')).not.toContain(process.env.DOCKER_HOST ?? 'unset');
  });

  it('drops every capability, sets no-new-privileges and runs under a seccomp filter', async () => {
    const probed = await probeContainer(
      sandbox.containerId,
      `
      const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
      const field = (n) => status.match(new RegExp('^' + n + ':\\\\s*(.*)$', 'm'))[1];
      print(field('CapEff'), field('CapPrm'), field('CapBnd'), field('NoNewPrivs'), field('Seccomp'));
    `,
    );
    const [capEff, capPrm, capBnd, noNewPrivs, seccomp] = probed.trim().split(' ');
    expect(capEff).toMatch(/^0+$/);
    expect(capPrm).toMatch(/^0+$/);
    expect(capBnd).toMatch(/^0+$/);
    expect(noNewPrivs).toBe('1');
    expect(seccomp).toBe('2');
    const host = (await docker.getContainer(sandbox.containerId ?? '').inspect()).HostConfig;
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.SecurityOpt).toContain('no-new-privileges:true');
    expect(host.SecurityOpt?.some((o: string) => o.includes('unconfined'))).toBe(false);
  });

  it('reaches its control socket across the user namespace: mode 0666 inside a 0700 state root of the user', async () => {
    const root = sandboxStateRootPath();
    expect(root).toBe(path.join(process.env.XDG_RUNTIME_DIR ?? os.tmpdir(), `rlm-${uid}`));
    const rootStat = statSync(root);
    expect(rootStat.uid).toBe(uid);
    expect(rootStat.mode & 0o777).toBe(0o700);
    // The sandbox reached its mode-0666 socket across the namespace (it is connected); once it said
    // hello the host stopped listening and removed the socket and the token file, so nothing else can
    // dial in. Inside, the control directory is read-only and empty.
    const controlDir = path.join(root, sandbox.id, 'control');
    expect(readdirSync(controlDir)).toEqual([]);
    const probed = await probeContainer(
      sandbox.containerId,
      `
      const fs = require('node:fs');
      print(JSON.stringify(fs.readdirSync('/run/rlm')));
      try { fs.writeFileSync('/run/rlm/planted', 'x'); print('writable'); } catch (e) { print(e.code); }
    `,
    );
    const [seen, write] = probed.trim().split('\n');
    expect(JSON.parse(seen ?? 'null')).toEqual([]);
    expect(write).toBe('EROFS');
  });

  it('interrupts a runaway cell and keeps earlier variables', async () => {
    await run('const kept = "still here"');
    const result = await sandbox.execute('while (true) {}', { timeoutMs: 1_000 });
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect((await run('kept')).value).toBe("'still here'");
  });
});

describe('resource limits on a rootless daemon', () => {
  it('match what the engine can do: on cgroup v1 the sandbox starts, warns once, and `rlm sandbox check` fails the limit checks', async () => {
    const limits = { memoryBytes: 256 * 1024 * 1024, cpus: 0.5, pids: 64 };
    await using first = await Sandbox.create({ docker, image, limits });
    await using second = await Sandbox.create({ docker, image, limits });
    const limitWarnings = warnings.filter((w) => w.includes('WITHOUT their memory, CPU and pids limits'));
    // `rlm sandbox check`'s findings, with a listener on the host's loopback it must not reach.
    const decoy = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
    cleanups.push(async () => decoy.close());
    const findings = await checkIsolation(second, docker, (decoy.address() as { port: number }).port);
    const failed = findings.filter((f) => !f.ok).map((f) => f.name);
    // The engine records the requested limits either way.
    const host = (await docker.getContainer(first.containerId ?? '').inspect()).HostConfig;
    expect([host.Memory, host.NanoCpus, host.PidsLimit]).toEqual([256 * 1024 * 1024, 500_000_000, 64]);
    const cgroupMemory = await probeContainer(
      first.containerId,
      `
      const fs = require('node:fs');
      for (const p of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) { try { print(fs.readFileSync(p, 'utf8').trim()); break; } catch {} }
    `,
    );

    if (engine.cgroupVersion === 1) {
      // Documented in the README: no cgroups, so no limits, and no error from the engine either.
      expect(first.unenforcedLimitsReason).toMatch(/rootless on a cgroup v1 host/);
      expect(limitWarnings).toHaveLength(1);
      expect(limitWarnings[0]).toMatch(
        /^rlm: warning: the Docker engine is rootless on a cgroup v1 host, .*: sandboxes on unix:\/\/\S+ run WITHOUT their memory, CPU and pids limits/,
      );
      expect(failed).toEqual(['memory limit', 'cpu limit', 'pids limit']);
      expect(findings.find((f) => f.name === 'memory limit')?.detail).toMatch(/256 MiB, swap none requested, NOT enforced: .*rootless on a cgroup v1 host/);
      expect(Number(cgroupMemory.trim())).toBeGreaterThan(2 ** 62);
      // The kernel caps nothing, but the REPL counts buffers outside the V8 heap against its own cap:
      // twice the "limit" in buffers is an OutOfMemoryError, and the container lives on.
      const buffers = await first.execute('const bufs = []; for (let i = 0; i < 16; i++) bufs.push(Buffer.alloc(32 * 1024 * 1024, 1)); bufs.length * 32', {
        timeoutMs: 30_000,
      });
      expect(buffers.error?.type).toBe('OutOfMemoryError');
      expect(first.restarts).toBe(0);
    } else {
      expect(first.unenforcedLimitsReason).toBeUndefined();
      expect(limitWarnings).toEqual([]);
      expect(failed).toEqual([]);
      expect(cgroupMemory.trim()).toBe(String(256 * 1024 * 1024));
    }
  });

  it('still caps the REPL heap, so a heap-hungry cell fails as OutOfMemoryError and the sandbox goes on', async () => {
    await using sandbox = await Sandbox.create({ docker, image, context: 'ctx', limits: { memoryBytes: 256 * 1024 * 1024 } });
    await sandbox.execute('const before = 1');
    const result = await sandbox.execute('const hog = []; while (true) hog.push(new Array(1e6).fill(Math.random()))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.stateLost).toBe(true);
    expect((await sandbox.execute('typeof before + " " + context')).value).toBe("'undefined ctx'");
  });
});

describe('sandbox lifecycle on a rootless daemon', () => {
  it('removes the container and the state directory on close()', async () => {
    const sandbox = await Sandbox.create({ docker, image });
    const id = sandbox.containerId ?? '';
    const stateDir = path.join(sandboxStateRootPath(), sandbox.id);
    expect(statSync(stateDir).isDirectory()).toBe(true);
    await sandbox.close();
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(() => statSync(stateDir)).toThrow(/ENOENT/);
  });

  it('removes the container when the host process dies: the REPL server exits because its channel dropped', async () => {
    // The holder finds the daemon through the inherited DOCKER_HOST, like any rlm process.
    const death = await killHostOfSandbox(docker, image, cleanups);
    expect(death.wasRunning).toBe(true);
    expect(death.removed).toBe(true);
    // 1006: the socket closed without a close frame; the heartbeat timeout would say "no ping from the host".
    expect(death.lastStderrLine).toMatch(/^control channel closed \(1006 .*\); exiting$/);
  });
});
