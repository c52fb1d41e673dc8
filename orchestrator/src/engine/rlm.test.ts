/**
 * The RLM loop with scripted models at the backend seam and in-process REPLs (the sandbox's REPL
 * core without a container): every behaviour of the engine that does not depend on the container.
 * test/engine.test.ts runs the paths that do (containers per child, removal on cancel) for real.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError } from '../errors.js';
import type { CompletionRequest } from '../models/model-backend.js';
import { ScriptedBackend } from '../models/scripted-backend.js';
import { inProcessRepls, type InProcessReplFactory } from '../testing/in-process-repl.js';
import { depthTwoTreeModel, echoSub, isChildRequest as isChild, lastUserMessage, replResponse as repl } from '../testing/scripted-models.js';
import { readTrajectory } from '../trajectory/trajectory-schema.js';
import { RLM, useReplFactory } from './rlm.js';
import type { RlmOptions } from './rlm-options.js';
import { RunLimitError } from './run-budget.js';
import type { RunEvent } from './run-events.js';

let repls: InProcessReplFactory;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  // Every REPL a run made is closed by the time its completion settles.
  const open = repls?.made.filter((repl) => !repl.isClosed) ?? [];
  await Promise.all(open.map((repl) => repl.close()));
  expect(open.map((repl) => repl.id)).toEqual([]);
});

/** An RLM whose cells run in in-process REPLs. */
function rlmOf(options: RlmOptions): RLM {
  repls = inProcessRepls();
  return useReplFactory(new RLM(options), repls);
}

/** A scripted root model answering with `replies` in order. */
function root(replies: Array<string | ((request: CompletionRequest) => string)>) {
  return new ScriptedBackend(
    (request, index) => {
      const reply = replies[index];
      if (reply === undefined) throw new Error(`the scripted root model has no reply #${index + 1}`);
      return typeof reply === 'function' ? reply(request) : reply;
    },
    { name: 'scripted-root' },
  );
}

