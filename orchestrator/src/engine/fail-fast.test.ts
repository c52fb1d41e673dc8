/**
 * Failures no retry can fix end the run at once: the real `openai` SDK against a local fake
 * answering 401, 403 or 404, or a port where nothing listens, with the engine's cells in
 * in-process REPLs. And a budget in dollars that cannot be kept is refused before any call.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { ModelCallError } from '../models/model-backend.js';
import { createOpenAICompatibleBackend } from '../models/openai-compatible-backend.js';
import { ScriptedBackend } from '../models/scripted-backend.js';
import { closedLoopbackPort, startFakeOpenAIServer, type FakeOpenAIServer, type ScriptedReply } from '../testing/fake-openai-server.js';
import { inProcessRepls } from '../testing/in-process-repl.js';
import { replResponse as repl } from '../testing/scripted-models.js';
import { RLM, useReplFactory } from './rlm.js';
import type { RlmOptions } from './rlm-options.js';

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function server(reply: ScriptedReply): Promise<FakeOpenAIServer> {
  const started = await startFakeOpenAIServer(() => reply);
  servers.push(started);
  return started;
}

const rlmOf = (options: RlmOptions) => useReplFactory(new RLM(options), inProcessRepls());

const refusals: Array<{ name: string; reply: ScriptedReply; kind: string; fix: RegExp }> = [
  {
    name: 'a refused key (401)',
    reply: { status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } },
    kind: 'auth',
    fix: /check the apiKey option/,
  },
  {
    name: 'a forbidden model (403)',
    reply: { status: 403, body: { error: { message: 'You are not allowed to sample from this model', type: 'invalid_request_error' } } },
    kind: 'permission',
    fix: /may not use the model "gpt-5-mini"/,
  },
  {
    name: 'an unknown model (404)',
    reply: { status: 404, body: { error: { message: 'The model `gpt-5-mini` does not exist', type: 'invalid_request_error', code: 'model_not_found' } } },
    kind: 'model_not_found',
    fix: /check the model name/,
  },
];

describe('fatal provider failures end the run at once', () => {
  for (const { name, reply, kind, fix } of refusals) {
    it(`ends the run after one request on ${name} of the root model, with a ModelCallError saying what to fix`, async () => {
      const fake = await server(reply);
      const rlm = rlmOf({ root: { backend: createOpenAICompatibleBackend({ baseURL: fake.baseURL, apiKey: 'sk-test' }), model: 'gpt-5-mini' } });
      const result = await rlm.completion({ context: 'x', query: 'q' });
      expect(result.success).toBe(false);
      expect(result.limitReached).toBeNull();
      expect(fake.requests).toHaveLength(1);
      expect(ModelCallError.isInstance(result.error)).toBe(true);
      expect(result.error).toMatchObject({ kind, fatal: true });
      expect(result.error?.message).toMatch(fix);
    });
  }

  it('ends the run when the root model is unreachable (connection refused), after the backend retries only', async () => {
    const port = await closedLoopbackPort();
    const rlm = rlmOf({ root: { backend: createOpenAICompatibleBackend({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-test' }), model: 'gpt-5-mini' } });
    const result = await rlm.completion({ context: 'x', query: 'q' });
    expect(result.error).toMatchObject({ kind: 'unreachable', fatal: true, details: { attempts: 3 } });
    expect(result.error?.message).toMatch(/connection refused.*is the server running\?.*--base-url/);
    expect(result.iterations).toBe(0);
  });

  it('stops the whole run when a sub-call meets a refused key, rather than answering the cell and going on', async () => {
    const fake = await server({ status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } } });
    const root = new ScriptedBackend(() => repl('print(llm_query_batched(["a", "b", "c"]))'), { name: 'scripted-root' });
    const rlm = rlmOf({
      root: { backend: root, model: 'claude-sonnet-4-5' },
      sub: { backend: createOpenAICompatibleBackend({ baseURL: fake.baseURL, apiKey: 'sk-test' }), model: 'gpt-5-mini' },
      limits: { subcallConcurrency: 1 },
    });
    const result = await rlm.completion({ context: 'x', query: 'q' });
    expect(result.error).toMatchObject({ kind: 'auth' });
    expect(result.iterations).toBe(1);
    // The first prompt met the 401; the other two were never sent.
    expect(fake.requests).toHaveLength(1);
    expect(result.trajectory[0]?.blocks[0]?.subcallsNotStarted).toBe(2);
  });
});

describe('a budget in dollars', () => {
  it('is refused before any call when a model the run may call has no known price, naming the model and the prices option', () => {
    const backend = new ScriptedBackend(() => 'FINAL(1)', { name: 'scripted' });
    const build = () => new RLM({ root: { backend, model: 'my-local-model' }, limits: { maxCostUsd: 1 } });
    expect(build).toThrow(InvalidOptionError);
    expect(build).toThrow(/limits\.maxCostUsd: the \$1 budget cannot be enforced: "my-local-model" has no known price; give its price with the prices option/);
    expect(backend.requests).toHaveLength(0);
    expect(
      () => new RLM({ root: { backend, model: 'my-local-model' }, limits: { maxCostUsd: 1 }, prices: { 'my-local-model': { input: 1, output: 2 } } }),
    ).not.toThrow();
  });

  it('is accepted for a backend that reports each call its cost, without a price table entry', () => {
    const backend = createOpenAICompatibleBackend({ baseURL: 'http://127.0.0.1:9/v1', apiKey: 'sk-test', reportsCost: true });
    expect(() => new RLM({ root: { backend, model: 'some/unlisted-model' }, limits: { maxCostUsd: 1 } })).not.toThrow();
  });
});
