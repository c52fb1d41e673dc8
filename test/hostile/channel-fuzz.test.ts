/**
 * Hostile suite: a property-based fuzz of the host's end of the control channel. A hostile peer
 * sends malformed, oversized, deeply nested, out-of-order and duplicated frames: arbitrary JSON and
 * bytes, truncated envelopes, valid envelopes with wrong params, requests for unknown methods,
 * responses to unknown, abandoned, already answered and absurd ids, binary frames.
 *
 * The host must never throw or crash, must close the channel on every frame that breaks the
 * protocol or answer it with an error, and must hold nothing once the channel closed. Each frame's
 * expected fate comes from a model of the protocol (the schemas, the per-method limits, the frame
 * bounds, which requests the host has pending or abandoned), so a frame the host lets through when
 * it should not, or refuses when it should not, fails the property.
 *
 * Two runs: thousands of cases against the host's `RpcConnection` (the options `ControlListener`
 * gives it) over an in-memory transport, and a few hundred against the real `ControlListener` over
 * a Unix socket, with a `ws` client as the peer. The counts are printed.
 */
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  type AnyMethod,
  DefineTools,
  Envelope,
  Execute,
  HandlerError,
  Hello,
  LoadContext,
  MAX_FRAME_DEPTH,
  MAX_FRAME_ELEMENTS,
  MAX_HOST_INBOUND_FRAME_BYTES,
  MAX_PROTOCOL_ERROR_BYTES,
  METHODS,
  PROTOCOL_VERSION,
  RpcConnection,
  type RpcConnectionStats,
  Subcall,
  ToolCall,
} from '@rlm/shared';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { ControlListener, UnixSocketEndpoint } from '../../orchestrator/src/sandbox/control/control-listener.js';

const IN_MEMORY_RUNS = 3000;
const HEAVY_RUNS = 30;
const SOCKET_RUNS = 200;

const KiB = 1024;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// The host under test

/** What the host's connection is created with: `ControlListener` passes its name and `maxPayload`. */
const HOST_OPTIONS = { name: 'host', maxMessageBytes: MAX_HOST_INBOUND_FRAME_BYTES };

/** The methods the host serves once the sandbox said hello (the listener's hello handler stays). */
const SERVED = new Set([Hello.method, Subcall.method, ToolCall.method]);

/** Handlers shaped like the host's: hello is refused once accepted; sub-calls and tools answer after a tick. */
function serveLikeTheHost(host: RpcConnection, options: { withHello: boolean }): void {
  if (options.withHello) {
    host.handle(Hello, () => {
      throw new HandlerError('already_connected', 'hello was already accepted');
    });
  }
  host.handle(Subcall, async (params) => {
    await Promise.resolve();
    return { outcomes: params.prompts.map((prompt) => ({ ok: true as const, text: `${prompt.length}` })) };
  });
  host.handle(ToolCall, async (params) => {
    await Promise.resolve();
    return { ok: true as const, value: params.args.length };
  });
}

const EMPTY_STATS: RpcConnectionStats = { pendingRequests: 0, abandonedRequests: 0, runningHandlers: 0, runningHandlerBytes: 0 };

// ---------------------------------------------------------------------------------------------
// The model: what the host has asked, and what each frame should do to it

interface Model {
  /** Requests the host sent and still awaits, by id. */
  pending: Map<number, AnyMethod>;
  /** Requests the host sent and abandoned (aborted); their late answers are dropped. */
  abandoned: Map<number, AnyMethod>;
  /** Ids that got their answer already. */
  answered: Set<number>;
  /** The host's next request id (it numbers its requests from 0). */
  nextId: number;
}

type Expectation =
  | { kind: 'close' }
  /** Answered with an error for `id` at once (invalid params), the channel open. */
  | { kind: 'answer-error'; id: number }
  /** Answered (result or error) for `id` once its handler ran, the channel open. */
  | { kind: 'answered'; id: number }
  /** Consumed (a response, a late response, a protocol_error), the channel open; `apply` updates the model. */
  | { kind: 'stay-open'; apply?: () => void };

const CLOSE: Expectation = { kind: 'close' };

interface Frame {
  data: string | Buffer;
  binary: boolean;
  /** Set for frames whose fate does not depend on the model (and would be costly to work out). */
  expect?: Expectation;
  label: string;
}

