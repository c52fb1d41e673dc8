import { describe, expect, it } from 'vitest';
import { ToolCall } from '@rlm/shared';
import { InvalidOptionError } from '../errors.js';
import { ToolDispatcher, toolDefinitions, type SandboxTools } from './tools.js';

const never = new AbortController().signal;

describe('toolDefinitions', () => {
  it('turns a tool set into the definitions the sandbox binds', () => {
    expect(toolDefinitions({ lookup_customer: { description: 'Finds a customer by id.', handler: () => null }, plain: { handler: () => 1 } })).toEqual([
      { name: 'lookup_customer', description: 'Finds a customer by id.' },
      { name: 'plain' },
    ]);
  });

  it.each([
    ['llm_query', /^tools\.llm_query: the name is a reserved name of the REPL/],
    ['require', /^tools\.require: the name is a built-in global/],
    ['history_0', /^tools\.history_0: the name is a name the REPL keeps for contexts/],
    ['3d', /^tools\.3d: the name is not an identifier/],
  ])('refuses the name %s with an InvalidOptionError naming the tool', (name, message) => {
    const refuse = () => toolDefinitions({ [name]: { handler: () => null } });
    expect(refuse).toThrow(InvalidOptionError);
    expect(refuse).toThrow(message);
  });

  it('refuses a tool without a handler, or with a description that is not a short string', () => {
    expect(() => toolDefinitions({ broken: {} } as unknown as SandboxTools)).toThrow(/^tools\.broken: must be \{ description\?: string, handler/);
    expect(() => toolDefinitions({ t: { description: 5, handler: () => 1 } } as unknown as SandboxTools)).toThrow(/^tools\.t\.description: must be a string/);
    expect(() => toolDefinitions({ t: { description: 'x'.repeat(9000), handler: () => 1 } })).toThrow(/more than the 8192 allowed/);
    expect(() => toolDefinitions([] as unknown as SandboxTools)).toThrow(/^tools: must be an object/);
  });
});

describe('ToolDispatcher', () => {
  it('answers with the handler JSON value, passing the arguments', async () => {
    const dispatcher = new ToolDispatcher({ add: { handler: ([a, b]) => Number(a) + Number(b) } });
    expect(await dispatcher.call({ name: 'add', args: [2, 3] }, never)).toEqual({ ok: true, value: 5 });
  });

  it('turns a throw or a rejection into an error result carrying the message', async () => {
    const dispatcher = new ToolDispatcher({
      sync: {
        handler: () => {
          throw new Error('no such customer');
        },
      },
      async: { handler: () => Promise.reject(new TypeError('backend down')) },
      odd: {
        handler: () => {
          throw 'a string';
        },
      },
    });
    expect(await dispatcher.call({ name: 'sync', args: [] }, never)).toEqual({ ok: false, error: 'no such customer' });
    expect(await dispatcher.call({ name: 'async', args: [] }, never)).toEqual({ ok: false, error: 'backend down' });
    expect(await dispatcher.call({ name: 'odd', args: [] }, never)).toEqual({ ok: false, error: 'a string' });
  });

  it.each([
    ['undefined', () => undefined, /not JSON: the value is undefined/],
    ['a function', () => () => 1, /not JSON: the value is a function/],
    ['a nested Map', () => ({ rows: [new Map()] }), /not JSON: the value at \.rows\[0\] is a Map/],
    [
      'a cycle',
      () => {
        const loop: Record<string, unknown> = {};
        loop.self = loop;
        return loop;
      },
      /not JSON: the value at \.self refers back to the value itself/,
    ],
  ])('answers a handler that returns %s with an error result, not a crash', async (_, handler, message) => {
    const dispatcher = new ToolDispatcher({ bad: { handler: handler as never } });
    const result = await dispatcher.call({ name: 'bad', args: [] }, never);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toMatch(message);
  });

  it('answers a result over the control channel limit with an error result that says so', async () => {
    const dispatcher = new ToolDispatcher({ huge: { handler: () => 'x'.repeat(ToolCall.maxResultBytes) } });
    const result = await dispatcher.call({ name: 'huge', args: [] }, never);
    expect(!result.ok && result.error).toMatch(/^the result of huge is 8\.0 MiB of JSON, over the control channel's limit of 8\.0 MiB for a tool's answer/);
  });

  it('answers a name it does not know with an error result', async () => {
    expect(await new ToolDispatcher().call({ name: 'missing', args: [] }, never)).toEqual({ ok: false, error: 'no tool named missing is defined on the host' });
  });

  it("fires the handler's signal when the channel closes or the cell ends", async () => {
    const seen: AbortSignal[] = [];
    const dispatcher = new ToolDispatcher({
      wait: {
        handler: (_, { signal }) => {
          seen.push(signal);
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true }));
        },
      },
    });
    const channel = new AbortController();
    const first = dispatcher.call({ name: 'wait', args: [] }, channel.signal);
    channel.abort();
    expect(await first).toEqual({ ok: false, error: 'stopped' });
    const second = dispatcher.call({ name: 'wait', args: [] }, never);
    dispatcher.abortRunning();
    expect(await second).toEqual({ ok: false, error: 'stopped' });
    expect(seen.map((signal) => signal.aborted)).toEqual([true, true]);
  });
});
