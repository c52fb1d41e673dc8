/**
 * `pnpm bench:backends`: prints median and p95 of how soon a model call gives up — after the
 * caller's abort, after an attempt's `timeoutMs`, and (claude-cli) until the killed CLI's whole
 * process group is gone (the time guarantees the backend tests leave out: they prove that a call
 * settles, not when). Each backend runs its real SDK or CLI protocol against the local fakes the
 * unit tests use; nothing leaves 127.0.0.1.
 *
 * The backends come from the built library (`rlm`); the fakes are TypeScript sources under
 * `orchestrator/src/testing/`, loaded with Node's type stripping through a resolve hook (below).
 */
import { rmSync } from 'node:fs';
import {
  AbortedError,
  createAnthropicBackend,
  createClaudeCliBackend,
  createOpenAICompatibleBackend,
  ModelCallError,
  type CompletionRequest,
  type ModelBackend,
} from 'rlm';
import { registerSourceHooks } from './source-hooks.ts';
import { formatRow, summarize } from './stats.ts';

registerSourceHooks();
const { startFakeAnthropicServer } = await import('../../orchestrator/src/testing/fake-anthropic-server.ts');
const { startFakeOpenAIServer } = await import('../../orchestrator/src/testing/fake-openai-server.ts');
const { createFakeClaude } = await import('../../orchestrator/src/testing/fake-claude-cli/index.ts');
const { isAlive } = await import('../../orchestrator/src/testing/process-liveness.ts');

/** The attempt timeout of the timeout rows: short, since what they measure is the time past it. */
const TIMEOUT_MS = 200;
/** The claude-cli backend's SIGTERM → SIGKILL grace in the kill row. */
const KILL_GRACE_MS = 200;
/** Longer than the whole benchmark: only an abort or a timeout ends a call. */
const NEVER_MS = 600_000;

const request: CompletionRequest = { model: 'bench-model', messages: [{ role: 'user', content: 'hello' }] };

/** Settles with what the call threw; a call that answers is a broken benchmark. */
async function failureOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => {
      throw new Error('benchmark call answered instead of giving up');
    },
    (error: unknown) => error,
  );
}

/**
 * `n` samples (after `warmup` unrecorded ones) of the time from the caller's abort to `complete`
 * settling. `arrived(i)` resolves once the fake holds call `i` (0-based, warm-ups included).
 */
async function abortToSettled(backend: ModelBackend, arrived: (i: number) => Promise<unknown>, n: number, warmup = 3): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const controller = new AbortController();
    const call = failureOf(backend.complete(request, { signal: controller.signal }));
    await arrived(i);
    const start = performance.now();
    controller.abort();
    const error = await call;
    const ms = performance.now() - start;
    if (!(error instanceof AbortedError)) throw new Error(`aborted call failed with ${String(error)}, not AbortedError`);
    if (i >= warmup) samples.push(ms);
  }
  return samples;
}

/** `n` samples (after `warmup`) of how long past `timeoutMs` a call to a fake that never answers settles. */
async function timeoutOvershoots(backend: ModelBackend, n: number, warmup = 2): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    const start = performance.now();
    const error = await failureOf(backend.complete(request, {}));
    const ms = performance.now() - start;
    if (!(error instanceof ModelCallError && /no answer within timeoutMs/.test(error.message))) {
      throw new Error(`timed-out call failed with ${String(error)}, not the timeoutMs error`);
    }
    if (i >= warmup) samples.push(ms - TIMEOUT_MS);
  }
  return samples;
}

/** Whether process group `pgid` still has a live member among `members` (or any member, where /proc cannot tell). */
function groupAlive(pgid: number, members: readonly number[]): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false; // ESRCH: no process left in the group, zombies included
  }
  return members.some(isAlive);
}

/** Resolves once `condition` holds, checking every millisecond; fails after `deadlineMs`. */
async function until(condition: () => boolean, what: string, deadlineMs = 30_000): Promise<void> {
  const deadline = performance.now() + deadlineMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`benchmark gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

console.log(`rlm backend benchmark — fake providers on 127.0.0.1, node ${process.version}\n`);

// 1. Anthropic (`@anthropic-ai/sdk`): the fake holds each response before its headers.
{
  await using server = await startFakeAnthropicServer();
  server.defaultReply = { text: 'too late', delayMs: NEVER_MS };
  const backend = createAnthropicBackend({ apiKey: 'sk-bench', baseURL: server.url, env: {}, maxRetries: 0 });
  console.log(formatRow('anthropic: abort → call settled', summarize(await abortToSettled(backend, (i) => server.whenReceived(i), 30)), 100));
  const timed = createAnthropicBackend({ apiKey: 'sk-bench', baseURL: server.url, env: {}, timeoutMs: TIMEOUT_MS, maxRetries: 0 });
  console.log(formatRow(`anthropic: past timeoutMs (${TIMEOUT_MS} ms)`, summarize(await timeoutOvershoots(timed, 15)), 100));
}

// 2. OpenAI-compatible (`openai` SDK): the same.
{
  const server = await startFakeOpenAIServer(() => ({ text: 'too late', delayMs: NEVER_MS }));
  try {
    const backend = createOpenAICompatibleBackend({ baseURL: server.baseURL, apiKey: 'sk-bench', maxRetries: 0 });
    console.log(formatRow('openai-compatible: abort → call settled', summarize(await abortToSettled(backend, (i) => server.whenReceived(i), 30)), 100));
    const timed = createOpenAICompatibleBackend({ baseURL: server.baseURL, apiKey: 'sk-bench', timeoutMs: TIMEOUT_MS, maxRetries: 0 });
    console.log(formatRow(`openai-compatible: past timeoutMs (${TIMEOUT_MS} ms)`, summarize(await timeoutOvershoots(timed, 15)), 100));
  } finally {
    await server.close();
  }
}

// 3. claude-cli: a CLI that ignores SIGTERM and has a child of its own; the abort's SIGTERM does
// nothing, so the group goes at the SIGKILL `killGraceMs` later. Each sample is the time past it.
{
  const fake = createFakeClaude();
  try {
    fake.script({ delayMs: NEVER_MS, ignoreSigterm: true, spawnGrandchild: true, text: 'never' });
    const backend = createClaudeCliBackend({ env: fake.env(), passEnv: ['FAKE_CLAUDE_DIR'], killGraceMs: KILL_GRACE_MS, maxRetries: 0 });
    const samples: number[] = [];
    for (let i = 0; i < 2 + 10; i++) {
      const controller = new AbortController();
      const call = failureOf(backend.complete(request, { signal: controller.signal }));
      // Once it has recorded the call, the fake ignores SIGTERM (see fake-claude-cli/claude).
      await until(() => fake.invocations().length > i, 'the fake claude to start');
      const invocation = fake.invocations()[i];
      if (!invocation?.grandchildPid) throw new Error('the fake claude recorded no grandchild');
      const members = [invocation.pid, invocation.grandchildPid];
      const start = performance.now();
      controller.abort();
      await until(() => !groupAlive(invocation.pid, members), 'the CLI process group to go');
      const ms = performance.now() - start;
      const error = await call;
      if (!(error instanceof AbortedError)) throw new Error(`aborted call failed with ${String(error)}, not AbortedError`);
      if (i >= 2) samples.push(ms - KILL_GRACE_MS);
    }
    console.log(formatRow('claude-cli: abort → group gone (past grace)', summarize(samples), 500));
  } finally {
    rmSync(fake.dir, { recursive: true, force: true });
  }
}
