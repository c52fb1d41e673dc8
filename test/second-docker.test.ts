/**
 * The second Docker engine the scale-out tests stand a second machine's engine up with
 * (test/support/second-docker.ts): rlm builds its sandbox image on it from local files and runs
 * sandboxes on it under the test run's runtime, it never touches the first engine's docker0, the
 * first engine still starts containers once it is gone, and a test process killed with -9 leaves a
 * daemon the next start reaps.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureSandboxImage } from '../orchestrator/src/sandbox/image/ensure-sandbox-image.js';
import { IMAGE_NODE_PATH } from '../orchestrator/src/sandbox/image/node-runtime.js';
import { listSandboxes } from '../orchestrator/src/sandbox/reaper.js';
import { Sandbox } from '../orchestrator/src/sandbox/sandbox.js';
import { runToCompletion, TEST_START_TIMEOUT_MS, testDocker } from './support/docker.js';
import { TEST_RUNTIME, TEST_SANDBOX_RUNTIME } from './support/runtime.js';
import { type SecondDocker, startSecondDocker } from './support/second-docker.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Link {
  ifindex: number;
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number }[];
}

async function link(name: string): Promise<Link | undefined> {
  const { stdout } = await run('ip', ['-j', 'address', 'show']);
  return (JSON.parse(stdout) as Link[]).find((l) => l.ifname === name);
}

/** docker0 as a test compares it: same interface (index) with the same IPv4 address. */
async function docker0(): Promise<{ ifindex: number; inet: string[] } | undefined> {
  const found = await link('docker0');
  return found && { ifindex: found.ifindex, inet: found.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
}

/** Whether `pid` runs: a zombie does not (an orphan's parent is this machine's init, which may reap it late). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

const engines: SecondDocker[] = [];
afterAll(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});

describe('a second Docker engine on this machine', () => {
  it('builds the sandbox image and runs sandboxes under the run’s runtime on a bridge of its own, leaving docker0 and the first engine alone', async () => {
    const before = await docker0();
    expect(before, 'the first engine’s docker0 must exist before the test').toBeDefined();
    const engine = await startSecondDocker('engine-test');
    engines.push(engine);
    expect(engine.host).toMatch(/^unix:\/\/\/.+\/docker\.sock$/);
    expect(await docker0()).toEqual(before);

    // Its default network is its own bridge, with the address we gave it.
    const { stdout: bridgeName } = await run('docker', [
      '-H',
      engine.host,
      'network',
      'inspect',
      'bridge',
      '--format',
      '{{index .Options "com.docker.network.bridge.name"}}',
    ]);
    expect(bridgeName.trim()).toBe(engine.bridge);
    expect((await link(engine.bridge))?.addr_info.map((a) => `${a.local}/${a.prefixlen}`)).toContain(engine.bridgeAddress);

    // A fresh engine: the image is built there (FROM scratch, local files, no pull).
    const second = engine.docker();
    const image = await ensureSandboxImage({ docker: second });
    expect(image.built).toBe(true);
    const sandbox = await Sandbox.create({ docker: second, image: image.tag, ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS });
    try {
      const result = await sandbox.execute('print(6 * 7)', { timeoutMs: 60_000 });
      expect(result.stdout.text.trim()).toBe('42');
      const id = sandbox.containerId as string;
      const inspected = await second.getContainer(id).inspect();
      expect(inspected.HostConfig.Runtime).toBe(TEST_RUNTIME ?? 'runc');
      expect(inspected.HostConfig.NetworkMode).toBe('none');
      // On the second engine only.
      expect((await listSandboxes({ docker: second })).map((s) => s.id)).toContain(id);
      expect((await listSandboxes({ docker: testDocker() })).map((s) => s.id)).not.toContain(id);
    } finally {
      await sandbox.close();
    }
    expect(await docker0()).toEqual(before);

    const pid = engine.pid;
    const dir = path.dirname(engine.host.slice('unix://'.length));
    await engine.close();
    await engine.close();
    expect(isRunning(pid)).toBe(false);
    expect(await link(engine.bridge)).toBeUndefined();
    expect(existsSync(dir)).toBe(false);
    expect(await docker0()).toEqual(before);

    // The first engine still starts containers (none network: no bridge involved either way).
    const first = await runToCompletion(testDocker(), {
      Image: inject('sandboxImage'),
      Entrypoint: [IMAGE_NODE_PATH, '-e', 'console.log("first engine ok")'],
      HostConfig: { NetworkMode: 'none', ...TEST_SANDBOX_RUNTIME },
    });
    expect(first).toMatchObject({ exitCode: 0, stdout: 'first engine ok\n' });
  });

  it('reaps the daemon, bridge and directory of a test process killed with -9 on the next start', async () => {
    // A process that starts an engine, prints it, and waits to be killed.
    const script = `
      import { registerSourceHooks } from ${JSON.stringify(path.join(root, 'test/bench/source-hooks.ts'))};
      registerSourceHooks();
      const { startSecondDocker } = await import(${JSON.stringify(path.join(root, 'test/support/second-docker.ts'))});
      const engine = await startSecondDocker('orphan');
      process.stdout.write(JSON.stringify({ host: engine.host, bridge: engine.bridge, pid: engine.pid }) + '\\n');
      setInterval(() => {}, 1e9);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const orphan = await new Promise<{ host: string; bridge: string; pid: number }>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string));
      });
      child.once('exit', (code) => reject(new Error(`the engine-holding process exited (${code}): ${stderr}`)));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const dir = path.dirname(orphan.host.slice('unix://'.length));
    expect(isRunning(orphan.pid), 'the orphaned daemon outlives its test process').toBe(true);

    const engine = await startSecondDocker('reaper');
    engines.push(engine);
    expect(isRunning(orphan.pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // Its bridge name may be reused by the new engine; if not, it is gone.
    if (engine.bridge !== orphan.bridge) expect(await link(orphan.bridge)).toBeUndefined();
    await engine.close();
  });
});
