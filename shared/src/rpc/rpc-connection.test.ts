import { describe, expect, it, vi } from 'vitest';
import { Execute, LoadContext, Subcall } from '../protocol/methods.js';
import type { ExecuteResult } from '../protocol/messages.js';
import { ConnectionClosedError, MessageTooLargeError, ProtocolViolationError, RemoteError, RequestAbortedError } from './errors.js';
import { HandlerError, RpcConnection } from './rpc-connection.js';

/** A promise and the function that resolves it. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * Two connections wired back to back, delivering frames asynchronously like a socket would.
 * `frames` holds what each side sent; `delivered` what each side has been handed (after `receive`).
 */
function pair(maxMessageBytes?: number) {
  const frames: { toB: string[]; toA: string[] } = { toB: [], toA: [] };
  const delivered: { toB: string[]; toA: string[] } = { toB: [], toA: [] };
  let a!: RpcConnection;
  let b!: RpcConnection;
  const closeBoth = (code: number, reason: string) =>
    setImmediate(() => {
      a.transportClosed(code, reason);
      b.transportClosed(code, reason);
    });
  /** A transport whose frames reach `peer()` on a later turn of the event loop. */
  const transport = (peer: () => RpcConnection, sent: string[], handed: string[]) => ({
    send: (text: string) => {
      sent.push(text);
      setImmediate(() => {
        peer().receive(text);
        handed.push(text);
      });
    },
    close: closeBoth,
  });
  const limits = maxMessageBytes ? { maxMessageBytes } : {};
  a = new RpcConnection(
    transport(() => b, frames.toB, delivered.toB),
    { name: 'host', ...limits },
  );
  b = new RpcConnection(
    transport(() => a, frames.toA, delivered.toA),
    { name: 'sandbox', ...limits },
  );
  return { host: a, sandbox: b, frames, delivered };
}

const okResult: ExecuteResult = {
  status: 'ok',
  stdout: { text: 'hi\n', truncatedChars: 0 },
  stderr: { text: '', truncatedChars: 0 },
  error: null,
  final: null,
  stateLost: false,
  variables: [],
  durationMs: 1,
};

const executeParams = { code: 'print("hi")', language: 'javascript' as const, timeoutMs: 1000, outputLimitChars: 100 };

describe('RpcConnection', () => {
  it('delivers a request to the handler and resolves with its validated result', async () => {
    const { host, sandbox } = pair();
    sandbox.handle(Execute, (params) => ({ ...okResult, stdout: { text: params.code, truncatedChars: 0 } }));
    const result = await host.request(Execute, executeParams);
    expect(result.stdout.text).toBe('print("hi")');
  });

  it('answers a request with invalid params with invalid_params, naming the field, and stays open', async () => {
    const { sandbox, frames } = pair();
    sandbox.handle(Execute, () => okResult);
    sandbox.receive(JSON.stringify({ type: 'request', id: 7, method: 'execute', params: { code: 1 } }));
    await new Promise((resolve) => setImmediate(resolve));
    const reply = JSON.parse(frames.toA.at(-1) ?? '{}');
    expect(reply).toMatchObject({ type: 'response', id: 7, error: { code: 'invalid_params' } });
    expect(reply.error.message).toContain('code');
    expect(sandbox.isOpen).toBe(true);
  });

  it('answers an unknown method with method_not_found', async () => {
    const { host } = pair();
    await expect(host.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'method_not_found',
    });
  });

  it('turns a handler exception into a RemoteError carrying its code and message', async () => {
    const { host, sandbox } = pair();
    sandbox.handle(Execute, () => {
      throw new HandlerError('unsupported_language', 'no python here');
    });
    const error = await host.request(Execute, executeParams).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteError);
    expect((error as RemoteError).code).toBe('unsupported_language');
    expect((error as RemoteError).message).toContain('no python here');
  });

  it('closes with a policy violation when the peer sends a frame that is not JSON', async () => {
    const { host } = pair();
    host.receive('{not json');
    const info = await host.closed;
    expect(info.code).toBe(1008);
    expect(info.violation).toBeInstanceOf(ProtocolViolationError);
  });

  it('closes on a frame that matches no envelope and on a binary frame', async () => {
    const first = pair();
    first.host.receive(JSON.stringify({ type: 'surprise', id: 1 }));
    expect((await first.host.closed).code).toBe(1008);
    const second = pair();
    second.host.receive(Buffer.from('{}'), true);
    expect((await second.host.closed).reason).toContain('binary');
  });

  it('rejects a result that fails its schema and closes the connection', async () => {
    const { host, sandbox } = pair();
    sandbox.handle(Execute, () => ({ status: 'ok' }) as unknown as ExecuteResult);
    await expect(host.request(Execute, executeParams)).rejects.toBeInstanceOf(ProtocolViolationError);
    expect(host.isOpen).toBe(false);
  });

  it('refuses to send a message over the size limit, sending nothing', async () => {
    const { host, sandbox, frames } = pair(1024);
    sandbox.handle(Subcall, () => ({ outcomes: [] }));
    const error = await sandbox.request(Subcall, { kind: 'llm_query', prompts: ['x'.repeat(2000)], batched: false }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect((error as Error).message).toMatch(/split the batch/);
    expect(frames.toA).toHaveLength(0);
    expect(host.isOpen).toBe(true);
  });

  it('answers result_too_large when a handler result would exceed the limit', async () => {
    const { host, sandbox } = pair(2048);
    sandbox.handle(Execute, () => ({ ...okResult, stdout: { text: 'y'.repeat(4096), truncatedChars: 0 } }));
    await expect(host.request(Execute, executeParams)).rejects.toMatchObject({ code: 'result_too_large' });
  });

  it('rejects pending requests with ConnectionClosedError and aborts running handlers on close', async () => {
    const { host, sandbox } = pair();
    const handlerStarted = deferred<AbortSignal>();
    sandbox.handle(Execute, (_params, { signal }) => {
      handlerStarted.resolve(signal);
      return new Promise<ExecuteResult>(() => {});
    });
    const pending = host.request(Execute, executeParams);
    const handlerSignal = await handlerStarted.promise;
    expect(handlerSignal.aborted).toBe(false);
    host.close();
    host.close(); // closing twice is a no-op
    await expect(pending).rejects.toBeInstanceOf(ConnectionClosedError);
    await sandbox.closed;
    expect(handlerSignal.aborted).toBe(true);
    await expect(host.request(Execute, executeParams)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('rejects with RequestAbortedError when the caller aborts, ignoring the late answer', async () => {
    const { host, sandbox, delivered } = pair();
    const handlerStarted = deferred();
    const answer = deferred();
    sandbox.handle(Execute, async () => {
      handlerStarted.resolve();
      await answer.promise;
      return okResult;
    });
    const controller = new AbortController();
    const pending = host.request(Execute, executeParams, { signal: controller.signal });
    await handlerStarted.promise;
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(RequestAbortedError);
    answer.resolve();
    await vi.waitFor(() => expect(delivered.toA.map((text) => JSON.parse(text).type)).toContain('response'), { timeout: 10_000, interval: 1 });
    expect(host.isOpen).toBe(true);
    expect(sandbox.isOpen).toBe(true);
  });
});
