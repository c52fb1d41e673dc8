/**
 * Cancellation end to end, in real sandboxes, with the real `openai` SDK against local servers
 * that hold sub-model requests open: when a cell times out, the run is cancelled, a budget is hit
 * mid-batch or a child RLM's call is cancelled, every provider request the cell started is closed
 * on the host before the run goes on, no further one is sent, and each is recorded once, as
 * cancelled, in the cell that made it.
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import { AbortedError, RLM, createDockerClient, createOpenAICompatibleBackend, type RlmOptions, type RlmResult, type RunEvent } from 'rlm';
import { startFakeOpenAIServer, type FakeOpenAIServer } from './support/fake-openai-server.js';
import { TEST_START_TIMEOUT_MS } from './support/docker.js';

const docker = createDockerClient();
const sandbox = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS };
const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

const fence = (code: string) => `\`\`\`repl\n${code}\n\`\`\``;
const SLOW_CALLS = 10;
const batchOfSlowCalls = `const answers = llm_query_batched(Array.from({ length: ${SLOW_CALLS} }, (_, i) => "slow question " + i));\nprint(answers.length);`;

/** A promise that never settles: the fake holds such a request open until the client goes away. */
const never = () => new Promise<never>(() => {});

/** The sub-model's server: holds every request open; `log` gets `abandoned N` when the client closes request N. */
async function holdingSubServer(log: string[]): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer((_body, index) => {
    void server.whenAbandoned(index).then(() => log.push(`abandoned ${index}`));
    return never();
  });
  servers.push(server);
  return server;
}

/** The containers this test process started that still exist. */
async function ourContainers(): Promise<number> {
  const listed = await docker.listContainers({ all: true, filters: { label: [`rlm.owner.pid=${process.pid}`] } });
  return listed.length;
}

function rlmOver(root: FakeOpenAIServer, sub: FakeOpenAIServer, options: Partial<RlmOptions> = {}): RLM {
  return new RLM({
    root: { backend: createOpenAICompatibleBackend({ baseURL: root.baseURL, apiKey: 'sk-test-root' }), model: 'gpt-5-mini' },
    sub: { backend: createOpenAICompatibleBackend({ name: 'slow', baseURL: sub.baseURL, requiresApiKey: false, maxRetries: 0 }), model: 'slow-model' },
    sandbox,
    ...options,
    limits: { subcallConcurrency: SLOW_CALLS, ...options.limits },
  });
}

