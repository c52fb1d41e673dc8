/**
 * The evaluation runner with scripted models at the backend seam and in-process REPLs (no Docker):
 * what it runs, what it records, resuming, retries, the budget and interruption.
 * test/eval-runner.test.ts runs it on real sandboxes.
 */
import { access, mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerUnavailableError, InvalidOptionError, RlmError, SandboxError, SandboxImageError, SandboxPoolExhaustedError } from '../../errors.js';
import { RunLimitError } from '../../engine/run-budget.js';
import { type CompletionRequest, type CompletionResponse, type ModelBackend, ModelCallError, type ModelCallErrorKind } from '../../models/model-backend.js';
import { ScriptedBackend } from '../../models/scripted-backend.js';
import { estimateTokens } from '../../models/model-table.js';
import { type InProcessReplFactory, inProcessRepls } from '../../testing/in-process-repl.js';
import { lastUserMessage, replResponse } from '../../testing/scripted-models.js';
import type { EvalTask, Scorer } from '../eval-types.js';
import { RESULTS_FILE, readResults } from './results-file.js';
import {
  DIRECT_TRUNCATION_MARKER,
  classify,
  type EvaluationOptions,
  type EvaluationProgress,
  type EvaluationRlmOptions,
  directPrompt,
  runEvaluation,
  useEvaluationReplFactory,
} from './run-evaluation.js';

let dir: string;
let repls: InProcessReplFactory;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-eval-run-'));
  repls = inProcessRepls();
});
afterEach(async () => {
  // Every REPL a run made is closed by the time the evaluation resolves.
  const open = repls.made.filter((repl) => !repl.isClosed);
  await Promise.all(open.map((repl) => repl.close()));
  expect(open.map((repl) => repl.id)).toEqual([]);
  await rm(dir, { recursive: true, force: true });
});

const MODEL = 'claude-sonnet-4-5';

/** Task `id` whose context is `word other words` and whose answer is `word`. */
function task(id: string, word = `w${id}`): EvalTask {
  return {
    id,
    query: `What is the first word? (${id})`,
    context: { kind: 'inline', value: `${word} and then more words` },
    expected: [word],
    metadata: {},
    row: Number(id) || 1,
  };
}

/** Exact match, counting its calls. */
function exactScorer(): Scorer & { calls: number } {
  const scorer = {
    name: 'exact',
    calls: 0,
    score({ answer, expected }: { answer: string | null; expected: readonly string[] }) {
      scorer.calls += 1;
      return { score: answer !== null && expected.includes(answer) ? 1 : 0 };
    },
  };
  return scorer;
}

/** An RLM root that answers with the context's first word from a cell (and a direct call with the word after `<context>`). */
function firstWordModel(): ScriptedBackend {
  return new ScriptedBackend((request) => {
    const prompt = lastUserMessage(request);
    if (prompt.includes('<context>')) return /<context>\n(\S+)/.exec(prompt)?.[1] ?? '';
    return replResponse('FINAL(context.split(" ")[0])');
  });
}

function evaluation(options: Partial<EvaluationOptions> & Pick<EvaluationOptions, 'rlm'>): EvaluationOptions {
  return useEvaluationReplFactory(
    { tasks: [task('1'), task('2')], methods: ['rlm'], scorer: () => exactScorer(), outDir: dir, retryDelayMs: 0, ...options },
    repls,
  );
}

/** A backend that answers `answer` — after failing with `failures` in order — and records how many calls it got. */
function flakyBackend(failures: Error[], answer = 'w1'): ModelBackend & { calls: number } {
  const backend = {
    name: 'flaky',
    calls: 0,
    async complete(request: CompletionRequest): Promise<CompletionResponse> {
      const failure = failures[backend.calls];
      backend.calls += 1;
      if (failure) throw failure;
      return { text: answer, model: request.model, usage: { inputTokens: 10, outputTokens: 1 } };
    },
  };
  return backend;
}

const overloaded = () => new ModelCallError('flaky: 503 overloaded', 'flaky', MODEL, { statusCode: 503, isRetryable: true }, { kind: 'provider_error' });

/**
 * A backend for `direct` whose calls for a query containing `hang` wait until cancelled; the others
 * answer `w<id>` at once with `inputTokens` of usage.
 */