const METHOD_BY_NAME = new Map(METHODS.map((descriptor) => [descriptor.method, descriptor]));

/** Depth (the top-level object is 1) and number of values (array elements plus object members), as the scan counts them. */
function shapeOf(value: unknown): { depth: number; values: number } {
  let depth = 0;
  let values = 0;
  const stack: Array<{ value: unknown; level: number }> = [{ value, level: 0 }];
  while (stack.length > 0) {
    const { value: current, level } = stack.pop() as { value: unknown; level: number };
    if (current === null || typeof current !== 'object') continue;
    depth = Math.max(depth, level + 1);
    const children = Array.isArray(current) ? current : Object.values(current);
    values += children.length;
    for (const child of children) stack.push({ value: child, level: level + 1 });
  }
  return { depth, values };
}

/** What the host must do with `frame`, given what it has pending. Mirrors the protocol's rules, not the code. */
function expectationOf(frame: Frame, model: Model): Expectation {
  if (frame.expect) return frame.expect;
  if (frame.binary) return CLOSE;
  const bytes = typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.length;
  if (bytes > MAX_HOST_INBOUND_FRAME_BYTES) return CLOSE;
  // As the host reads it: UTF-8 (a lone surrogate in a string frame is sent as U+FFFD).
  const text = Buffer.from(frame.data).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return CLOSE;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return CLOSE;
  const shape = shapeOf(value);
  if (shape.depth > MAX_FRAME_DEPTH || shape.values > MAX_FRAME_ELEMENTS) return CLOSE;
  const object = value as Record<string, unknown>;
  switch (object.type) {
    case 'request': {
      const method = object.method;
      if (typeof method !== 'string' || !SERVED.has(method)) return CLOSE;
      const descriptor = METHOD_BY_NAME.get(method) as AnyMethod;
      if (bytes > descriptor.maxRequestBytes || !Envelope.safeParse(object).success) return CLOSE;
      const id = object.id as number;
      return descriptor.params.safeParse(object.params).success ? { kind: 'answered', id } : { kind: 'answer-error', id };
    }
    case 'response': {
      const id = object.id;
      if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return CLOSE;
      const descriptor = model.pending.get(id) ?? model.abandoned.get(id);
      if (!descriptor || bytes > descriptor.maxResultBytes) return CLOSE;
      const settle = () => {
        model.pending.delete(id);
        model.abandoned.delete(id);
        model.answered.add(id);
      };
      // An answer to an abandoned request is dropped whatever it holds.
      if (model.abandoned.has(id)) return { kind: 'stay-open', apply: settle };
      const envelope = Envelope.safeParse(object);
      if (!envelope.success) return CLOSE;
      if ('error' in envelope.data || descriptor.result.safeParse(object.result).success) return { kind: 'stay-open', apply: settle };
      return CLOSE;
    }
    case 'protocol_error':
      return bytes <= MAX_PROTOCOL_ERROR_BYTES && Envelope.safeParse(object).success ? { kind: 'stay-open' } : CLOSE;
    default:
      return CLOSE;
  }
}

// ---------------------------------------------------------------------------------------------
// What the hostile peer does

type ResponseBody =
  | { kind: 'valid' }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'junk'; result: unknown }
  | { kind: 'bad-error'; error: unknown }
  | { kind: 'neither' };

type Action =
  | { kind: 'text'; text: string }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'truncated'; envelope: Record<string, unknown>; cut: number }
  | { kind: 'request'; method: string; id: unknown; params: unknown }
  | { kind: 'response'; pick: 'pending' | 'abandoned' | 'answered' | 'never' | 'weird'; index: number; weirdId: unknown; body: ResponseBody }
  | { kind: 'protocol_error'; message: unknown }
  | { kind: 'deep'; depth: number; as: 'request' | 'response' | 'protocol_error' }
  | { kind: 'wide'; count: number }
  | { kind: 'oversized'; what: 'hello' | 'tool_call' | 'protocol_error' | 'subcall'; extra: number }
  | { kind: 'repeated-key'; key: 'type' | 'id' | 'method' }
  | { kind: 'repeat' }
  | { kind: 'host-request'; method: 'execute' | 'load_context' | 'define_tools' }
  | { kind: 'host-abort'; index: number };

