/**
 * The sandbox against a real Docker engine: isolation, limits, the REPL contract across the
 * container boundary, timeouts, memory exhaustion and context loading.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AbortedError, InvalidOptionError, Sandbox, SandboxClosedError, createDockerClient, type SubcallParams } from 'rlm';

const docker = createDockerClient();
const image = inject('sandboxImage');

async function inspect(sandbox: Sandbox) {
  return docker.getContainer(sandbox.containerId ?? '').inspect();
}

describe('an isolated sandbox', () => {
  let sandbox: Sandbox;
  let decoy: Server;
  let decoyPort: number;
  let decoyConnections = 0;

  beforeAll(async () => {
    decoy = createServer((socket) => {
      decoyConnections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
    decoyPort = (decoy.address() as { port: number }).port;
    sandbox = await Sandbox.create({ docker, image });
  });

  afterAll(async () => {
    await sandbox?.close();
    decoy?.close();
  });

  async function run(code: string) {
    const result = await sandbox.execute(code, { timeoutMs: 10_000 });
    expect(result.error, `cell failed: ${result.error?.message}`).toBeNull();
    return result;
  }

  it('has no network interface but loopback', async () => {
    const result = await run(`Object.keys(require('node:os').networkInterfaces())`);
    expect(JSON.parse(result.value?.replaceAll("'", '"') ?? 'null')).toEqual(['lo']);
  });

  it("cannot reach a port listening on the host's loopback", async () => {
    const result = await run(`
      await new Promise((resolve) => {
        const s = require('node:net').connect({ host: '127.0.0.1', port: ${decoyPort}, timeout: 1000 });
        s.on('connect', () => { print('connected'); s.destroy(); resolve(); });
        s.on('error', (e) => { print(e.code); resolve(); });
        s.on('timeout', () => { print('timeout'); s.destroy(); resolve(); });
      });
    `);
    expect(result.stdout.text.trim()).toBe('ECONNREFUSED');
    expect(decoyConnections).toBe(0);
  });

  it('has a read-only root filesystem and a writable, noexec /tmp', async () => {
    const result = await run(`
      const fs = require('node:fs');
      try { fs.writeFileSync('/etc/evil', 'x'); print('root writable'); } catch (e) { print(e.code); }
      fs.writeFileSync('/tmp/scratch', 'ok'); print(fs.readFileSync('/tmp/scratch', 'utf8'));
      const tmp = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').find((l) => l.split(' ')[4] === '/tmp');
      print(tmp.includes('noexec') ? 'noexec' : 'exec allowed');
    `);
    expect(result.stdout.text.trim().split('\n')).toEqual(['EROFS', 'ok', 'noexec']);
  });

  it('runs as a non-root user with no capabilities, no-new-privileges and a seccomp filter', async () => {
    const result = await run(`
      const status = require('node:fs').readFileSync('/proc/self/status', 'utf8');
      const field = (n) => status.match(new RegExp('^' + n + ':\\\\s*(.*)$', 'm'))[1];
      print(process.getuid(), process.getgid(), field('CapEff'), field('CapBnd'), field('NoNewPrivs'), field('Seccomp'));
    `);
    const [uid, gid, capEff, capBnd, noNewPrivs, seccomp] = result.stdout.text.trim().split(' ');
    expect(Number(uid)).toBe(10001);
    expect(Number(gid)).toBe(10001);
    expect(capEff).toMatch(/^0+$/);
    expect(capBnd).toMatch(/^0+$/);
    expect(noNewPrivs).toBe('1');
    expect(seccomp).toBe('2');
  });

  it('sees none of the host environment, no Docker socket and no shell', async () => {
    process.env.RLM_TEST_SECRET_API_KEY = 'sk-must-not-leak';
    const result = await run(`
      const fs = require('node:fs');
      print(JSON.stringify({
        env: process.env,
        docker: ['/var/run/docker.sock', '/run/docker.sock'].filter((p) => fs.existsSync(p)),
        shells: ['/bin/sh', '/bin/bash', '/usr/bin/env', '/bin/busybox'].filter((p) => fs.existsSync(p)),
      }));
    `);
    const seen = JSON.parse(result.stdout.text) as { env: Record<string, string>; docker: string[]; shells: string[] };
    // Docker itself sets PATH, HOSTNAME and HOME (from the image's passwd); nothing comes from the host.
    expect(Object.keys(seen.env).filter((k) => !['PATH', 'HOSTNAME', 'HOME'].includes(k))).toEqual([]);
    expect(seen.env.HOME).toBe('/nonexistent');
    expect(JSON.stringify(seen.env)).not.toContain('sk-must-not-leak');
    expect(seen.docker).toEqual([]);
    expect(seen.shells).toEqual([]);
  });

  it('mounts only the context and the control directory, both read-only', async () => {
    const info = await inspect(sandbox);
    const mounts = info.Mounts.map((m) => `${m.Destination}:${m.RW ? 'rw' : 'ro'}`).sort();
    expect(mounts).toEqual(['/context:ro', '/run/rlm:ro']);
    const result = await run(`
      try { require('node:fs').writeFileSync('/context/x', 'x'); print('writable'); } catch (e) { print(e.code); }
    `);
    expect(result.stdout.text.trim()).toBe('EROFS');
  });

  it('refuses a second connection to its control socket and keeps serving the first', async () => {
    const result = await run(`
      const net = require('node:net');
      const { randomBytes } = require('node:crypto');
      await new Promise((resolve) => {
        const s = net.connect('/run/rlm/control.sock');
        let reply = '';
        s.on('connect', () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: ' + randomBytes(16).toString('base64') + '\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
        s.on('data', (d) => { reply += d.toString('latin1'); });
        s.on('close', () => { print(reply.split('\\r\\n')[0]); print(/\\x88/.test(reply) ? 'closed by host' : 'no close frame'); resolve(); });
        setTimeout(() => s.destroy(), 3000);
      });
    `);
    expect(result.stdout.text).toContain('101');
    expect(result.stdout.text).toContain('closed by host');
    expect((await run('1 + 1')).value).toBe('2');
  });
});

describe('sandbox limits', () => {
  it('applies the configured memory, CPU and pids limits and the hardening options, visible in docker inspect', async () => {
    await using sandbox = await Sandbox.create({
      docker,
      image,
      limits: { memoryBytes: 512 * 1024 * 1024, cpus: 0.5, pids: 64, tmpfsBytes: 16 * 1024 * 1024 },
    });
    const info = await docker.getContainer(sandbox.containerId ?? '').inspect();
    const host = info.HostConfig;
    expect(host.Memory).toBe(512 * 1024 * 1024);
    expect(host.MemorySwap).toBe(512 * 1024 * 1024);
    expect(host.NanoCpus).toBe(500_000_000);
    expect(host.PidsLimit).toBe(64);
    expect(host.NetworkMode).toBe('none');
    expect(host.ReadonlyRootfs).toBe(true);
    expect(host.CapDrop).toEqual(['ALL']);
    expect(host.SecurityOpt).toContain('no-new-privileges:true');
    expect(host.SecurityOpt?.some((o: string) => o.includes('unconfined'))).toBe(false);
    expect(host.Privileged).toBe(false);
    expect(host.AutoRemove).toBe(true);
    expect(host.Tmpfs?.['/tmp']).toContain(`size=${16 * 1024 * 1024}`);
    expect(info.Config.User).toBe('10001:10001');
    expect(info.Config.Labels?.['rlm.sandbox']).toMatch(/:\d+:\d+$/);
  });
});

describe('the REPL across the container boundary', () => {
  it('keeps state across cells and answers llm_query through the host', async () => {
    const calls: SubcallParams[] = [];
    await using sandbox = await Sandbox.create({
      docker,
      image,
      onSubcall: async (request) => {
        calls.push(request);
        return { outcomes: request.prompts.map((p, i) => (p === 'fail' ? { ok: false as const, error: 'model down' } : { ok: true as const, text: `answer ${i}: ${p.toUpperCase()}` })) };
      },
    });
    await sandbox.execute('const greeting = "hello"; class Box { constructor(v) { this.v = v } }');
    const single = await sandbox.execute('const one = llm_query(greeting, { model: "small" }); print(one)');
    expect(single.stdout.text).toBe('answer 0: HELLO\n');
    const batch = await sandbox.execute('llm_query_batched(["a", "fail", "c"]).join(" | ")');
    expect(batch.value).toBe("'answer 0: A | Error: model down | answer 2: C'");
    const awaited = await sandbox.execute('new Box(await rlm_query("deep")).v');
    expect(awaited.value).toBe("'answer 0: DEEP'");
    expect(calls.map((c) => [c.kind, c.batched, c.model ?? null, c.prompts])).toEqual([
      ['llm_query', false, 'small', ['hello']],
      ['llm_query', true, null, ['a', 'fail', 'c']],
      ['rlm_query', false, null, ['deep']],
    ]);
  });

  it('interrupts a runaway cell within its timeout plus one second and keeps earlier variables', async () => {
    await using sandbox = await Sandbox.create({ docker, image });
    await sandbox.execute('let kept = 42');
    const started = performance.now();
    const result = await sandbox.execute('while (true) {}', { timeoutMs: 1_000 });
    const elapsed = performance.now() - started;
    expect(result.status).toBe('timeout');
    expect(result.stateLost).toBe(false);
    expect(elapsed).toBeLessThan(2_000);
    expect((await sandbox.execute('kept')).value).toBe('42');
  });

  it('bounds an output flood and says how much was cut', async () => {
    await using sandbox = await Sandbox.create({ docker, image });
    const result = await sandbox.execute('while (true) print("x".repeat(1000))', { timeoutMs: 1_500, outputLimitChars: 2_000 });
    expect(result.status).toBe('timeout');
    expect(result.stdout.text.length).toBeLessThan(2_200);
    expect(result.stdout.truncatedChars).toBeGreaterThan(100_000);
    expect(result.stdout.text).toMatch(/characters truncated/);
  });

  it('reports a heap exhausted by a cell as OutOfMemoryError, then runs the next cell with fresh state and the context reloaded', async () => {
    await using sandbox = await Sandbox.create({ docker, image, context: 'the context', limits: { memoryBytes: 512 * 1024 * 1024 } });
    await sandbox.execute('const before = 1');
    const result = await sandbox.execute('const hog = []; while (true) hog.push(new Array(1e6).fill(Math.random()))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.stateLost).toBe(true);
    const after = await sandbox.execute('typeof before + " " + context');
    expect(after.value).toBe("'undefined the context'");
  });

  it('replaces a container killed for exceeding its memory limit and says the state was lost', async () => {
    await using sandbox = await Sandbox.create({ docker, image, context: ['a', 'b'], limits: { memoryBytes: 256 * 1024 * 1024 } });
    const firstContainer = sandbox.containerId;
    // Buffers live outside the V8 heap, so only the kernel's limit stops them.
    const result = await sandbox.execute('const bufs = []; while (true) bufs.push(Buffer.alloc(32 * 1024 * 1024, 1))', { timeoutMs: 60_000 });
    expect(result.status).toBe('error');
    expect(result.error?.type).toBe('OutOfMemoryError');
    expect(result.error?.message).toMatch(/256 MiB/);
    expect(result.stateLost).toBe(true);
    const after = await sandbox.execute('context.join("+")');
    expect(after.value).toBe("'a+b'");
    expect(sandbox.containerId).not.toBe(firstContainer);
    expect(sandbox.restarts).toBe(1);
  });
});

describe('context loading', () => {
  it('binds a string, a list, a path map and a JSON value as the REPL contract says', async () => {
    await using sandbox = await Sandbox.create({ docker, image, context: 'plain text\nsecond line' });
    await sandbox.loadContext(['first', 'second'], { variable: 'context_1' });
    await sandbox.loadContext({ 'docs/a.md': '# A', 'docs/b.md': '# B' }, { variable: 'context_2' });
    await sandbox.loadContext({ count: 3, items: [1, 2, 3], nested: { ok: true } }, { variable: 'context_3' });
    const result = await sandbox.execute(
      'print(JSON.stringify([typeof context, context.split("\\n").length, context_1, Object.keys(context_2), context_3.items.length, context_3.nested.ok]))',
    );
    expect(JSON.parse(result.stdout.text)).toEqual(['string', 2, ['first', 'second'], ['docs/a.md', 'docs/b.md'], 3, true]);
  });

  it('makes 100 MB of text available without sending it over the socket', async () => {
    await using sandbox = await Sandbox.create({ docker, image });
    const text = `${'0123456789'.repeat(10 * 1024 * 1024 - 1)}tail-mark!`;
    const loaded = await sandbox.loadContext(text);
    expect(loaded.bytes).toBe(100 * 1024 * 1024);
    const result = await sandbox.execute('context.length + " " + context.slice(-10)');
    expect(result.value).toBe(`'${100 * 1024 * 1024} tail-mark!'`);
  });
});

describe('sandbox lifecycle', () => {
  it('closes idempotently, removes its container, and refuses work afterwards', async () => {
    const sandbox = await Sandbox.create({ docker, image });
    const id = sandbox.containerId ?? '';
    await Promise.all([sandbox.close(), sandbox.close()]);
    await sandbox.close();
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(sandbox.execute('1')).rejects.toBeInstanceOf(SandboxClosedError);
  });

  it('stops a running cell and removes the sandbox when the caller aborts', async () => {
    const sandbox = await Sandbox.create({ docker, image });
    const id = sandbox.containerId ?? '';
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await expect(sandbox.execute('while (true) {}', { timeoutMs: 60_000, signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(sandbox.isClosed).toBe(true);
    await expect(docker.getContainer(id).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });
});

describe('sandbox options', () => {
  it('refuses an OCI runtime the daemon does not have, naming the option and the runtimes it has', async () => {
    const error = await Sandbox.create({ docker, image, runtime: 'no-such-runtime' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as Error).message).toMatch(/^runtime: .*no-such-runtime.*runc/);
  });

  it('refuses a non-positive cell timeout before starting anything', async () => {
    await expect(Sandbox.create({ docker, image, cellTimeoutMs: 0 })).rejects.toThrow(/^cellTimeoutMs: must be a positive integer/);
  });
});
