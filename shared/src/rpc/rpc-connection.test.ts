import { describe, expect, it, vi } from 'vitest';
import { MAX_FINAL_CHARS, MAX_LISTED_VARIABLES, MAX_OUTPUT_LIMIT_CHARS } from '../limits.js';
import {
  Execute,
  Hello,
  LoadContext,
  MAX_FRAME_BYTES,
  MAX_HOST_INBOUND_FRAME_BYTES,
  MAX_SANDBOX_INBOUND_FRAME_BYTES,
  METHODS,
  Subcall,
  ToolCall,
} from '../protocol/methods.js';
import type { ExecuteResult } from '../protocol/messages.js';
import { ConnectionClosedError, MessageTooLargeError, PeerCancelledError, ProtocolViolationError, RemoteError, RequestAbortedError } from './errors.js';
import { HandlerError, RpcConnection, type RpcConnectionOptions } from './rpc-connection.js';

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
function pair(options: Omit<RpcConnectionOptions, 'name'> = {}) {
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
  a = new RpcConnection(
    transport(() => b, frames.toB, delivered.toB),
    { name: 'host', ...options },
  );
  b = new RpcConnection(
    transport(() => a, frames.toA, delivered.toA),
    { name: 'sandbox', ...options },
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

  it('closes the channel on a request for a method it does not serve, telling the peer which', async () => {
    const { host, sandbox } = pair();
    const error = await host.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((await sandbox.closed).violation?.message).toMatch(/a request for "load_context", a method sandbox does not serve/);
    expect((await host.closed).reason).toMatch(/peer reported: a request for "load_context"/);
  });

  it('answers an unknown method with method_not_found and stays open when told to (unknownMethods: answer)', async () => {
    const { host, sandbox } = pair({ unknownMethods: 'answer' });
    await expect(host.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' })).rejects.toMatchObject({
      name: 'RemoteError',
      code: 'method_not_found',
    });
    expect(sandbox.isOpen).toBe(true);
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

  it("refuses to send a message over its method's limit, sending nothing", async () => {
    const { host, sandbox, frames } = pair();
    sandbox.handle(Subcall, () => ({ outcomes: [] }));
    const error = await sandbox
      .request(Subcall, { kind: 'llm_query', prompts: ['x'.repeat(Subcall.maxRequestBytes / 2), 'x'.repeat(Subcall.maxRequestBytes / 2)], batched: true })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect((error as Error).message).toMatch(/over the control channel's limit of 32\.0 MiB; send less per call \(split the batch/);
    expect(frames.toA).toHaveLength(0);
    expect(host.isOpen).toBe(true);
  });

  it("answers result_too_large when a handler's result would exceed its method's limit", async () => {
    const { host, sandbox } = pair();
    sandbox.handle(LoadContext, () => ({ variable: 'v'.repeat(LoadContext.maxResultBytes), bytes: 1, durationMs: 1 }));
    await expect(host.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' })).rejects.toMatchObject({ code: 'result_too_large' });
    expect(host.isOpen).toBe(true);
  });

  it('closes on a frame over maxMessageBytes, whatever its method allows', async () => {
    const { connection } = lone({ maxMessageBytes: 1024 });
    connection.handle(Subcall, () => ({ outcomes: [] }));
    expect(
      feed(
        connection,
        JSON.stringify({ type: 'request', id: 1, method: 'subcall', params: { kind: 'llm_query', prompts: ['x'.repeat(2000)], batched: false } }),
      ).parsed,
    ).toBe(false);
    expect((await connection.closed).violation?.message).toMatch(/a frame of 2\.\d KiB is over the channel's limit of 1\.0 KiB/);
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

  it('rejects with RequestAbortedError when the caller aborts, and cancels the handler on the other end, which sends no answer', async () => {
    const { host, sandbox, frames } = pair();
    const handlerStarted = deferred();
    const handlerAborted = deferred<unknown>();
    sandbox.handle(Execute, async (_params, { signal }) => {
      handlerStarted.resolve();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      handlerAborted.resolve(signal.reason);
      return okResult;
    });
    const controller = new AbortController();
    const pending = host.request(Execute, executeParams, { signal: controller.signal });
    await handlerStarted.promise;
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(RequestAbortedError);
    expect(frames.toB.map((text) => JSON.parse(text).type)).toEqual(['request', 'cancel']);
    expect(await handlerAborted.promise).toBeInstanceOf(PeerCancelledError);
    // The handler returned after its cancel: nothing goes back, and neither end breaks.
    await vi.waitFor(() => expect(sandbox.stats.runningHandlers).toBe(0), { timeout: 10_000, interval: 1 });
    expect(frames.toA).toEqual([]);
    expect(host.isOpen).toBe(true);
    expect(sandbox.isOpen).toBe(true);
  });

  it('cancels every hop of a relayed request when the first caller aborts', async () => {
    // cell process → server → host, as a cell's sub-call travels: aborting at the start reaches the end.
    const first = pair();
    const second = pair();
    const hostAborted = deferred<unknown>();
    const hostStarted = deferred();
    second.host.handle(Subcall, async (_params, { signal }) => {
      hostStarted.resolve();
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      hostAborted.resolve(signal.reason);
      return { outcomes: [] };
    });
    // The relay: the middle end serves the first connection by asking over the second, with the handler's signal.
    first.host.handle(Subcall, (params, { signal }) => second.sandbox.request(Subcall, params, { signal }));
    const controller = new AbortController();
    const pending = first.sandbox.request(Subcall, { kind: 'llm_query', prompts: ['p'], batched: false }, { signal: controller.signal });
    await hostStarted.promise;
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(RequestAbortedError);
    expect(await hostAborted.promise).toBeInstanceOf(PeerCancelledError);
    await vi.waitFor(() => expect(second.host.stats.runningHandlers + first.host.stats.runningHandlers).toBe(0), { timeout: 10_000, interval: 1 });
  });

  it('ignores a cancel for a request that already finished, and still answers the next one', async () => {
    const { host, sandbox } = pair();
    sandbox.handle(Execute, () => okResult);
    const controller = new AbortController();
    await host.request(Execute, executeParams, { signal: controller.signal });
    sandbox.receive(JSON.stringify({ type: 'cancel', id: 0 }));
    sandbox.receive(JSON.stringify({ type: 'cancel', id: 12345 }));
    await expect(host.request(Execute, executeParams)).resolves.toEqual(okResult);
    expect(sandbox.isOpen).toBe(true);
  });
});

/**
 * One connection fed frames by hand: `sent` holds what it sent (as text), `closes` how its transport
 * was closed. Closing the transport reports back as a socket would.
 */
function lone(options: Omit<RpcConnectionOptions, 'name'> = {}) {
  const sent: string[] = [];
  const closes: Array<{ code: number; reason: string }> = [];
  const connection: RpcConnection = new RpcConnection(
    {
      send: (text) => sent.push(text),
      close: (code, reason) => {
        closes.push({ code, reason });
        setImmediate(() => connection.transportClosed(code, reason));
      },
    },
    { name: 'host', ...options },
  );
  return { connection, sent, closes, lastSent: () => JSON.parse(sent.at(-1) ?? 'null') as Record<string, unknown> };
}

/** Feeds `frame` as bytes, as the WebSocket adapter does, and says whether JSON.parse ran meanwhile. */
function feed(connection: RpcConnection, frame: string | Buffer): { parsed: boolean } {
  const spy = vi.spyOn(JSON, 'parse');
  try {
    connection.receive(typeof frame === 'string' ? Buffer.from(frame) : frame);
    return { parsed: spy.mock.calls.length > 0 };
  } finally {
    spy.mockRestore();
  }
}

const KiB = 1024;
const MiB = 1024 * 1024;
const runtime = { node: 'v24', languages: ['javascript' as const] };
const helloFrame = (token: string, id = 0) => JSON.stringify({ type: 'request', id, method: 'hello', params: { protocolVersion: 2, token, runtime } });

describe('RpcConnection frame discipline', () => {
  it('refuses a request over its method limit from the header, before parsing it', async () => {
    const { connection, closes } = lone();
    connection.handle(Hello, () => ({ accepted: true as const }));
    const frame = helloFrame('t'.repeat(9 * KiB));
    expect(Buffer.byteLength(frame)).toBeGreaterThan(Hello.maxRequestBytes);
    expect(feed(connection, frame).parsed).toBe(false);
    const info = await connection.closed;
    expect(info.code).toBe(1008);
    expect(info.violation?.message).toMatch(/a hello request of 9\.\d KiB is over its limit of 8\.0 KiB/);
    expect(Buffer.byteLength(closes[0]?.reason ?? '')).toBeLessThanOrEqual(123);
  });

  it('serves a request within its limit, and a subcall far larger than a hello', async () => {
    const { connection, lastSent } = lone();
    connection.handle(Subcall, (params) => ({ outcomes: params.prompts.map(() => ({ ok: true as const, text: 'ok' })) }));
    connection.receive(
      JSON.stringify({ type: 'request', id: 3, method: 'subcall', params: { kind: 'llm_query', prompts: ['p'.repeat(MiB)], batched: false } }),
    );
    await vi.waitFor(() => expect(lastSent()).toMatchObject({ type: 'response', id: 3, result: { outcomes: [{ ok: true }] } }), {
      timeout: 10_000,
      interval: 1,
    });
    expect(connection.isOpen).toBe(true);
  });

  it('refuses a frame nested deeper than the bound before parsing it (a long [[[…]]])', async () => {
    const { connection } = lone();
    connection.handle(Subcall, () => ({ outcomes: [] }));
    const frame = `{"type":"request","id":1,"method":"subcall","params":${'['.repeat(MiB)}${']'.repeat(MiB)}}`;
    expect(feed(connection, frame).parsed).toBe(false);
    expect((await connection.closed).violation?.message).toMatch(/nests deeper than 515 levels/);
  });

  it('refuses a frame holding more values than the bound before parsing it', async () => {
    const { connection } = lone();
    connection.handle(Subcall, () => ({ outcomes: [] }));
    const frame = `{"type":"request","id":1,"method":"subcall","params":[${'0,'.repeat(1_000_000)}0]}`;
    expect(feed(connection, frame).parsed).toBe(false);
    expect((await connection.closed).violation?.message).toMatch(/holds more than 1000000 values/);
  });

  it("holds a response to its request's result limit, failing the request", async () => {
    const { connection, sent } = lone();
    const pending = connection.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' }).catch((e: unknown) => e);
    const id = (JSON.parse(sent[0] ?? '{}') as { id: number }).id;
    const frame = JSON.stringify({ type: 'response', id, result: { variable: 'v'.repeat(10 * KiB), bytes: 1, durationMs: 1 } });
    expect(feed(connection, frame).parsed).toBe(false);
    const error = await pending;
    expect(error).toBeInstanceOf(ProtocolViolationError);
    expect((error as Error).message).toMatch(/a load_context response of 10\.\d KiB is over its limit of 8\.0 KiB/);
  });

  it('closes on a response to a request it never sent, and on a second response to one', async () => {
    const never = lone();
    expect(feed(never.connection, JSON.stringify({ type: 'response', id: 0, result: {} })).parsed).toBe(false);
    expect((await never.connection.closed).violation?.message).toMatch(/a response to request 0, which host never sent/);

    const twice = lone();
    const answer = twice.connection.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' });
    const response = JSON.stringify({ type: 'response', id: 0, result: { variable: 'context', bytes: 1, durationMs: 1 } });
    twice.connection.receive(response);
    await expect(answer).resolves.toMatchObject({ bytes: 1 });
    expect(feed(twice.connection, response).parsed).toBe(false);
    expect((await twice.connection.closed).violation?.message).toMatch(/a second response to request 0/);
  });

  it('closes on a cancel frame without a numeric id or over its size limit', () => {
    const noId = lone();
    feed(noId.connection, JSON.stringify({ type: 'cancel' }));
    expect(noId.connection.isOpen).toBe(false);
    const large = lone();
    feed(large.connection, JSON.stringify({ type: 'cancel', id: 1, padding: 'x'.repeat(300) }));
    expect(large.connection.isOpen).toBe(false);
    expect(large.closes[0]?.reason).toMatch(/cancel frame/);
  });

  it('drops the late answer to an abandoned request unparsed and stays open', async () => {
    const { connection } = lone();
    const controller = new AbortController();
    const answer = connection.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' }, { signal: controller.signal });
    controller.abort();
    await expect(answer).rejects.toBeInstanceOf(RequestAbortedError);
    expect(connection.stats).toMatchObject({ pendingRequests: 0, abandonedRequests: 1 });
    expect(feed(connection, JSON.stringify({ type: 'response', id: 0, result: { variable: 'context', bytes: 1, durationMs: 1 } })).parsed).toBe(false);
    expect(connection.isOpen).toBe(true);
    expect(connection.stats.abandonedRequests).toBe(0);
  });

  it('remembers a bounded number of abandoned requests, still dropping late answers to the forgotten ones', async () => {
    const { connection } = lone();
    const controller = new AbortController();
    const abandoned = Array.from({ length: 5000 }, () =>
      connection.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' }, { signal: controller.signal }).catch(() => undefined),
    );
    controller.abort();
    await Promise.all(abandoned);
    expect(connection.stats).toMatchObject({ pendingRequests: 0, abandonedRequests: 4096 });
    const answer = (id: number) => JSON.stringify({ type: 'response', id, result: { variable: 'context', bytes: 1, durationMs: 1 } });
    connection.receive(answer(0)); // forgotten: dropped
    connection.receive(answer(4999)); // remembered: dropped
    expect(connection.isOpen).toBe(true);
    expect(connection.stats.abandonedRequests).toBe(4095);
    connection.receive(answer(5000)); // never sent
    expect(connection.isOpen).toBe(false);
  });

  it('answers busy past maxConcurrentRequests without parsing the request, and serves again once one finishes', async () => {
    const { connection, sent } = lone({ maxConcurrentRequests: 1 });
    const release = deferred();
    connection.handle(Subcall, async () => {
      await release.promise;
      return { outcomes: [{ ok: true as const, text: 'done' }] };
    });
    const request = (id: number) => JSON.stringify({ type: 'request', id, method: 'subcall', params: { kind: 'llm_query', prompts: ['p'], batched: false } });
    connection.receive(request(1));
    await vi.waitFor(() => expect(connection.stats.runningHandlers).toBe(1), { timeout: 10_000, interval: 1 });
    expect(feed(connection, request(2)).parsed).toBe(false);
    expect(JSON.parse(sent.at(-1) ?? '{}')).toMatchObject({ id: 2, error: { code: 'busy' } });
    release.resolve();
    await vi.waitFor(() => expect(connection.stats.runningHandlers).toBe(0), { timeout: 10_000, interval: 1 });
    connection.receive(request(3));
    await vi.waitFor(() => expect(JSON.parse(sent.at(-1) ?? '{}')).toMatchObject({ id: 3, result: { outcomes: [{ text: 'done' }] } }), {
      timeout: 10_000,
      interval: 1,
    });
  });

  it("cuts a handler's error message so the answer fits the method's result limit", async () => {
    const { connection, sent } = lone();
    connection.handle(Hello, () => {
      throw new HandlerError('unauthorized', `\u0001${'é'.repeat(100_000)}`);
    });
    connection.receive(helloFrame('t'.repeat(32)));
    await vi.waitFor(() => expect(sent).toHaveLength(1), { timeout: 10_000, interval: 1 });
    expect(Buffer.byteLength(sent[0] ?? '')).toBeLessThanOrEqual(Hello.maxResultBytes);
    expect(JSON.parse(sent[0] ?? '{}')).toMatchObject({ id: 0, error: { code: 'unauthorized' } });
  });

  it.each([
    ['an unknown frame type', '{"type":"notify","id":1}', /unknown type "notify"/],
    ['a frame without a type', '{"id":1,"method":"hello"}', /no string "type"/],
    ['a request without a method', '{"type":"request","id":1}', /no string "method"/],
    ['a response with an id that is no request id', '{"type":"response","id":-1,"result":null}', /no valid numeric "id"/],
    [
      'a protocol_error over its limit',
      JSON.stringify({ type: 'protocol_error', message: 'm'.repeat(600 * KiB) }),
      /protocol_error frame of 600\.\d KiB is over/,
    ],
    ['a frame whose header key repeats', '{"type":"request","method":"hello","id":1,"method":"subcall","params":{}}', /"method" twice/],
    ['a binary frame', Buffer.from('{}'), /binary/],
  ])('closes on %s without parsing it', async (_what, frame, problem) => {
    const { connection } = lone();
    connection.handle(Hello, () => ({ accepted: true as const }));
    const spy = vi.spyOn(JSON, 'parse');
    try {
      connection.receive(frame, Buffer.isBuffer(frame));
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
    expect((await connection.closed).violation?.message).toMatch(problem);
  });

  it('refuses to send a request over its method limit, naming the limit', async () => {
    const { connection, sent } = lone();
    const error = await connection.request(ToolCall, { name: 'lookup', args: ['x'.repeat(9 * MiB)] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MessageTooLargeError);
    expect((error as Error).message).toMatch(/over the control channel's limit of 8\.0 MiB/);
    expect(sent).toHaveLength(0);
  });

  it('holds nothing once closed: no pending, abandoned or running request', async () => {
    const { connection } = lone();
    connection.handle(Subcall, () => new Promise<never>(() => {}));
    const pending = connection.request(LoadContext, { variable: 'context', file: 'a.txt', format: 'text' }).catch(() => undefined);
    const controller = new AbortController();
    const abandoned = connection.request(Execute, executeParams, { signal: controller.signal }).catch(() => undefined);
    controller.abort();
    connection.receive(JSON.stringify({ type: 'request', id: 0, method: 'subcall', params: { kind: 'llm_query', prompts: ['p'], batched: false } }));
    await vi.waitFor(
      () => expect(connection.stats).toEqual({ pendingRequests: 1, abandonedRequests: 1, runningHandlers: 1, runningHandlerBytes: expect.any(Number) }),
      {
        timeout: 10_000,
        interval: 1,
      },
    );
    connection.close();
    await Promise.all([pending, abandoned]);
    await vi.waitFor(() => expect(connection.stats).toEqual({ pendingRequests: 0, abandonedRequests: 0, runningHandlers: 0, runningHandlerBytes: 0 }), {
      timeout: 10_000,
      interval: 1,
    });
  });
});

describe('method limits', () => {
  it('let the host receive at most an execute result and the sandbox at most a subcall result', () => {
    expect(MAX_HOST_INBOUND_FRAME_BYTES).toBe(Execute.maxResultBytes);
    expect(MAX_SANDBOX_INBOUND_FRAME_BYTES).toBe(Subcall.maxResultBytes);
    expect(MAX_FRAME_BYTES).toBe(Math.max(...METHODS.flatMap((m) => [m.maxRequestBytes, m.maxResultBytes])));
  });

  it('fit the largest legitimate execute result: two full output streams, a full final answer, the listed variables', () => {
    const full = (chars: number) => 'é'.repeat(chars); // 2 bytes of UTF-8 each; the estimate allows 3
    const result = {
      ...okResult,
      stdout: { text: full(MAX_OUTPUT_LIMIT_CHARS), truncatedChars: 1 },
      stderr: { text: full(MAX_OUTPUT_LIMIT_CHARS), truncatedChars: 1 },
      final: { value: full(MAX_FINAL_CHARS), via: 'FINAL' as const },
      variables: Array.from({ length: MAX_LISTED_VARIABLES }, (_, i) => ({ name: `v${i}`.padEnd(256, 'x'), type: 'é'.repeat(256) })),
    };
    const bytes = Buffer.byteLength(JSON.stringify({ type: 'response', id: Number.MAX_SAFE_INTEGER, result }));
    expect(bytes).toBeLessThanOrEqual(Execute.maxResultBytes);
  });
});