describe('cancellation reaches every sub-call', () => {
  it('closes all 10 slow requests of a timed-out cell before the next turn, sends none after, and keeps the next cell clean', async () => {
    const log: string[] = [];
    const sub = await holdingSubServer(log);
    const root = await startFakeOpenAIServer((_body, index) => {
      log.push(`root ${index}`);
      if (index === 0) return fence(batchOfSlowCalls);
      return fence('print("second cell");\nFINAL("done")');
    });
    servers.push(root);

    const result = await rlmOver(root, sub, { limits: { cellTimeoutMs: 3_000 } }).completion({ context: 'x', query: 'q' });

    expect(result.answer).toBe('done');
    expect(sub.requests).toHaveLength(SLOW_CALLS);
    for (let index = 0; index < SLOW_CALLS; index++) await sub.whenAbandoned(index);
    // Every request was closed before the root model was asked for its second turn.
    const secondTurn = log.indexOf('root 1');
    expect(log.slice(0, secondTurn).filter((entry) => entry.startsWith('abandoned'))).toHaveLength(SLOW_CALLS);
    expect(sub.requests).toHaveLength(SLOW_CALLS);

    const [first, second] = result.trajectory;
    const timedOut = first?.blocks[0];
    expect(timedOut?.result.status).toBe('timeout');
    expect(timedOut?.subcalls).toHaveLength(SLOW_CALLS);
    for (const call of timedOut?.subcalls ?? []) {
      expect(call.cancelled).toBe(true);
      expect(call.error).toMatch(/^cancelled: /);
    }
    expect(second?.blocks[0]?.subcalls).toEqual([]);
    expect(second?.blocks[0]?.result.stdout.text).toBe('second cell\n');
    expect(result.usage['slow-model']).toMatchObject({ calls: 0, cancelledCalls: SLOW_CALLS });
  });

  it('closes every request of the running cell when the run is cancelled, and removes its sandbox', async () => {
    const log: string[] = [];
    const sub = await holdingSubServer(log);
    const root = await startFakeOpenAIServer(() => fence(batchOfSlowCalls));
    servers.push(root);
    const controller = new AbortController();
    const cancelledCalls: RunEvent[] = [];
    const rlm = rlmOver(root, sub, {
      limits: { cellTimeoutMs: 600_000 },
      onEvent: (event) => {
        if (event.type === 'subcall_end' && event.cancelled) cancelledCalls.push(event);
      },
    });

    const run = rlm.completion({ context: 'x', query: 'q', signal: controller.signal });
    await sub.whenReceived(SLOW_CALLS - 1);
    controller.abort();

    await expect(run).rejects.toSatisfy((error) => AbortedError.isInstance(error));
    for (let index = 0; index < SLOW_CALLS; index++) await sub.whenAbandoned(index);
    expect(sub.requests).toHaveLength(SLOW_CALLS);
    expect(root.requests).toHaveLength(1);
    expect(cancelledCalls).toHaveLength(SLOW_CALLS);
    expect(await ourContainers()).toBe(0);
  });

  it("closes every request of a session's running completion when the session is closed, and removes its sandbox", async () => {
    const log: string[] = [];
    const sub = await holdingSubServer(log);
    const root = await startFakeOpenAIServer(() => fence(batchOfSlowCalls));
    servers.push(root);
    const session = rlmOver(root, sub, { limits: { cellTimeoutMs: 600_000 } }).session();

    const run = session.completion({ context: 'x', query: 'q' });
    await sub.whenReceived(SLOW_CALLS - 1);
    await session.close();

    await expect(run).rejects.toSatisfy((error) => AbortedError.isInstance(error));
    for (let index = 0; index < SLOW_CALLS; index++) await sub.whenAbandoned(index);
    expect(sub.requests).toHaveLength(SLOW_CALLS);
    expect(await ourContainers()).toBe(0);
  });

  it('stops a batch when the token budget is hit mid-batch: the running call is closed and the rest are never sent', async () => {
    const log: string[] = [];
    const sub = await startFakeOpenAIServer(async (_body, index) => {
      if (index === 0) {
        // Answers once the second call is in flight too, with more tokens than the budget allows.
        await sub.whenReceived(1);
        return { text: 'expensive', promptTokens: 10, completionTokens: 50_000 };
      }
      void sub.whenAbandoned(index).then(() => log.push(`abandoned ${index}`));
      return never();
    });
    servers.push(sub);
    const root = await startFakeOpenAIServer(() => fence(batchOfSlowCalls));
    servers.push(root);

    const result: RlmResult = await rlmOver(root, sub, { limits: { subcallConcurrency: 2, maxTokens: 10_000 } }).completion({ context: 'x', query: 'q' });

    expect(result.limitReached).toBe('tokens');
    await sub.whenAbandoned(1);
    expect(sub.requests).toHaveLength(2);
    const block = result.trajectory[0]?.blocks[0];
    expect(block?.subcalls.map((call) => (call.cancelled ? 'cancelled' : call.error === null ? 'ok' : 'failed'))).toEqual(['ok', 'cancelled']);
    expect(block?.subcallsNotStarted).toBe(SLOW_CALLS - 2);
    expect(block?.subcalls[1]?.error).toMatch(/^cancelled: the run stopped: the run used .* tokens/);
    expect(await ourContainers()).toBe(0);
  });

  it("cancels a child RLM with its parent's call: its model request is closed and its sandbox removed before the parent goes on", async () => {
    const log: string[] = [];
    let containersAtSecondTurn = -1;
    const root = await startFakeOpenAIServer(async (_body, index) => {
      log.push(`root ${index}`);
      if (index === 0) return fence('const answer = rlm_query("a task for a child");\nprint(answer);');
      if (index === 1) {
        // The child's first turn (the parent's cell waits on it): held until the parent's cell times out.
        void root.whenAbandoned(index).then(() => log.push(`abandoned ${index}`));
        return never();
      }
      containersAtSecondTurn = await ourContainers();
      return fence('FINAL("parent done")');
    });
    servers.push(root);
    const sub = await holdingSubServer(log);

    const result = await rlmOver(root, sub, { limits: { cellTimeoutMs: 4_000, maxDepth: 1 } }).completion({ context: 'x', query: 'q' });

    expect(result.answer).toBe('parent done');
    expect(log.indexOf('abandoned 1')).toBeGreaterThan(-1);
    expect(log.indexOf('abandoned 1')).toBeLessThan(log.indexOf('root 2'));
    // Only the parent's own sandbox was left when the parent's second turn began.
    expect(containersAtSecondTurn).toBe(1);
    const call = result.trajectory[0]?.blocks[0]?.subcalls[0];
    expect(call).toMatchObject({ kind: 'rlm_query', cancelled: true });
    expect(await ourContainers()).toBe(0);
  });
});