const runtime = { node: 'v24.0.0', languages: ['javascript' as const] };
const weirdIds = fc.constantFrom(-1, 0.5, 2 ** 53, 1e308, -0.0, '1', null, true, [], {});
const requestId = fc.oneof({ weight: 9, arbitrary: fc.nat({ max: 1_000_000 }) }, { weight: 1, arbitrary: weirdIds });
const smallJson = fc.jsonValue({ maxDepth: 3 });

const validParams: Record<string, fc.Arbitrary<unknown>> = {
  hello: fc.constant({ protocolVersion: PROTOCOL_VERSION, token: 't'.repeat(32), runtime }),
  subcall: fc.record(
    {
      kind: fc.constantFrom('llm_query', 'rlm_query'),
      prompts: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 4 }),
      batched: fc.boolean(),
      model: fc.string({ minLength: 1, maxLength: 10 }),
    },
    { requiredKeys: ['kind', 'prompts', 'batched'] },
  ),
  tool_call: fc.record({ name: fc.constantFrom('lookup', 'search_rows'), args: fc.array(smallJson, { maxLength: 4 }) }),
};

const unknownMethod = fc
  .oneof(
    fc.constantFrom('execute', 'load_context', 'define_tools', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'Subcall', 'subcall ', '', 'é'),
    fc.string({ maxLength: 70 }),
  )
  .filter((name) => !SERVED.has(name));

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 1, arbitrary: fc.json({ maxDepth: 4 }).map((text): Action => ({ kind: 'text', text })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }).map((text): Action => ({ kind: 'text', text })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((bytes): Action => ({ kind: 'bytes', bytes })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 60 }).map((bytes): Action => ({ kind: 'binary', bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        envelope: fc.record({ type: fc.constantFrom('request', 'response'), id: fc.nat(), method: fc.constantFrom('subcall', 'tool_call'), params: smallJson }),
        cut: fc.nat(),
      })
      .map(({ envelope, cut }): Action => ({ kind: 'truncated', envelope, cut })),
  },
  {
    weight: 8,
    arbitrary: fc
      .constantFrom('hello', 'subcall', 'tool_call')
      .chain((method) =>
        fc.record({
          method: fc.constant(method),
          id: requestId,
          params: fc.oneof({ weight: 2, arbitrary: validParams[method] as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: smallJson }),
        }),
      )
      .map((request): Action => ({ kind: 'request', ...request })),
  },
  { weight: 1, arbitrary: fc.record({ method: unknownMethod, id: requestId, params: smallJson }).map((request): Action => ({ kind: 'request', ...request })) },
  {
    weight: 8,
    arbitrary: fc
      .record({
        pick: fc.constantFrom('pending', 'pending', 'abandoned', 'answered', 'never', 'weird'),
        index: fc.nat(),
        weirdId: weirdIds,
        body: fc.oneof(
          { weight: 4, arbitrary: fc.constant<ResponseBody>({ kind: 'valid' }) },
          {
            weight: 2,
            arbitrary: fc
              .record({ code: fc.string({ maxLength: 70 }), message: fc.string({ maxLength: 40 }) })
              .map((e): ResponseBody => ({ kind: 'error', ...e })),
          },
          { weight: 2, arbitrary: smallJson.map((result): ResponseBody => ({ kind: 'junk', result })) },
          { weight: 1, arbitrary: smallJson.map((error): ResponseBody => ({ kind: 'bad-error', error })) },
          { weight: 1, arbitrary: fc.constant<ResponseBody>({ kind: 'neither' }) },
        ),
      })
      .map((response): Action => ({ kind: 'response', ...response })),
  },
  { weight: 1, arbitrary: fc.oneof(fc.string({ maxLength: 40 }), smallJson).map((message): Action => ({ kind: 'protocol_error', message })) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        // Mostly around the bound, where an off-by-one would show.
        depth: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: MAX_FRAME_DEPTH - 4, max: MAX_FRAME_DEPTH + 2 }) }, fc.integer({ min: 0, max: 20_000 })),
        as: fc.constantFrom('request', 'response', 'protocol_error'),
      })
      .map((deep): Action => ({ kind: 'deep', ...deep })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Action>({ kind: 'repeated-key', key: 'type' }, { kind: 'repeated-key', key: 'id' }, { kind: 'repeated-key', key: 'method' }),
  },
  { weight: 3, arbitrary: fc.constant<Action>({ kind: 'repeat' }) },
  { weight: 4, arbitrary: fc.constantFrom('execute', 'load_context', 'define_tools').map((method): Action => ({ kind: 'host-request', method })) },
  { weight: 2, arbitrary: fc.nat().map((index): Action => ({ kind: 'host-abort', index })) },
);

