/**
 * A new user's first mistakes, through the `rlm` command: a wrong key, a model the server does not
 * know, a base URL where nothing listens, a budget for an unpriced model. Each ends the run at once
 * — one request at most, no turns burnt — with one line saying what to fix and its own exit code.
 * (`pnpm bench:fail-fast` prints how long each takes.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closedLoopbackPort, startFakeOpenAIServer, type FakeOpenAIServer, type ScriptedReply } from '../orchestrator/src/testing/fake-openai-server.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function serverAnswering(reply: ScriptedReply): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(() => reply);
  servers.push(server);
  return server;
}

const rlm = (args: string[]) =>
  runRlm(['What is it?', '--context', 'some text', '--backend', 'openai', ...args], { env: cleanEnv({ OPENAI_API_KEY: 'sk-test-wrong' }) });

describe('rlm fails fast on what no retry can fix', () => {
  it('a refused key: exit 3 after one request, naming the variable the key came from', async () => {
    const server = await serverAnswering({
      status: 401,
      body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } },
    });
    const result = await rlm(['--base-url', server.baseURL]);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/refused the API key: check OPENAI_API_KEY/);
    expect(result.stderr).not.toMatch(/turns in a row/);
    expect(server.requests).toHaveLength(1);
  });

  it('an unknown model: exit 3 after one request, saying to check the model name', async () => {
    const server = await serverAnswering({
      status: 404,
      body: { error: { message: 'The model `gpt-9` does not exist', type: 'invalid_request_error', code: 'model_not_found' } },
    });
    const result = await rlm(['--base-url', server.baseURL, '--model', 'gpt-9']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/does not know the model "gpt-9": check the model name \(--model/);
    expect(server.requests).toHaveLength(1);
  });

  it('a base URL where nothing listens, under --timeout: exit 3 saying the connection was refused, not that the run ran out of time', async () => {
    const port = await closedLoopbackPort();
    const result = await rlm(['--base-url', `http://127.0.0.1:${port}/v1`, '--timeout', '600']);
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(
      /cannot connect to http:\/\/127\.0\.0\.1:\d+\/v1 \(connection refused\) after 3 attempts: is the server running\? check --base-url/,
    );
    expect(result.stderr).not.toMatch(/wall-clock/);
  });

  it('a budget in dollars for a model without a price: exit 2 before any request, naming the prices setting', async () => {
    const server = await serverAnswering('FINAL(never asked)');
    const result = await rlm(['--base-url', server.baseURL, '--model', 'my-local-model', '--budget', '0.5']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/"my-local-model" has no known price; give its price with the prices option/);
    expect(server.requests).toHaveLength(0);
  });
});

describe('rlm says when a limit shaped the outcome', () => {
  it('an answer forced by --max-iterations: exit 0, but marked and explained', async () => {
    const server = await startFakeOpenAIServer((_body, index) =>
      index === 0 ? 'Looking.\n```repl\nprint(context.length)\n```' : 'It is nine characters long.',
    );
    servers.push(server);
    const result = await rlm(['--base-url', server.baseURL, '--max-iterations', '1']);
    expect(result.stderr).not.toMatch(/the run failed/);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('It is nine characters long.\n');
    expect(result.stderr).toMatch(/^! /m);
    expect(result.stderr).toMatch(/the run used all its iterations \(--max-iterations\); the answer was asked for in one last call/);
  });

  it('a run a limit stopped before it answered: exit 5, with the partial answer as prose, not code', async () => {
    const server = await startFakeOpenAIServer(() => ({ text: 'Still reading.\n```repl\nprint(context.length)\n```', completionTokens: 5_000 }));
    servers.push(server);
    const result = await rlm(['--base-url', server.baseURL, '--max-tokens', '1000']);
    expect(result.code).toBe(5);
    expect(result.stderr).toMatch(/the run failed: the run used [\d,]+ tokens, over its budget of 1,000/);
    expect(result.stdout).toBe('Still reading.\n');
  });
});