describe('the RLM loop', () => {
  it('answers with FINAL from a cell and reports usage, cost and the trajectory', async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the cell's code holds a template literal
    const model = root([repl('const n = context.split(" ").length; print(n)'), repl('FINAL(`words: ${n}`)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'claude-sonnet-4-5' } });
    const result = await rlm.completion({ context: 'one two three', query: 'How many words?' });
    expect(result).toMatchObject({ answer: 'words: 3', success: true, error: null, iterations: 2, limitReached: null });
    expect(result.usage['claude-sonnet-4-5']?.calls).toBe(2);
    expect(result.costUsd).toBeGreaterThan(0);
    expect(result.trajectory.map((t) => t.blocks[0]?.result.stdout.text)).toEqual(['3\n', '']);
    // The second turn's request carried the first turn's output, numbered for the model.
    expect(lastUserMessage(model.calls[1]!.request)).toMatch(/3/);
  });

  it('answers with FINAL_VAR from a cell', async () => {
    const rlm = rlmOf({ root: { backend: root([repl('const result = context.toUpperCase(); FINAL_VAR("result")')]), model: 'm' } });
    expect(await rlm.completion({ context: 'abc', query: 'q' })).toMatchObject({ answer: 'ABC', success: true });
  });

  it('answers with FINAL_VAR written as plain text, looking the variable up in the REPL', async () => {
    const rlm = rlmOf({ root: { backend: root([repl('const result = context.toUpperCase()'), 'Done.\nFINAL_VAR(result)']), model: 'm' } });
    expect((await rlm.completion({ context: 'abc', query: 'q' })).answer).toBe('ABC');
  });

  it('answers with FINAL written as plain text', async () => {
    const rlm = rlmOf({ root: { backend: root([repl('print(context.length)'), 'The answer is below.\nFINAL(3 characters)']), model: 'm' } });
    expect((await rlm.completion({ context: 'abc', query: 'q' })).answer).toBe('3 characters');
  });

  it('tells the model which variables exist when a plain-text FINAL_VAR names a missing one', async () => {
    const model = root([repl('const present = 1'), 'FINAL_VAR(absent)', repl('FINAL(present)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' } });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('1');
    expect(lastUserMessage(model.calls[2]!.request)).toMatch(/absent[\s\S]*present/);
  });

  it('runs every block of a response in order and stops at the first FINAL', async () => {
    const model = root([
      [repl('globalThis.order = ["first"]'), repl('order.push("second"); FINAL(order.join(","))'), repl('order.push("third"); FINAL("too late")')].join('\n\n'),
    ]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('first,second');
    expect(result.trajectory[0]?.blocks).toHaveLength(2);
  });

  it('nudges a response without code, and tells the first turn to look at the context first', async () => {
    const model = root(['I think the answer is 42.', repl('FINAL(42)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' } });
    await rlm.completion({ context: 'x', query: 'q' });
    expect(lastUserMessage(model.calls[0]!.request)).toMatch(/context/i);
    expect(lastUserMessage(model.calls[1]!.request)).toMatch(/```repl/);
  });

  it('asks for the best answer in one last call when the iterations run out', async () => {
    const model = root([repl('print(1)'), repl('print(2)'), 'My best answer: 2\nFINAL(2)']);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { maxIterations: 2 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result).toMatchObject({ answer: '2', success: true, limitReached: 'iterations', iterations: 2 });
    expect(model.calls).toHaveLength(3);
  });

  it('never sends the context to the root model', async () => {
    const secret = `SECRET-${'x'.repeat(50)}-CONTEXT-MARKER`;
    const sub = echoSub();
    const model = root([repl('const answer = llm_query(context.slice(0, 20)); print(answer.length)'), repl('FINAL(answer)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' } });
    const result = await rlm.completion({ context: `${secret} and more text`, query: 'What is in the context?' });
    expect(result.success).toBe(true);
    for (const call of model.calls) expect(JSON.stringify(call.request)).not.toContain('CONTEXT-MARKER');
    expect(sub.calls[0]?.request.messages[0]?.content).toBe(secret.slice(0, 20));
  });
});

describe('sub-calls', () => {
  it('keeps batched results in input order, with a failed slot as an error string', async () => {
    const model = root([repl('FINAL(JSON.stringify(llm_query_batched(["a", "fail", "c"])))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(JSON.parse(result.answer ?? '[]')).toEqual(['ECHO A', 'Error: sub model overloaded', 'ECHO C']);
  });

  it('runs at most subcallConcurrency prompts of a batch at once', async () => {
    // Each call is held until three are in flight together: a cap below three would never get
    // there (and the test would time out), a cap above three would show a higher peak.
    let inFlight = 0;
    let peak = 0;
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const sub = new ScriptedBackend(async () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      if (inFlight === 3) openGate();
      await gate;
      // Let every call that could start now start before this one ends.
      await new Promise<void>((resolve) => setImmediate(resolve));
      inFlight -= 1;
      return 'ok';
    });
    const model = root([repl('FINAL(llm_query_batched(Array.from({ length: 24 }, (_, i) => "p" + i)).length)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' }, limits: { subcallConcurrency: 3 } });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('24');
    expect(peak).toBe(3);
    expect(sub.calls).toHaveLength(24);
  });

  it('refuses a prompt larger than the target model context window, naming its size and the limit', async () => {
    const model = root([repl('FINAL(llm_query("y".repeat(10000)))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 'tiny', contextWindowTokens: 1000 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toMatch(/^Error: prompt of 10,000 characters .* exceeds the context window of tiny \(1,000 tokens\)/);
  });

  it('answers a model name that is not configured with an error string, not another model', async () => {
    const sub = echoSub();
    const model = root([repl('FINAL(llm_query("hi", { model: "gpt-unknown" }))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('Error: model "gpt-unknown" is not configured for this run; configured models: m, s');
    expect(sub.calls).toHaveLength(0);
  });

  it('routes a named model to its own backend', async () => {
    const other = new ScriptedBackend(() => 'from the big model', { name: 'other' });
    const model = root([repl('FINAL(llm_query("hi", { model: "big" }))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, models: { big: { backend: other, model: 'gpt-5' } } });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('from the big model');
    expect(other.calls[0]?.request.model).toBe('gpt-5');
    // The root model was told which names it may use.
    expect(model.calls[0]?.request.system).toMatch(/the models you may name are `big`/);
  });

  it('recurses to depth 2: each child gets its own REPL, usage adds up and the trajectory nests', async () => {
    const model = depthTwoTreeModel();
    const rlm = rlmOf({ root: { backend: model, model: 'root-model' }, sub: { backend: echoSub(), model: 'sub-model' }, limits: { maxDepth: 2 } });
    const result = await rlm.completion({ context: 'top', query: 'q' });
    expect(result.success).toBe(true);
    // depth 0 → child at depth 1 → grandchild at depth 2, whose rlm_query is a plain llm_query.
    expect(result.answer).toMatch(/^root got: child saw child saw ECHO DEEPEST/);
    expect(repls.made).toHaveLength(3);
    const childCall = result.trajectory[0]?.blocks[0]?.subcalls[0];
    expect(childCall?.kind).toBe('rlm_query');
    const grandchildCall = childCall?.child?.turns[0]?.blocks[0]?.subcalls[0];
    expect(grandchildCall?.child?.depth).toBe(2);
    expect(result.usage['root-model']?.calls).toBe(6);
    expect(result.usage['sub-model']?.calls).toBe(1);
    // Each child's record holds its own usage, not the tree's: the child made 2 root calls, and its
    // grandchild's 2 root calls and 1 sub call are merged into it when the grandchild ends.
    expect(childCall?.child?.usage['root-model']?.calls).toBe(4);
    expect(grandchildCall?.child?.usage).toEqual({ 'root-model': expect.objectContaining({ calls: 2 }), 'sub-model': expect.objectContaining({ calls: 1 }) });
  });
});

describe('limits shared by the recursion tree', () => {
  it('stops at the token budget with a typed error carrying the partial answer', async () => {
    const model = root([repl('print("working")', 'Partial: still counting.'), repl('print("more")'), repl('FINAL(1)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { maxTokens: 50 } });
    const result = await rlm.completion({ context: 'x'.repeat(400), query: 'q' });
    expect(result.success).toBe(false);
    expect(result.error).toBeInstanceOf(RunLimitError);
    expect(result.limitReached).toBe('tokens');
    expect((result.error as RunLimitError).partialAnswer).toMatch(/Partial: still counting/);
  });

  it('stops the whole tree when a child overspends the cost budget', async () => {
    const model = new ScriptedBackend((request) => (isChild(request) ? repl('print(llm_query("spend"))') : repl('print(rlm_query("go"))')));
    const rlm = rlmOf({
      root: { backend: model, model: 'priced' },
      sub: { backend: echoSub(), model: 'priced' },
      prices: { priced: { input: 1_000_000, output: 1_000_000 } },
      limits: { maxCostUsd: 200, maxDepth: 1 },
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('cost');
    expect(result.error?.message).toMatch(/over its budget of \$200/);
  });

  it('shares the iteration pool between a parent and its child', async () => {
    const model = new ScriptedBackend((request) => (isChild(request) ? repl('print("child turn")') : repl('print(rlm_query("loop forever"))')));
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { maxIterations: 4 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('iterations');
    // 4 turns in the whole tree (1 root + 3 child), then at most the child's and the root's last calls.
    expect(model.calls.length).toBeLessThanOrEqual(6);
  });

  it('stops after too many failing turns in a row', async () => {
    const model = new ScriptedBackend(() => repl('throw new Error("boom")'));
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { maxConsecutiveFailures: 2 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('consecutive_failures');
    expect(model.calls).toHaveLength(2);
  });

  it('stops at the wall-clock limit with a cell still running, and says which setting to raise', async () => {
    const model = root([repl('while (true) {}')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { timeoutMs: 1_000 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('timeout');
    expect(result.error?.message).toMatch(/wall-clock limit of 1 s; raise the timeout/);
  });
});

describe('cancellation', () => {
  /** A sub model that cancels `controller` when a cell asks it "started": the cell is running then. */
  function cancellingSub(controller: AbortController) {
    return new ScriptedBackend((request) => {
      if (lastUserMessage(request) === 'started') controller.abort();
      return 'ok';
    });
  }

  it('cancels a run through its AbortSignal while a cell runs: the run rejects and its REPL is closed', async () => {
    const controller = new AbortController();
    const model = root([repl('llm_query("started"); while (true) {}')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: cancellingSub(controller), model: 's' } });
    await expect(rlm.completion({ context: '', query: 'q', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    expect(repls.made.map((r) => r.isClosed)).toEqual([true]);
  });

  it('replaces a session REPL that a cancelled completion closed, with every context loaded again', async () => {
    const controller = new AbortController();
    const model = root([repl('llm_query("started"); while (true) {}'), repl('FINAL([context, context_1].join("+"))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: cancellingSub(controller), model: 's' }, limits: { cellTimeoutMs: 60_000 } });
    await using session = rlm.session();
    await expect(session.completion({ context: 'first', query: 'q1', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    expect((await session.completion({ context: 'second', query: 'q2' })).answer).toBe('first+second');
    expect(repls.made).toHaveLength(2);
  });
});

describe('tools, sessions, compaction, trajectories and events', () => {
  it('lets cells call host functions and read data tools, and describes them in the system prompt', async () => {
    const model = root([repl('FINAL(lookup(rates.base, 2))')]);
    const rlm = rlmOf({
      root: { backend: model, model: 'm' },
      tools: {
        lookup: { description: 'multiplies a number', handler: ([value, factor]) => Number(value) * Number(factor) },
        rates: { description: 'exchange rates', value: { base: 21 } },
      },
    });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('42');
    expect(model.calls[0]?.request.system).toMatch(/lookup.*multiplies a number/s);
    expect(model.calls[0]?.request.system).toMatch(/rates.*exchange rates/s);
  });

  it('keeps one REPL across a session: later contexts as context_1, earlier conversations as history_0', async () => {
    const model = root([repl('globalThis.kept = context.length; FINAL(kept)'), repl('FINAL([kept, context, context_1, history_0.length > 0].join("|"))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' } });
    await using session = rlm.session();
    expect((await session.completion({ context: 'first', query: 'q1' })).answer).toBe('5');
    expect((await session.completion({ context: 'second', query: 'q2' })).answer).toBe('5|first|second|true');
    expect(repls.made).toHaveLength(1);
  });

  it('refuses a completion on a closed session, naming how to start a new one', async () => {
    const rlm = rlmOf({ root: { backend: root([]), model: 'm' } });
    const session = rlm.session();
    await session.close();
    await session.close();
    await expect(session.completion({ context: '', query: 'q' })).rejects.toThrow(/the session is closed; start a new one with rlm.session\(\)/);
  });

  it('summarises the root conversation near the context window and keeps the full history in the REPL', async () => {
    const events: RunEvent[] = [];
    const model = root([
      repl(`print("${'z'.repeat(1500)}")`),
      (request) => (lastUserMessage(request).includes('Summar') ? 'Summary: printed a long line.' : repl('print(1)')),
      (request) => (lastUserMessage(request).includes('Summar') ? 'Summary: printed a long line.' : repl('FINAL(history.length)')),
      repl('FINAL(history.length)'),
    ]);
    const rlm = rlmOf({ root: { backend: model, model: 'm', contextWindowTokens: 1_500 }, onEvent: (e) => events.push(e) });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(events.some((e) => e.type === 'compaction')).toBe(true);
    expect(Number(result.answer)).toBeGreaterThan(1);
  });

  it('writes a JSONL trajectory the reference visualizer can read, without any API key', async () => {
    const logDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-trajectory-'));
    cleanups.push(() => rm(logDir, { recursive: true, force: true }));
    const model = root([repl('const a = llm_query("hi"); print(a)'), repl('FINAL(a)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, logDir });
    const result = await rlm.completion({ context: 'ctx', query: 'q' });
    expect(result.trajectoryFile).toMatch(/rlm_.*\.jsonl$/);
    const text = await readFile(result.trajectoryFile ?? '', 'utf8');
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ type: 'metadata', root_model: 'm', max_depth: 1, max_iterations: 30, environment_type: 'docker' });
    expect(lines[1]).toMatchObject({ type: 'iteration', iteration: 1, final_answer: null });
    expect(lines[1]?.code_blocks).toEqual([
      expect.objectContaining({
        code: 'const a = llm_query("hi"); print(a)',
        result: expect.objectContaining({ stdout: 'ECHO HI\n', rlm_calls: [expect.objectContaining({ root_model: 's', prompt: 'hi', response: 'ECHO HI' })] }),
      }),
    ]);
    expect(lines[2]).toMatchObject({ type: 'iteration', iteration: 2, final_answer: 'ECHO HI' });
    const parsed = await readTrajectory(result.trajectoryFile ?? '');
    expect(parsed.iterations).toHaveLength(2);
    expect(text).not.toMatch(/sk-|api[_-]?key"\s*:\s*"[^[]/i);
  });

  it('streams the same typed events through a callback and an async iterator, in order', async () => {
    const seen: string[] = [];
    const model = root([repl('print(llm_query("x"))'), repl('FINAL(1)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, onEvent: (e) => seen.push(e.type) });
    const run = rlm.run({ context: '', query: 'q' });
    const iterated: string[] = [];
    for await (const event of run.events) iterated.push(event.type);
    await run.result;
    expect(iterated).toEqual(seen);
    // biome-ignore format: one line per turn
    expect(seen).toEqual([
      'run_start',
      'turn_start', 'model_response', 'cell_start', 'subcall_start', 'subcall_end', 'cell_end',
      'turn_start', 'model_response', 'cell_start', 'cell_end',
      'final', 'run_end',
    ]);
  });
});

describe('a Python RLM', () => {
  it('runs ```python and ```repl blocks with Python prompts, sub-calls and FINAL_VAR', async () => {
    const model = root([
      repl('words = context.split()\nanswers = llm_query_batched(words)\nprint(len(words), answers[0])'),
      `Now the summary.\n\`\`\`python\nsummary = " / ".join(answers) + " / " + llm_query("done", model="s")\n\`\`\``,
      'FINAL_VAR(summary)',
    ]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, language: 'python' });
    const result = await rlm.completion({ context: 'alpha beta', query: 'Shout every word.' });
    expect(result).toMatchObject({ answer: 'ECHO ALPHA / ECHO BETA / ECHO DONE', success: true, iterations: 3 });
    expect(result.trajectory[0]?.blocks[0]?.result.stdout.text).toBe('2 ECHO ALPHA\n');
    const system = model.calls[0]!.request.system ?? '';
    expect(system).toContain('Python REPL environment');
    expect(system).toContain('llm_query(prompt, model=None)');
  });

  it('recurses with rlm_query into a Python child, and reports a Python error to the model', async () => {
    const inChild = (request: CompletionRequest) => request.messages.some((m) => m.content.includes('parent RLM'));
    const model = new ScriptedBackend(
      (request) => {
        const turns = request.messages.filter((m) => m.role === 'assistant').length;
        if (inChild(request)) return repl('FINAL(type(context).__name__ + ": " + context.upper())');
        if (turns === 0) return repl('{}["missing"]');
        if (turns === 1) return repl('child = rlm_query("child task")\nFINAL(child)');
        throw new Error(`unexpected turn ${turns}`);
      },
      { name: 'scripted-root' },
    );
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, language: 'python', limits: { maxDepth: 1 } });
    const result = await rlm.completion({ context: 'root context', query: 'q' });
    expect(result.answer).toBe('str: CHILD TASK');
    const second = model.calls.filter((call) => !inChild(call.request))[1];
    expect(lastUserMessage(second!.request)).toMatch(/\[error\] KeyError: 'missing'\n {4}File "<cell 1>", line 1, in <module>/);
    expect(result.trajectory[1]?.blocks[0]?.subcalls[0]?.child?.turns[0]?.blocks[0]?.result.final?.value).toBe('str: CHILD TASK');
  });
});