/** The costly frames (megabytes each), few per run. */
const heavyAction: fc.Arbitrary<Action> = fc.oneof(
  fc.integer({ min: MAX_FRAME_ELEMENTS, max: MAX_FRAME_ELEMENTS + 1000 }).map((count): Action => ({ kind: 'wide', count })),
  fc
    // Mostly small methods: a frame over the sub-call limit is 32 MiB to build.
    .record({
      what: fc.constantFrom('hello', 'hello', 'protocol_error', 'protocol_error', 'tool_call', 'subcall'),
      extra: fc.integer({ min: 1, max: 64 * KiB }),
    })
    .map((oversized): Action => ({ kind: 'oversized', ...oversized })),
);

const VALID_RESULT: Record<string, unknown> = {
  execute: {
    status: 'ok',
    stdout: { text: '', truncatedChars: 0 },
    stderr: { text: '', truncatedChars: 0 },
    error: null,
    final: null,
    stateLost: false,
    variables: [],
    durationMs: 0,
  },
  load_context: { variable: 'context', bytes: 1, durationMs: 0 },
  define_tools: { defined: [] },
};

function pickFrom(ids: Iterable<number>, index: number): number | undefined {
  const list = [...ids];
  return list.length === 0 ? undefined : list[index % list.length];
}