function gatedBackend(inputTokens = 10): ModelBackend & { requests: CompletionRequest[] } {
  const requests: CompletionRequest[] = [];
  return {
    name: 'gated',
    requests,
    complete(request, { signal }) {
      requests.push(request);
      const prompt = lastUserMessage(request);
      if (prompt.includes('hang')) {
        return new Promise((_, reject) => {
          const cancel = () => reject(new ModelCallError('gated: cancelled', 'gated', request.model, {}, { cause: signal?.reason }));
          if (signal?.aborted) cancel();
          signal?.addEventListener('abort', cancel, { once: true });
        });
      }
      const word = /<context>\n(\S+)/.exec(prompt)?.[1] ?? '';
      return Promise.resolve({ text: word, model: request.model, usage: { inputTokens, outputTokens: 0 } });
    },
  };
}

describe('runEvaluation', () => {
  it('runs every (task, method, epoch), scores it and appends its line with cost, tokens and trajectory', async () => {
    const model = firstWordModel();
    const events: EvaluationProgress[] = [];
    const outcome = await runEvaluation(
      evaluation({ rlm: { root: { backend: model, model: MODEL } }, methods: ['rlm', 'direct'], epochs: 2, onProgress: (event) => events.push(event) }),
    );

    expect(outcome).toMatchObject({ planned: 8, alreadyDone: 0, written: 8, missing: 0, missingReasons: [], budgetExhausted: false, interrupted: false });
    expect(outcome.spentUsd).toBeGreaterThan(0);
    const { lines } = await readResults(dir);
    expect(lines).toHaveLength(8);
    expect(lines.every((line) => line.score === 1 && line.error === null && line.attempts === 1)).toBe(true);
    const rlmLine = lines.find((line) => line.method === 'rlm' && line.task_id === '2' && line.epoch === 2);
    expect(rlmLine).toMatchObject({ answer: 'w2', expected: ['w2'], scorer: 'exact', iterations: 1, context_chars: 'w2 and then more words'.length });
    expect(rlmLine?.cost_usd).toBeGreaterThan(0);
    expect(rlmLine?.input_tokens).toBeGreaterThan(0);
    expect(rlmLine?.trajectory_file).toMatch(/^trajectories\/.+\.jsonl$/);
    await access(path.join(dir, rlmLine?.trajectory_file ?? 'none'));
    const directLine = lines.find((line) => line.method === 'direct');
    expect(directLine).toMatchObject({ iterations: 1, trajectory_file: null, truncated: false });
    expect(events.filter((event) => event.type === 'started')).toHaveLength(8);
    expect(events.filter((event) => event.type === 'finished')).toHaveLength(8);
  });

  it('runs only what is missing when resumed, and again a line half-written by a kill', async () => {
    const tasks = [task('1'), task('2'), task('3')];
    const first = gatedBackend();
    await runEvaluation(evaluation({ tasks, methods: ['direct'], rlm: { root: { backend: first, model: MODEL } }, concurrency: 1 }));
    expect(first.requests).toHaveLength(3);

    const again = gatedBackend();
    expect(await runEvaluation(evaluation({ tasks, methods: ['direct'], rlm: { root: { backend: again, model: MODEL } } }))).toMatchObject({
      alreadyDone: 3,
      written: 0,
      missing: 0,
    });
    expect(again.requests).toHaveLength(0);

    // A kill -9 while the last line was written.
    const file = path.join(dir, RESULTS_FILE);
    await truncate(file, Buffer.byteLength(await readFile(file, 'utf8')) - 25);
    const resumed = gatedBackend();
    const outcome = await runEvaluation(evaluation({ tasks, methods: ['direct'], rlm: { root: { backend: resumed, model: MODEL } } }));
    expect(outcome).toMatchObject({ alreadyDone: 2, written: 1, missing: 0, ignoredLines: 1 });
    expect(resumed.requests.map((request) => lastUserMessage(request).match(/\((\d)\)/)?.[1])).toEqual(['3']);
    expect((await readResults(dir)).lines.map((line) => line.task_id).sort()).toEqual(['1', '2', '3']);
  });

  it('runs rlm-no-subcalls without llm_query in the prompt, and rlm with it', async () => {
    const model = firstWordModel();
    await runEvaluation(
      evaluation({ tasks: [task('1')], methods: ['rlm', 'rlm-no-subcalls'], rlm: { root: { backend: model, model: MODEL } }, concurrency: 1 }),
    );
    const systems = model.requests.map((request) => request.system ?? '');
    expect(systems).toHaveLength(2);
    expect(systems[0]).toContain('llm_query');
    expect(systems[1]).not.toContain('llm_query');
    expect((await readResults(dir)).lines.map((line) => [line.method, line.score])).toEqual([
      ['rlm', 1],
      ['rlm-no-subcalls', 1],
    ]);
  });

  it('retries an infrastructure error: a provider failing with 503 twice, then answering', async () => {
    const backend = flakyBackend([overloaded(), overloaded()]);
    const events: EvaluationProgress[] = [];
    const outcome = await runEvaluation(
      evaluation({ tasks: [task('1')], methods: ['direct'], rlm: { root: { backend, model: MODEL } }, onProgress: (event) => events.push(event) }),
    );
    expect(outcome).toMatchObject({ written: 1, infraErrors: 0, missing: 0 });
    expect(backend.calls).toBe(3);
    expect((await readResults(dir)).lines).toMatchObject([{ score: 1, attempts: 3, error_kind: null, answer: 'w1' }]);
    expect(events.filter((event) => event.type === 'retry').map((event) => event.type === 'retry' && event.attempt)).toEqual([1, 2]);
  });

  it('retries an RLM run whose turns failed because the provider did', async () => {
    let calls = 0;
    const root = new ScriptedBackend(() => (++calls === 1 ? overloaded() : replResponse('FINAL(context.split(" ")[0])')));
    await runEvaluation(evaluation({ tasks: [task('1')], rlm: { root: { backend: root, model: MODEL }, limits: { maxConsecutiveFailures: 1 } } }));
    expect((await readResults(dir)).lines).toMatchObject([{ score: 1, attempts: 2, error_kind: null }]);
  });

  it('records a persistent infrastructure error without a score, and runs it again on resume', async () => {
    const failing = flakyBackend([overloaded(), overloaded()]);
    const outcome = await runEvaluation(evaluation({ tasks: [task('1')], methods: ['direct'], retries: 1, rlm: { root: { backend: failing, model: MODEL } } }));
    expect(outcome).toMatchObject({ written: 1, infraErrors: 1, missing: 1 });
    expect(outcome.missingReasons).toEqual(['1 ended with an infrastructure error after 1 retry (recorded with error_kind "infra")']);
    expect((await readResults(dir)).lines).toMatchObject([{ score: null, error_kind: 'infra', attempts: 2, error: 'flaky: 503 overloaded' }]);

    const healthy = flakyBackend([]);
    expect(await runEvaluation(evaluation({ tasks: [task('1')], methods: ['direct'], rlm: { root: { backend: healthy, model: MODEL } } }))).toMatchObject({
      alreadyDone: 0,
      written: 1,
      missing: 0,
    });
    expect((await readResults(dir)).lines).toMatchObject([{ score: 1, error_kind: null }]);
  });

  it('scores 0 a run that ended without an answer, without calling the scorer', async () => {
    const root = new ScriptedBackend(() => replResponse('throw new Error("no idea")'));
    const scorer = exactScorer();
    await runEvaluation(
      evaluation({ tasks: [task('1')], scorer: () => scorer, rlm: { root: { backend: root, model: MODEL }, limits: { maxConsecutiveFailures: 2 } } }),
    );
    expect((await readResults(dir)).lines).toMatchObject([{ score: 0, error_kind: 'model', attempts: 1, iterations: 2 }]);
    expect((await readResults(dir)).lines[0]?.error).toMatch(/2 turns in a row/);
    expect(scorer.calls).toBe(0);
  });

  it('records a scorer that throws as a scorer error, with the answer kept', async () => {
    const scorer: Scorer = {
      name: 'broken',
      score: () => {
        throw new Error('bad regex');
      },
    };
    await runEvaluation(
      evaluation({ tasks: [task('1')], methods: ['direct'], scorer: () => scorer, rlm: { root: { backend: flakyBackend([]), model: MODEL } } }),
    );
    expect((await readResults(dir)).lines).toMatchObject([{ answer: 'w1', score: null, error_kind: 'scorer', error: 'scorer broken: bad regex' }]);
  });

  it('stops the whole evaluation on a refused key, keeping the results written before', async () => {
    const refused = new ModelCallError('flaky: 401 invalid x-api-key; check ANTHROPIC_API_KEY', 'flaky', MODEL, { statusCode: 401 }, { kind: 'auth' });
    const backend: ModelBackend = {
      name: 'flaky',
      async complete(request) {
        if (lastUserMessage(request).includes('(2)')) throw refused;
        return { text: 'w1', model: request.model, usage: { inputTokens: 1, outputTokens: 1 } };
      },
    };
    await expect(
      runEvaluation(evaluation({ tasks: [task('1'), task('2'), task('3')], methods: ['direct'], concurrency: 1, rlm: { root: { backend, model: MODEL } } })),
    ).rejects.toBe(refused);
    expect((await readResults(dir)).lines.map((line) => line.task_id)).toEqual(['1']);
  });

  it('stops at the budget: nothing new starts, running runs are stopped and get no line', async () => {
    // Task 1 costs $3 (a million input tokens of claude-sonnet-4-5); task 2 runs until stopped.
    const backend = gatedBackend(1_000_000);
    const tasks = [task('1'), { ...task('2'), query: 'hang (2)' }, task('3')];
    const events: EvaluationProgress[] = [];
    const outcome = await runEvaluation(
      evaluation({
        tasks,
        methods: ['direct'],
        concurrency: 2,
        budgetUsd: 1,
        rlm: { root: { backend, model: MODEL } },
        onProgress: (event) => events.push(event),
      }),
    );
    expect(outcome).toMatchObject({ written: 1, missing: 2, budgetExhausted: true, interrupted: false });
    expect(outcome.missingReasons[0]).toMatch(/the budget of \$1 was spent/);
    expect(events).toContainEqual({ type: 'budget', spentUsd: 3, budgetUsd: 1 });
    expect(events).toContainEqual({ type: 'abandoned', taskId: '2', method: 'direct', epoch: 1, reason: 'budget' });
    expect(backend.requests).toHaveLength(2);
    expect((await readResults(dir)).lines.map((line) => line.task_id)).toEqual(['1']);

    // The results already there count: a resume with the same budget starts nothing.
    const resumed = gatedBackend();
    expect(await runEvaluation(evaluation({ tasks, methods: ['direct'], budgetUsd: 1, rlm: { root: { backend: resumed, model: MODEL } } }))).toMatchObject({
      written: 0,
      budgetExhausted: true,
    });
    expect(resumed.requests).toHaveLength(0);
  });

  it('stops a running RLM run whose spending so far reaches the budget', async () => {
    // Every turn costs $3 and never finishes; the budget is $5, so the second turn reaches it.
    const root = new ScriptedBackend((request) => ({
      text: replResponse('print(1)'),
      model: request.model,
      usage: { inputTokens: 1_000_000, outputTokens: 0 },
    }));
    const events: EvaluationProgress[] = [];
    const outcome = await runEvaluation(
      evaluation({ tasks: [task('1')], budgetUsd: 5, rlm: { root: { backend: root, model: MODEL } }, onProgress: (event) => events.push(event) }),
    );
    expect(outcome).toMatchObject({ written: 0, missing: 1, budgetExhausted: true, spentUsd: 6 });
    expect(root.calls).toHaveLength(2);
    expect(events).toContainEqual({ type: 'abandoned', taskId: '1', method: 'rlm', epoch: 1, reason: 'budget' });
  });

  it('refuses a budget it cannot keep, before anything runs', async () => {
    const backend = gatedBackend();
    await expect(runEvaluation(evaluation({ methods: ['direct'], budgetUsd: 1, rlm: { root: { backend, model: 'my-local-model' } } }))).rejects.toThrow(
      InvalidOptionError,
    );
    expect(backend.requests).toHaveLength(0);
  });

  it('keeps the results written when interrupted, and a resume runs the rest', async () => {
    const controller = new AbortController();
    const tasks = [task('1'), { ...task('2'), query: 'hang (2)' }, task('3')];
    const backend = gatedBackend();
    const events: EvaluationProgress[] = [];
    const outcome = await runEvaluation(
      evaluation({
        tasks,
        methods: ['direct'],
        concurrency: 2,
        signal: controller.signal,
        rlm: { root: { backend, model: MODEL } },
        onProgress: (event) => {
          events.push(event);
          if (event.type === 'finished') controller.abort();
        },
      }),
    );
    expect(outcome).toMatchObject({ written: 1, missing: 2, interrupted: true, missingReasons: ['the evaluation was interrupted'] });
    expect(events).toContainEqual({ type: 'abandoned', taskId: '2', method: 'direct', epoch: 1, reason: 'interrupted' });
    expect((await readResults(dir)).lines.map((line) => line.task_id)).toEqual(['1']);

    const resumed = gatedBackend();
    const rest = [task('1'), task('2'), task('3')];
    expect(await runEvaluation(evaluation({ tasks: rest, methods: ['direct'], rlm: { root: { backend: resumed, model: MODEL } } }))).toMatchObject({
      alreadyDone: 1,
      written: 2,
      missing: 0,
    });
    expect(resumed.requests).toHaveLength(2);
  });

  it('interrupts a running RLM run, which leaves no sandbox or REPL behind', async () => {
    const controller = new AbortController();
    const root = new ScriptedBackend(() => replResponse('await new Promise(() => {})'), {});
    const run = runEvaluation(evaluation({ tasks: [task('1')], signal: controller.signal, rlm: { root: { backend: root, model: MODEL } } }));
    // Abort once the cell that never ends is running.
    const deadline = Date.now() + 30_000;
    while (root.calls.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort();
    expect(await run).toMatchObject({ written: 0, missing: 1, interrupted: true });
  });

  it('cuts the context of a direct prompt in the middle to fit the window, with a marker', async () => {
    const context = `START ${'x'.repeat(60_000)} END`;
    const role = { model: MODEL, contextWindowTokens: 4_000, maxOutputTokens: 500 };
    const { prompt, truncated } = directPrompt(context, 'Where?', role);
    expect(truncated).toBe(true);
    expect(estimateTokens(prompt) + 500).toBeLessThanOrEqual(4_000);
    expect(prompt).toContain('START');
    expect(prompt).toContain('END');
    expect(prompt).toMatch(/\[… [\d,]+ characters of the context were cut here to fit the model’s context window …\]/);
    expect(prompt).toContain('Question: Where?');
    expect(directPrompt('short', 'q', role)).toMatchObject({ truncated: false });
    expect(DIRECT_TRUNCATION_MARKER).toContain('{n}');

    const backend = gatedBackend();
    const long: EvalTask = { ...task('1'), context: { kind: 'inline', value: context } };
    const rlm: EvaluationRlmOptions = { root: { backend, model: MODEL, contextWindowTokens: 4_000, maxOutputTokens: 500 } };
    await runEvaluation(evaluation({ tasks: [long], methods: ['direct'], rlm }));
    expect((await readResults(dir)).lines).toMatchObject([{ truncated: true, context_chars: context.length }]);
  });

  it('refuses options out of range, naming them', async () => {
    const rlm = { root: { backend: gatedBackend(), model: MODEL } };
    await expect(runEvaluation(evaluation({ rlm, concurrency: 0 }))).rejects.toThrow(/concurrency/);
    await expect(runEvaluation(evaluation({ rlm, methods: [] }))).rejects.toThrow(/methods/);
    await expect(runEvaluation(evaluation({ rlm, tasks: [task('1'), task('1')] }))).rejects.toThrow(/two tasks have the id "1"/);
  });
});

describe('classify', () => {
  const callError = (kind: ModelCallErrorKind) => new ModelCallError(`failed: ${kind}`, 'b', 'm', {}, { kind });

  it('tells infrastructure failures, model failures and fatal errors apart', () => {
    expect(classify(new SandboxError('container died', 'abc'))).toBe('infra');
    expect(classify(new SandboxPoolExhaustedError('no room', 'timeout', 1_000))).toBe('infra');
    expect(classify(new DockerUnavailableError('no engine', 'unix:///var/run/docker.sock'))).toBe('infra');
    expect(classify(callError('provider_error'))).toBe('infra');
    expect(classify(callError('rate_limited'))).toBe('infra');
    expect(classify(callError('timeout'))).toBe('infra');
    expect(classify(new RunLimitError('consecutive_failures', '5 turns failed', null, { cause: callError('provider_error') }))).toBe('infra');
    expect(classify(new RlmError('could not make the REPL', { cause: new SandboxError('start failed', undefined) }))).toBe('infra');

    expect(classify(new RunLimitError('consecutive_failures', '5 turns in a row had only failing cells'))).toBe('model');
    expect(classify(new RunLimitError('cost', 'over'))).toBe('model');
    expect(classify(callError('invalid_request'))).toBe('model');
    expect(classify(new RlmError('the run ended without an answer'))).toBe('model');

    for (const kind of ['auth', 'permission', 'model_not_found', 'unreachable'] as const) expect(classify(callError(kind))).toBe('fatal');
    expect(classify(new SandboxImageError('build failed', 'log'))).toBe('fatal');
    expect(classify(new InvalidOptionError('limits.maxIterations', 'must be positive'))).toBe('fatal');
  });
});
