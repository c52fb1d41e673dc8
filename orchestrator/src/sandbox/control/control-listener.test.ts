import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Execute, Hello, LoadContext, PROTOCOL_VERSION, RemoteError, connectionOverWebSocket, type RpcConnection } from '@rlm/shared';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ControlListener, UnixSocketEndpoint } from './control-listener.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

async function openListener() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-control-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const endpoint = new UnixSocketEndpoint(dir);
  const listener = await ControlListener.open({ endpoint, sandboxId: 'test' });
  cleanups.push(() => listener.close());
  return { listener, endpoint };
}

/** Dials the listener the way the sandbox does, returning the sandbox end's connection. */
async function dial(socketPath: string): Promise<RpcConnection> {
  const socket = new WebSocket(`ws+unix://${socketPath}:/`);
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  const connection = connectionOverWebSocket(socket, { name: 'sandbox' });
  cleanups.push(async () => connection.close());
  return connection;
}

const runtime = { node: process.version, languages: ['javascript' as const] };

describe('ControlListener', () => {
  it('makes the socket connectable by the container user (mode 0666)', async () => {
    const { endpoint } = await openListener();
    expect((await stat(endpoint.socketPath)).mode & 0o777).toBe(0o666);
  });

  it('accepts the connection that presents the right token, and serves requests on it', async () => {
    const { listener, endpoint } = await openListener();
    const sandbox = await dial(endpoint.socketPath);
    sandbox.handle(LoadContext, (params) => ({ variable: params.variable, bytes: 3, durationMs: 0 }));
    const accepting = listener.accept();
    await expect(sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime })).resolves.toEqual({ accepted: true });
    const host = await accepting;
    await expect(host.request(LoadContext, { variable: 'context', file: 'context.txt', format: 'text' })).resolves.toMatchObject({ bytes: 3 });
  });

  it('refuses a wrong token and closes that connection', async () => {
    const { listener, endpoint } = await openListener();
    const sandbox = await dial(endpoint.socketPath);
    const error = await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: 'x'.repeat(32), runtime }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).code).toBe('unauthorized');
    expect((await sandbox.closed).code).toBe(1008);
    // The listener still waits for the real sandbox.
    const real = await dial(endpoint.socketPath);
    const accepting = listener.accept();
    await real.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    await expect(accepting).resolves.toBeDefined();
  });

  it('refuses a sandbox speaking another protocol version, telling the user to rebuild the image', async () => {
    const { listener, endpoint } = await openListener();
    const sandbox = await dial(endpoint.socketPath);
    const error = await sandbox.request(Hello, { protocolVersion: PROTOCOL_VERSION + 1, token: listener.token, runtime }).catch((e: unknown) => e);
    expect((error as RemoteError).code).toBe('version_mismatch');
    expect((error as Error).message).toMatch(/rlm sandbox build/);
  });

  it('serves nothing before hello', async () => {
    const { endpoint } = await openListener();
    const sandbox = await dial(endpoint.socketPath);
    // The host registers no handler for host-to-sandbox methods; a sandbox calling one gets method_not_found.
    await expect(sandbox.request(Execute, { code: '1', language: 'javascript', timeoutMs: 10, outputLimitChars: 10 })).rejects.toMatchObject({
      code: 'method_not_found',
    });
  });

  it('closes a second connection once one is accepted', async () => {
    const { listener, endpoint } = await openListener();
    const first = await dial(endpoint.socketPath);
    await first.request(Hello, { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime });
    const second = await dial(endpoint.socketPath);
    const info = await second.closed;
    expect(info.code).toBe(1008);
    expect(first.isOpen).toBe(true);
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