/** Renders a peer action as a frame, given the model (which ids exist); undefined for host actions. */
function render(action: Action, model: Model): Frame | undefined {
  const json = (value: unknown, label: string): Frame => ({ data: JSON.stringify(value), binary: false, label });
  switch (action.kind) {
    case 'text':
      return { data: action.text, binary: false, label: 'text' };
    case 'bytes':
      return { data: Buffer.from(action.bytes), binary: false, label: 'bytes' };
    case 'binary':
      return { data: Buffer.from(action.bytes), binary: true, label: 'binary' };
    case 'truncated': {
      const text = JSON.stringify(action.envelope);
      return { data: text.slice(0, action.cut % text.length), binary: false, label: 'truncated', expect: CLOSE };
    }
    case 'request':
      return json({ type: 'request', id: action.id, method: action.method, params: action.params }, `request ${action.method}`);
    case 'response': {
      let id: unknown;
      if (action.pick === 'pending') id = pickFrom(model.pending.keys(), action.index);
      else if (action.pick === 'abandoned') id = pickFrom(model.abandoned.keys(), action.index);
      else if (action.pick === 'answered') id = pickFrom(model.answered, action.index);
      else if (action.pick === 'weird') id = action.weirdId;
      id ??= model.nextId + (action.index % 1000);
      const descriptor = typeof id === 'number' ? (model.pending.get(id) ?? model.abandoned.get(id) ?? Execute) : Execute;
      const body = action.body;
      const fields =
        body.kind === 'valid'
          ? { result: VALID_RESULT[descriptor.method] }
          : body.kind === 'error'
            ? { error: { code: body.code, message: body.message } }
            : body.kind === 'junk'
              ? { result: body.result }
              : body.kind === 'bad-error'
                ? { error: body.error }
                : {};
      return json({ type: 'response', id, ...fields }, `response ${action.pick} ${body.kind}`);
    }
    case 'protocol_error':
      return json({ type: 'protocol_error', message: action.message }, 'protocol_error');
    case 'deep': {
      const nested = `${'['.repeat(action.depth)}${']'.repeat(action.depth)}`;
      const data =
        action.as === 'request'
          ? `{"type":"request","id":1,"method":"subcall","params":${nested}}`
          : action.as === 'response'
            ? `{"type":"response","id":${pickFrom(model.pending.keys(), 0) ?? 0},"result":${nested}}`
            : `{"type":"protocol_error","message":"x","extra":${nested}}`;
      // One level for the envelope: a nest of `depth` arrays inside it is `depth + 1` deep.
      return { data, binary: false, label: `deep ${action.depth} ${action.as}`, ...(action.depth + 1 > MAX_FRAME_DEPTH ? { expect: CLOSE } : {}) };
    }
    case 'wide':
      return {
        data: `{"type":"request","id":1,"method":"subcall","params":{"kind":"llm_query","batched":true,"prompts":[${'"",'.repeat(action.count)}""]}}`,
        binary: false,
        label: `wide ${action.count}`,
        expect: CLOSE,
      };
    case 'oversized': {
      const limit = action.what === 'protocol_error' ? MAX_PROTOCOL_ERROR_BYTES : (METHOD_BY_NAME.get(action.what) as AnyMethod).maxRequestBytes;
      const filler = 'x'.repeat(limit + action.extra);
      const data =
        action.what === 'protocol_error'
          ? JSON.stringify({ type: 'protocol_error', message: filler })
          : action.what === 'hello'
            ? JSON.stringify({ type: 'request', id: 1, method: 'hello', params: { protocolVersion: PROTOCOL_VERSION, token: filler, runtime } })
            : action.what === 'subcall'
              ? JSON.stringify({ type: 'request', id: 1, method: 'subcall', params: { kind: 'llm_query', prompts: [filler], batched: false } })
              : JSON.stringify({ type: 'request', id: 1, method: 'tool_call', params: { name: 'lookup', args: [filler] } });
      return { data, binary: false, label: `oversized ${action.what}`, expect: CLOSE };
    }
    case 'repeated-key': {
      const data =
        action.key === 'type'
          ? '{"type":"protocol_error","message":"x","type":"request"}'
          : action.key === 'id'
            ? `{"type":"response","id":${pickFrom(model.pending.keys(), 0) ?? 0},"result":{},"id":${model.nextId + 5}}`
            : '{"type":"request","id":1,"method":"hello","params":{},"method":"subcall"}';
      return { data, binary: false, label: `repeated ${action.key}`, expect: CLOSE };
    }
    case 'repeat':
    case 'host-request':
    case 'host-abort':
      return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// In memory: the host's RpcConnection, fed frames by hand

interface Counters {
  cases: number;
  frames: number;
  closedByViolation: number;
  answeredWithError: number;
}

const counters = {
  memory: { cases: 0, frames: 0, closedByViolation: 0, answeredWithError: 0 },
  socket: { cases: 0, frames: 0, closedByViolation: 0, answeredWithError: 0 },
};

type Sent = { type?: string; id?: unknown; error?: unknown; result?: unknown };

function sentSince(sent: string[], from: number): Sent[] {
  return sent.slice(from).map((text) => JSON.parse(text) as Sent);
}

async function runInMemoryCase(actions: Action[], count: Counters): Promise<void> {
  count.cases += 1;
  const sent: string[] = [];
  const host: RpcConnection = new RpcConnection(
    {
      send: (text) => sent.push(text),
      close: (code, reason) => setImmediate(() => host.transportClosed(code, reason)),
    },
    HOST_OPTIONS,
  );
  serveLikeTheHost(host, { withHello: true });
  const model: Model = { pending: new Map(), abandoned: new Map(), answered: new Set(), nextId: 0 };
  const controllers = new Map<number, AbortController>();
  const requests: Array<{ settled: boolean }> = [];
  const awaitingAnswer: Array<{ id: number; from: number }> = [];
  let previous: Frame | undefined;
  let violated = false;

  for (const step of actions) {
    if (step.kind === 'host-request') {
      if (!host.isOpen) continue;
      const descriptor = step.method === 'execute' ? Execute : step.method === 'load_context' ? LoadContext : DefineTools;
      const params =
        step.method === 'execute'
          ? { code: '1', language: 'javascript' as const, timeoutMs: 1000, outputLimitChars: 100 }
          : step.method === 'load_context'
            ? { variable: 'context', file: 'context.txt', format: 'text' as const }
            : { tools: [] };
      const controller = new AbortController();
      const record = { settled: false };
      requests.push(record);
      const id = model.nextId;
      model.nextId += 1;
      model.pending.set(id, descriptor);
      controllers.set(id, controller);
      // The request's fate (answer, error, abort, close) is the model's business; it must only settle.
      void host
        .request(descriptor as AnyMethod, params, { signal: controller.signal })
        .catch(() => undefined)
        .finally(() => {
          record.settled = true;
        });
      expect(JSON.parse(sent.at(-1) ?? '{}')).toMatchObject({ type: 'request', id, method: descriptor.method });
      continue;
    }
    if (step.kind === 'host-abort') {
      const id = pickFrom(model.pending.keys(), step.index);
      if (id === undefined || !host.isOpen) continue;
      controllers.get(id)?.abort();
      model.abandoned.set(id, model.pending.get(id) as AnyMethod);
      model.pending.delete(id);
      continue;
    }
    const frame = step.kind === 'repeat' ? previous : render(step, model);
    if (!frame) continue;
    previous = frame;
    const expectation = expectationOf(frame, model);
    const before = sent.length;
    const wasOpen = host.isOpen;
    // The property's core: receive never throws, whatever the frame.
    host.receive(frame.data, frame.binary);
    count.frames += 1;
    if (!wasOpen) {
      expect(sent.length, 'a closed connection sends nothing').toBe(before);
      continue;
    }
    const what = `${frame.label}: ${String(frame.data).slice(0, 200)}`;
    switch (expectation.kind) {
      case 'close': {
        expect(host.isOpen, `the host should have closed on ${what}`).toBe(false);
        expect(sentSince(sent, before).map((m) => m.type)).toEqual(['protocol_error']);
        violated = true;
        count.closedByViolation += 1;
        break;
      }
      case 'answer-error':
        expect(host.isOpen, `the host should have stayed open on ${what}`).toBe(true);
        expect(sentSince(sent, before)).toContainEqual(expect.objectContaining({ type: 'response', id: expectation.id, error: expect.anything() }));
        count.answeredWithError += 1;
        break;
      case 'answered':
        expect(host.isOpen, `the host should have stayed open on ${what}`).toBe(true);
        awaitingAnswer.push({ id: expectation.id, from: before });
        break;
      case 'stay-open':
        expect(host.isOpen, `the host should have stayed open on ${what}`).toBe(true);
        expectation.apply?.();
        break;
    }
  }

  // Let running handlers finish: each answers after one microtask.
  await new Promise((resolve) => setImmediate(resolve));
  if (host.isOpen) {
    for (const { id, from } of awaitingAnswer) {
      expect(
        sentSince(sent, from).some((m) => m.type === 'response' && m.id === id),
        `request ${id} was never answered`,
      ).toBe(true);
    }
  }
  host.close();
  const info = await host.closed;
  if (violated) expect(info.violation?.name).toBe('ProtocolViolationError');
  await new Promise((resolve) => setImmediate(resolve));
  expect(
    requests.every((request) => request.settled),
    'every request of the host settles once the channel closed',
  ).toBe(true);
  expect(host.stats).toEqual(EMPTY_STATS);
  // A closed connection ignores whatever still arrives.
  const after = sent.length;
  host.receive('{"type":"request","id":1,"method":"subcall","params":{}}');
  host.receive(Buffer.from('[[['), true);
  expect(sent.length).toBe(after);
}

// ---------------------------------------------------------------------------------------------
// Over a real socket: the ControlListener, and a ws client as the sandbox

interface Peer {
  client: WebSocket;
  received: Sent[];
  closed: Promise<number>;
}

async function dial(socketPath: string): Promise<Peer> {
  const client = new WebSocket(`ws+unix://${socketPath}:/`, { perMessageDeflate: false });
  const received: Sent[] = [];
  client.on('message', (data) => received.push(JSON.parse(String(data)) as Sent));
  client.on('error', () => {});
  const closed = new Promise<number>((resolve) => client.on('close', (code) => resolve(code)));
  await once(client, 'open');
  return { client, received, closed };
}

/** `promise`, or a rejection naming `what` after a deadline generous for a loaded machine. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`waited 20 s for ${what}`)), 20_000);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Close codes of a channel closed for what the peer sent: 1008 from the host, 1002/1007/1009 from `ws` below it. */
const VIOLATION_CODES = [1002, 1007, 1008, 1009];

async function runSocketCase(actions: Action[], root: string, count: Counters): Promise<void> {
  count.cases += 1;
  const dir = await mkdtemp(path.join(root, 'case-'));
  const listener = await ControlListener.open({ endpoint: new UnixSocketEndpoint(dir), sandboxId: 'fuzz' });
  let host: RpcConnection | undefined;
  let peer: Peer | undefined;
  try {
    peer = await dial(path.join(dir, 'control.sock'));
    const accepting = listener.accept({ signal: AbortSignal.timeout(30_000) });
    peer.client.send(
      JSON.stringify({ type: 'request', id: 0, method: 'hello', params: { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime } }),
    );
    host = await accepting;
    serveLikeTheHost(host, { withHello: false });
    // The host asks the sandbox something, so responses have a pending request to go to.
    const asked = host.request(Execute, { code: '1', language: 'javascript', timeoutMs: 1000, outputLimitChars: 100 }).catch(() => undefined);
    const { received } = peer;
    await vi.waitFor(() => expect(received.filter((m) => m.type === 'request' || m.id === 0)).toHaveLength(2), { timeout: 30_000, interval: 5 });

    const model: Model = { pending: new Map([[0, Execute]]), abandoned: new Map(), answered: new Set(), nextId: 1 };
    const expectErrorFor: number[] = [];
    const expectAnswerFor: number[] = [];
    let closes = false;
    let previous: Frame | undefined;
    for (const step of actions) {
      const frame = step.kind === 'repeat' ? previous : render(step, model);
      if (!frame) continue;
      previous = frame;
      count.frames += 1;
      if (!closes) {
        const expectation = expectationOf(frame, model);
        if (expectation.kind === 'close') closes = true;
        else if (expectation.kind === 'answer-error') expectErrorFor.push(expectation.id);
        else if (expectation.kind === 'answered') expectAnswerFor.push(expectation.id);
        else expectation.apply?.();
      }
      // Frames after the one that closes the channel are sent too: they must be ignored.
      peer.client.send(frame.data, { binary: frame.binary });
    }
    const answered = (id: number, withError: boolean) => received.some((m) => m.type === 'response' && m.id === id && (!withError || m.error !== undefined));
    if (closes) {
      const code = await within(peer.closed, 'the host to close the channel');
      expect(VIOLATION_CODES).toContain(code);
      const closedHost = host;
      await vi.waitFor(() => expect(closedHost.isOpen).toBe(false), { timeout: 30_000, interval: 5 });
      count.closedByViolation += 1;
    } else {
      await vi.waitFor(
        () => {
          expect(expectAnswerFor.filter((id) => !answered(id, false))).toEqual([]);
          expect(expectErrorFor.filter((id) => !answered(id, true))).toEqual([]);
        },
        { timeout: 30_000, interval: 5 },
      );
      expect(host.isOpen).toBe(true);
      expect(peer.client.readyState).toBe(WebSocket.OPEN);
    }
    // Answers go out in order: those due before the violation came before the close.
    expect(expectErrorFor.filter((id) => !answered(id, true))).toEqual([]);
    count.answeredWithError += expectErrorFor.length;
    await listener.close();
    await asked;
    expect(host.isOpen).toBe(false);
    await vi.waitFor(() => expect(host?.stats).toEqual(EMPTY_STATS), { timeout: 30_000, interval: 5 });
    await within(peer.closed, 'the peer to see the close');
  } finally {
    await listener.close();
    peer?.client.terminate();
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

const problems: unknown[] = [];
const onProblem = (error: unknown) => problems.push(error);
let gc: () => void;
let heapBefore = 0;
let root: string;

beforeAll(async () => {
  process.on('unhandledRejection', onProblem);
  process.on('uncaughtException', onProblem);
  v8.setFlagsFromString('--expose-gc');
  gc = vm.runInNewContext('gc') as () => void;
  gc();
  heapBefore = process.memoryUsage().heapUsed;
  root = await mkdtemp(path.join(os.tmpdir(), 'rlm-channel-fuzz-'));
});

afterAll(async () => {
  process.off('unhandledRejection', onProblem);
  process.off('uncaughtException', onProblem);
  await rm(root, { recursive: true, force: true });
  const { memory, socket } = counters;
  console.log(
    `channel fuzz: ${memory.cases} in-memory cases (${memory.frames} frames: ${memory.closedByViolation} closed the channel, ${memory.answeredWithError} answered with an error); ` +
      `${socket.cases} cases over a Unix socket (${socket.frames} frames: ${socket.closedByViolation} closed the channel, ${socket.answeredWithError} answered with an error)`,
  );
});

describe("the host's control channel under a hostile peer", () => {
  it('refuses the 60 MB nested frame of the finding from its header, and a 30 MB one from its depth, over the socket', async () => {
    const dir = await mkdtemp(path.join(root, 'finding-'));
    const listener = await ControlListener.open({ endpoint: new UnixSocketEndpoint(dir), sandboxId: 'fuzz' });
    try {
      const peer = await dial(path.join(dir, 'control.sock'));
      const accepting = listener.accept({ signal: AbortSignal.timeout(30_000) });
      peer.client.send(
        JSON.stringify({ type: 'request', id: 0, method: 'hello', params: { protocolVersion: PROTOCOL_VERSION, token: listener.token, runtime } }),
      );
      const host = await accepting;
      serveLikeTheHost(host, { withHello: false });
      const peakBefore = process.resourceUsage().maxRSS * 1024;
      // 30 MB of [[[…]]] to a method the host serves, within the transport's limit: the scan stops at the bound.
      const depth = 15_000_000;
      peer.client.send(`{"type":"request","id":1,"method":"subcall","params":${'['.repeat(depth)}${']'.repeat(depth)}}`);
      expect(await within(peer.closed, 'the host to close the channel')).toBe(1008);
      expect((await host.closed).violation?.message).toMatch(/nests deeper than 515 levels/);
      // The frame was buffered (30 MB) and scanned, never parsed: parsing it took the host to ~1.5 GB.
      expect(process.resourceUsage().maxRSS * 1024 - peakBefore).toBeLessThan(512 * MiB);
    } finally {
      await listener.close();
    }

    // 60 MB, over the largest frame a sandbox may send: `ws` refuses it from its header (1009).
    const dir2 = await mkdtemp(path.join(root, 'finding-'));
    const listener2 = await ControlListener.open({ endpoint: new UnixSocketEndpoint(dir2), sandboxId: 'fuzz' });
    try {
      const peer = await dial(path.join(dir2, 'control.sock'));
      const accepting = listener2.accept({ signal: AbortSignal.timeout(30_000) });
      peer.client.send(
        JSON.stringify({ type: 'request', id: 0, method: 'hello', params: { protocolVersion: PROTOCOL_VERSION, token: listener2.token, runtime } }),
      );
      const host = await accepting;
      const depth = 30_000_000;
      peer.client.send(`{"type":"request","id":1,"method":"nope","params":${'['.repeat(depth)}${']'.repeat(depth)}}`);
      expect((await host.closed).code).toBe(1009);
      await within(peer.closed, 'the peer to see the close');
    } finally {
      await listener2.close();
    }
  });

  it(`never throws, closes on or answers every bad frame, and holds nothing after close (${IN_MEMORY_RUNS} in-memory cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 25 }), async (actions) => {
        await runInMemoryCase(actions, counters.memory);
      }),
      { numRuns: IN_MEMORY_RUNS },
    );
    expect(problems).toEqual([]);
  }, 300_000);

  it(`does the same with a frame of megabytes among the others (${HEAVY_RUNS} in-memory cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { maxLength: 10 }), heavyAction, fc.nat(), async (actions, heavy, at) => {
        const where = at % (actions.length + 1);
        await runInMemoryCase([...actions.slice(0, where), heavy, ...actions.slice(where)], counters.memory);
      }),
      // Shrinking cases of megabytes would take minutes: the first failure is reported as found.
      { numRuns: HEAVY_RUNS, endOnFailure: true },
    );
    expect(problems).toEqual([]);
  }, 300_000);

  it(`does the same through the real ControlListener over a Unix socket (${SOCKET_RUNS} cases)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(action, { minLength: 1, maxLength: 10 }), async (actions) => {
        await runSocketCase(actions, root, counters.socket);
      }),
      { numRuns: SOCKET_RUNS, endOnFailure: true },
    );
    expect(problems).toEqual([]);
  }, 300_000);

  it('keeps its memory bounded over the whole run', () => {
    gc();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    console.log(`channel fuzz: heap grew by ${(grown / MiB).toFixed(1)} MiB over the run`);
    expect(grown).toBeLessThan(64 * MiB);
    expect(problems).toEqual([]);
  });
});
