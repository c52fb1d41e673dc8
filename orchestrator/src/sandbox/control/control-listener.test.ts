import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Execute, Hello, LoadContext, PROTOCOL_VERSION, RemoteError, connectionOverWebSocket, type RpcConnection } from '@rlm/shared';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ControlListener, type ControlListenerOptions, UnixSocketEndpoint } from './control-listener.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function openListener(options: Partial<ControlListenerOptions> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-control-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const endpoint = new UnixSocketEndpoint(dir);
  const listener = await ControlListener.open({ endpoint, sandboxId: 'test', ...options });
  cleanups.push(() => listener.close());
  return { listener, endpoint, dir };
}

/** Dials the listener the way the sandbox does, returning the sandbox end's connection. */
async function dial(socketPath: string, options: { autoPong?: boolean } = {}): Promise<{ connection: RpcConnection; socket: WebSocket }> {
  const socket = new WebSocket(`ws+unix://${socketPath}:/`, { autoPong: options.autoPong ?? true });
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const connection = connectionOverWebSocket(socket, { name: 'sandbox' });
  cleanups.push(async () => connection.close());
  return { connection, socket };
}

/** Open file descriptors of this process. */
async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

const runtime = { node: process.version, languages: ['javascript' as const] };

/** Dials until a connection stays open: right after a flood, the listener may still be closing the flood's sockets. */
async function dialWhenFree(socketPath: string): Promise<{ connection: RpcConnection; socket: WebSocket }> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await dial(socketPath);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('ControlListener', () => {
  it('makes the socket connectable by the container user (mode 0666)', async () => {
    const { endpoint } = await openListener();
    expect((await stat(endpoint.socketPath)).mode & 0o777).toBe(0o666);
  });

  it('accepts the connection that presents the right token, and serves requests on it', async () => {
    const { listener, endpoint } = await openListener();
    const { connection: sandbox } = await dial(endpoint.socketPath);
    sandbox.handle(LoadContext, (params) => ({ variable: params.variable, bytes: 3, durationMs: 0 }));
    const accepting = listener.accept();
    await expect(sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime })).resolves.toEqual({ accepted: true });
    const host = await accepting;
    await expect(host.request(LoadContext, { variable: 'context', file: 'context.txt', format: 'text' })).resolves.toMatchObject({ bytes: 3 });
  });

  it('refuses a wrong token and closes that connection', async () => {
    const { listener, endpoint } = await openListener();
    const { connection: sandbox } = await dial(endpoint.socketPath);
    const error = await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: 'x'.repeat(32), runtime }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect(error).toMatchObject({ code: 'unauthorized' });
    expect((await sandbox.closed).code).toBe(1008);
    // The listener still waits for the real sandbox.
    const { connection: real } = await dial(endpoint.socketPath);
    const accepting = listener.accept();
    await real.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    await expect(accepting).resolves.toBeDefined();
  });

  it('refuses a sandbox speaking another protocol version, telling the user to rebuild the image', async () => {
    const { listener, endpoint } = await openListener();
    const { connection: sandbox } = await dial(endpoint.socketPath);
    const error = await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION + 1, token: listener.token, runtime }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'version_mismatch', message: expect.stringMatching(/rlm sandbox build/) });
  });

  it('serves nothing before hello: a request for a host-to-sandbox method closes the connection', async () => {
    const { endpoint } = await openListener();
    const { connection: sandbox } = await dial(endpoint.socketPath);
    // The host registers no handler for host-to-sandbox methods; a sandbox calling one broke the protocol.
    await expect(sandbox.request(Execute, { code: '1', language: 'javascript', timeoutMs: 10, outputLimitChars: 10 })).rejects.toBeDefined();
    expect((await sandbox.closed).code).toBe(1008);
  });

  it('stops listening once hello succeeded: the socket file is gone, a new dial fails, the first connection is served', async () => {
    const { listener, endpoint } = await openListener();
    const { connection: first } = await dial(endpoint.socketPath);
    first.handle(LoadContext, (params) => ({ variable: params.variable, bytes: 1, durationMs: 0 }));
    // Dialed before hello: open now, dropped once the first one is accepted.
    const early = await dial(endpoint.socketPath);
    const accepting = listener.accept();
    await first.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    const host = await accepting;
    expect(listener.isListening).toBe(false);
    await expect(stat(endpoint.socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
    const refused = await new Promise<NodeJS.ErrnoException>((resolve) => {
      const socket = connect(endpoint.socketPath);
      socket.once('connect', () => resolve(Object.assign(new Error('connected'), { code: 'CONNECTED' })));
      socket.once('error', resolve);
    });
    expect(['ENOENT', 'ECONNREFUSED']).toContain(refused.code);
    await early.connection.closed;
    await expect(host.request(LoadContext, { variable: 'context', file: 'c.txt', format: 'text' })).resolves.toMatchObject({ bytes: 1 });
    expect(first.isOpen).toBe(true);
  });

  it('keeps its open file descriptors bounded while another process dials it a thousand times, then accepts the real sandbox', async () => {
    // Slots are held for the whole test: no connection here ever says hello, and none times out.
    const { listener, endpoint } = await openListener({ maxPendingConnections: 4, helloTimeoutMs: 600_000 });
    const before = await openFds();
    // A separate process, so its own sockets are not counted here. It dials 1,000 times and says so
    // once all but four of its connections were closed by the listener (or refused by the kernel).
    const script = `
      const net = require('node:net');
      let ended = 0;
      const end = () => { if (++ended === 996) process.stdout.write('996 closed\\n'); };
      for (let i = 0; i < 1000; i++) {
        const s = net.connect(process.argv[1]);
        let counted = false;
        s.on('close', () => { if (!counted) { counted = true; end(); } });
        s.on('error', () => {});
      }
      setInterval(() => {}, 1e6);`;
    const child = spawn(process.execPath, ['-e', script, endpoint.socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanups.push(async () => child.kill('SIGKILL'));
    await new Promise<string>((resolve) => createInterface({ input: child.stdout }).once('line', resolve));
    const during = await openFds();
    // Four held connections, plus slack for whatever else this process opened meanwhile.
    expect(during - before).toBeLessThan(16);

    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    // Once the flood's connections are gone, the real sandbox connects and is accepted.
    const accepting = listener.accept();
    const { connection: real } = await dialWhenFree(endpoint.socketPath);
    await real.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    await expect(accepting).resolves.toBeDefined();
  });

  it('gives up on an accepted connection that stops answering pings: it calls onUnresponsive and closes the connection', async () => {
    const unresponsive: number[] = [];
    const { listener, endpoint } = await openListener({ livenessTimeoutMs: 400, onUnresponsive: ({ silentMs }) => unresponsive.push(silentMs) });
    const { connection: sandbox } = await dial(endpoint.socketPath, { autoPong: false });
    await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    const host = await listener.accept();
    const info = await host.closed;
    expect(info.reason).toMatch(/^no answer to pings for \d+ ms$/);
    expect(unresponsive).toHaveLength(1);
    expect(unresponsive[0]).toBeGreaterThan(400);
  });

  it('keeps a connection that answers pings open past the liveness timeout', async () => {
    const { listener, endpoint } = await openListener({ livenessTimeoutMs: 400, onUnresponsive: () => expect.unreachable('the peer answered every ping') });
    const { connection: sandbox, socket } = await dial(endpoint.socketPath);
    await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    const host = await listener.accept();
    // Pings come every 100 ms (a quarter of the timeout): twelve of them span three timeouts.
    await new Promise<void>((resolve) => {
      let pings = 0;
      socket.on('ping', () => {
        if (++pings === 12) resolve();
      });
    });
    expect(host.isOpen).toBe(true);
    expect(sandbox.isOpen).toBe(true);
  });

  it('rejects waiting accepts when closed, removes the socket file, and closes twice safely', async () => {
    const { listener, endpoint } = await openListener();
    const rejected = expect(listener.accept()).rejects.toThrow(/closed before the sandbox connected/);
    await listener.close();
    await listener.close();
    await rejected;
    await expect(stat(endpoint.socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
