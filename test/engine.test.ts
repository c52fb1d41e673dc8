/**
 * The RLM loop end to end with scripted models at the backend seam and real sandboxes.
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { AbortedError, RLM, RunLimitError, ScriptedBackend, createDockerClient, listSandboxes, readTrajectory, type CompletionRequest, type RunEvent } from 'rlm';

const docker = createDockerClient();
const image = inject('sandboxImage');
const sandbox = { docker, image };

/** A response that runs `code` in a ```repl fence. */
const repl = (code: string, prose = 'Let me run this.') => `${prose}\n\`\`\`repl\n${code}\n\`\`\``;

/** A scripted root model answering with `replies` in order. */
function root(replies: Array<string | ((request: CompletionRequest) => string)>, options: { latencyMs?: number } = {}) {
  return new ScriptedBackend((request, index) => {
    const reply = replies[index];
    if (reply === undefined) throw new Error(`the scripted root model has no reply #${index + 1}`);
    return typeof reply === 'function' ? reply(request) : reply;
  }, { name: 'scripted-root', ...options });
}

/** A sub model that echoes prompts in upper case (and fails on "fail"). */
function echoSub(options: { latencyMs?: number } = {}) {
  return new ScriptedBackend((request) => {
    const prompt = request.messages.at(-1)?.content ?? '';
    return prompt === 'fail' ? new Error('sub model overloaded') : `ECHO ${prompt.toUpperCase()}`;
  }, { name: 'scripted-sub', ...options });
}

const lastUserMessage = (request: CompletionRequest) => request.messages.at(-1)?.content ?? '';

describe('the RLM loop', () => {
  it('answers with FINAL from a cell and reports usage, cost and the trajectory', async () => {
    const model = root([repl('const n = context.split(" ").length; print(n)'), repl('FINAL(`words: ${n}`)')]);
    const rlm = new RLM({ root: { backend: model, model: 'claude-sonnet-4-5' }, sandbox });
    const result = await rlm.completion({ context: 'one two three', query: 'How many words?' });
    expect(result).toMatchObject({ answer: 'words: 3', success: true, error: null, iterations: 2, limitReached: null });
    expect(result.usage['claude-sonnet-4-5']?.calls).toBe(2);
    expect(result.costUsd).toBeGreaterThan(0);
    expect(result.trajectory.map((t) => t.blocks[0]?.result.stdout.text)).toEqual(['3\n', '']);
    // The second turn's request carried the first turn's output, numbered for the model.
    expect(lastUserMessage(model.calls[1]!.request)).toContain('3');
  });

  it('answers with FINAL_VAR, and with FINAL or FINAL_VAR written as plain text', async () => {
    const viaVar = new RLM({ root: { backend: root([repl('const result = context.toUpperCase()'), 'Done.\nFINAL_VAR(result)']), model: 'm' }, sandbox });
    expect((await viaVar.completion({ context: 'abc', query: 'q' })).answer).toBe('ABC');
    const viaText = new RLM({ root: { backend: root([repl('print(context.length)'), 'The answer is below.\nFINAL(3 characters)']), model: 'm' }, sandbox });
    expect((await viaText.completion({ context: 'abc', query: 'q' })).answer).toBe('3 characters');
  });

  it('runs every block of a response in order and stops at the first FINAL', async () => {
    const model = root([
      [repl('globalThis.order = ["first"]'), repl('order.push("second"); FINAL(order.join(","))'), repl('order.push("third"); FINAL("too late")')].join('\n\n'),
    ]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('first,second');
    expect(result.trajectory[0]?.blocks).toHaveLength(2);
  });

  it('nudges a response without code, and tells the first turn to look at the context first', async () => {
    const model = root(['I think the answer is 42.', repl('FINAL(42)')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox });
    await rlm.completion({ context: 'x', query: 'q' });
    expect(lastUserMessage(model.calls[0]!.request)).toMatch(/context/i);
    expect(lastUserMessage(model.calls[1]!.request)).toMatch(/```repl/);
  });

  it('asks for the best answer in one last call when the iterations run out', async () => {
    const model = root([repl('print(1)'), repl('print(2)'), 'My best answer: 2\nFINAL(2)']);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { maxIterations: 2 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result).toMatchObject({ answer: '2', success: true, limitReached: 'iterations', iterations: 2 });
    expect(model.calls).toHaveLength(3);
  });

  it('never sends the context to the root model', async () => {
    const secret = `SECRET-${'x'.repeat(50)}-CONTEXT-MARKER`;
    const sub = echoSub();
    const model = root([repl('const answer = llm_query(context.slice(0, 20)); print(answer.length)'), repl('FINAL(answer)')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' }, sandbox });
    const result = await rlm.completion({ context: `${secret} and more text`, query: 'What is in the context?' });
    expect(result.success).toBe(true);
    for (const call of model.calls) {
      expect(JSON.stringify(call.request)).not.toContain('CONTEXT-MARKER');
    }
    expect(sub.calls[0]?.request.messages[0]?.content).toBe(secret.slice(0, 20));
  });
});

describe('sub-calls', () => {
  it('keeps batched results in input order, with a failed slot as an error string', async () => {
    const model = root([repl('FINAL(JSON.stringify(llm_query_batched(["a", "fail", "c"])))')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, sandbox });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(JSON.parse(result.answer ?? '[]')).toEqual(['ECHO A', 'Error: sub model overloaded', 'ECHO C']);
  });

  it('runs at most subcallConcurrency prompts of a batch at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const sub = new ScriptedBackend(async () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inFlight -= 1;
      return 'ok';
    });
    const model = root([repl('FINAL(llm_query_batched(Array.from({ length: 24 }, (_, i) => "p" + i)).length)')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' }, sandbox, limits: { subcallConcurrency: 3 } });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('24');
    expect(peak).toBe(3);
  });

  it('refuses a prompt larger than the target model context window, naming its size and the limit', async () => {
    const model = root([repl('FINAL(llm_query("y".repeat(10000)))')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 'tiny', contextWindowTokens: 1000 }, sandbox });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toMatch(/^Error: prompt of 10,000 characters .* exceeds the context window of tiny \(1,000 tokens\)/);
  });

  it('answers a model name that is not configured with an error string, not another model', async () => {
    const sub = echoSub();
    const model = root([repl('FINAL(llm_query("hi", { model: "gpt-unknown" }))')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' }, sandbox });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('Error: model "gpt-unknown" is not configured for this run; configured models: m, s');
    expect(sub.calls).toHaveLength(0);
  });

  it('routes a named model to its own backend', async () => {
    const other = new ScriptedBackend(() => 'from the big model', { name: 'other' });
    const model = root([repl('FINAL(llm_query("hi", { model: "big" }))')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, models: { big: { backend: other, model: 'gpt-5' } }, sandbox });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('from the big model');
  });

  it('recurses to depth 2: children get their own sandboxes, usage adds up and the trajectory nests', async () => {
    // One scripted model plays every level; it tells the levels apart by the prompt.
    const model = new ScriptedBackend((request) => {
      const first = request.messages[0]?.content ?? '';
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      const isChild = first.includes('parent RLM');
      if (turn === 0) return isChild ? repl('const inner = rlm_query("deepest: " + context.slice(0, 40)); print(inner)') : repl('const r = rlm_query("child task"); print(r)');
      return isChild ? repl('FINAL("child saw " + inner)') : repl('FINAL("root got: " + r)');
    });
    const sub = echoSub();
    const rlm = new RLM({ root: { backend: model, model: 'root-model' }, sub: { backend: sub, model: 'sub-model' }, sandbox, limits: { maxDepth: 2 } });
    const result = await rlm.completion({ context: 'top', query: 'q' });
    expect(result.success).toBe(true);
    // depth 0 → child at depth 1 → grandchild at depth 2, whose rlm_query is a plain llm_query.
    expect(result.answer).toMatch(/^root got: child saw child saw ECHO DEEPEST/);
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
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { maxTokens: 50 } });
    const result = await rlm.completion({ context: 'x'.repeat(400), query: 'q' });
    expect(result.success).toBe(false);
    expect(result.error).toBeInstanceOf(RunLimitError);
    expect(result.limitReached).toBe('tokens');
    expect((result.error as RunLimitError).partialAnswer).toMatch(/Partial: still counting/);
  });

  it('stops the whole tree when a child overspends the cost budget', async () => {
    const model = new ScriptedBackend((request) => {
      const isChild = (request.messages[0]?.content ?? '').includes('parent RLM');
      return isChild ? repl('print(llm_query("spend"))') : repl('print(rlm_query("go"))');
    });
    const rlm = new RLM({
      root: { backend: model, model: 'priced' },
      sub: { backend: echoSub(), model: 'priced' },
      sandbox,
      prices: { priced: { input: 1_000_000, output: 1_000_000 } },
      limits: { maxCostUsd: 200, maxDepth: 1 },
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('cost');
    expect(result.error?.message).toMatch(/over its budget of \$200/);
  });

  it('shares the iteration pool between a parent and its child', async () => {
    const model = new ScriptedBackend((request) => {
      const isChild = (request.messages[0]?.content ?? '').includes('parent RLM');
      return isChild ? repl('print("child turn")') : repl('print(rlm_query("loop forever"))');
    });
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { maxIterations: 4 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('iterations');
    // 4 turns in the whole tree: 1 root + 3 child, then the root's last call.
    expect(model.calls.length).toBeLessThanOrEqual(6);
  });

  it('stops after too many failing turns in a row', async () => {
    const model = new ScriptedBackend(() => repl('throw new Error("boom")'));
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { maxConsecutiveFailures: 2 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('consecutive_failures');
    expect(model.calls).toHaveLength(2);
  });

  it('stops at the wall-clock limit, interrupting a running cell', async () => {
    const model = root([repl('while (true) {}')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { timeoutMs: 2_000 } });
    const started = performance.now();
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.limitReached).toBe('timeout');
    expect(performance.now() - started).toBeLessThan(8_000);
  });
});

describe('cancellation, tools, sessions, compaction and trajectories', () => {
  it('cancels a run through its AbortSignal: the cell stops and the sandbox is removed', async () => {
    const controller = new AbortController();
    const model = root([repl('while (true) {}')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox });
    setTimeout(() => controller.abort(), 1_500);
    await expect(rlm.completion({ context: '', query: 'q', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    const mine = (await listSandboxes({ docker })).filter((s) => s.owner.includes(`:${process.pid}:`) && s.state === 'running');
    expect(mine).toEqual([]);
  });

  it('lets cells call host functions and read data tools, and describes them in the system prompt', async () => {
    const model = root([repl('FINAL(lookup(rates.base, 2))')]);
    const rlm = new RLM({
      root: { backend: model, model: 'm' },
      sandbox,
      tools: {
        lookup: { description: 'multiplies a number', handler: ([value, factor]) => Number(value) * Number(factor) },
        rates: { description: 'exchange rates', value: { base: 21 } },
      },
    });
    expect((await rlm.completion({ context: '', query: 'q' })).answer).toBe('42');
    expect(model.calls[0]?.request.system).toMatch(/lookup.*multiplies a number/s);
    expect(model.calls[0]?.request.system).toMatch(/rates.*exchange rates/s);
  });

  it('keeps one sandbox across a session: later contexts as context_1, earlier conversations as history_0', async () => {
    const model = root([
      repl('globalThis.kept = context.length; FINAL(kept)'),
      repl('FINAL([kept, context, context_1, history_0.length > 0].join("|"))'),
    ]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox });
    await using session = rlm.session();
    expect((await session.completion({ context: 'first', query: 'q1' })).answer).toBe('5');
    expect((await session.completion({ context: 'second', query: 'q2' })).answer).toBe('5|first|second|true');
  });

  it('replaces a session sandbox that a stopped completion closed, with every context loaded again', async () => {
    const model = root([
      repl('while (true) {}'),
      repl('FINAL([context, context_1].join("+"))'),
    ]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sandbox, limits: { cellTimeoutMs: 60_000 } });
    await using session = rlm.session();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_000);
    await expect(session.completion({ context: 'first', query: 'q1', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    expect((await session.completion({ context: 'second', query: 'q2' })).answer).toBe('first+second');
  });

  it('summarises the root conversation near the context window and keeps the full history in the REPL', async () => {
    const events: RunEvent[] = [];
    const model = root([
      repl(`print("${'z'.repeat(1500)}")`),
      (request) => (lastUserMessage(request).includes('Summar') ? 'Summary: printed a long line.' : repl('print(1)')),
      (request) => (lastUserMessage(request).includes('Summar') ? 'Summary: printed a long line.' : repl('FINAL(history.length)')),
      repl('FINAL(history.length)'),
    ]);
    const rlm = new RLM({ root: { backend: model, model: 'm', contextWindowTokens: 1_500 }, sandbox, onEvent: (e) => events.push(e) });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(events.some((e) => e.type === 'compaction')).toBe(true);
    expect(Number(result.answer)).toBeGreaterThan(1);
  });

  it('writes a JSONL trajectory the reference visualizer can read, without any API key', async () => {
    const logDir = await mkdtemp(path.join(os.tmpdir(), 'rlm-trajectory-'));
    const model = root([repl('const a = llm_query("hi"); print(a)'), repl('FINAL(a)')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, sandbox, logDir });
    const result = await rlm.completion({ context: 'ctx', query: 'q' });
    expect(result.trajectoryFile).toMatch(/rlm_.*\.jsonl$/);
    const text = await readFile(result.trajectoryFile ?? '', 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
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

  it('streams typed events through a callback and an async iterator', async () => {
    const seen: string[] = [];
    const model = root([repl('print(llm_query("x"))'), repl('FINAL(1)')]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, sandbox, onEvent: (e) => seen.push(e.type) });
    const run = rlm.run({ context: '', query: 'q' });
    const iterated: string[] = [];
    for await (const event of run.events) iterated.push(event.type);
    await run.result;
    expect(iterated).toEqual(seen);
    expect(seen).toEqual([
      'run_start',
      'turn_start', 'model_response', 'cell_start', 'subcall_start', 'subcall_end', 'cell_end',
      'turn_start', 'model_response', 'cell_start', 'cell_end',
      'final', 'run_end',
    ]);
  });
});

describe('a Python RLM', () => {
  it('runs ```python and ```repl blocks in a Python sandbox with Python prompts, sub-calls and FINAL_VAR', async () => {
    const model = root([
      repl('words = context.split()\nanswers = llm_query_batched(words)\nprint(len(words), answers[0])'),
      `Now the summary.\n\`\`\`python\nsummary = " / ".join(answers) + " / " + llm_query("done", model="s")\n\`\`\``,
      'FINAL_VAR(summary)',
    ]);
    const rlm = new RLM({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, language: 'python', sandbox });
    const result = await rlm.completion({ context: 'alpha beta', query: 'Shout every word.' });
    expect(result).toMatchObject({ answer: 'ECHO ALPHA / ECHO BETA / ECHO DONE', success: true, iterations: 3 });
    expect(result.trajectory[0]?.blocks[0]?.result.stdout.text).toBe('2 ECHO ALPHA\n');
    const system = model.calls[0]!.request.system ?? '';
    expect(system).toContain('Python REPL environment');
    expect(system).toContain('llm_query(prompt, model=None)');
  });

  it('recurses with rlm_query into a Python child, and reports a Python error to the model', async () => {
    const isChild = (request: CompletionRequest) => request.messages.some((m) => m.content.includes('parent RLM'));
    const model = new ScriptedBackend((request) => {
      const turns = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChild(request)) return repl('FINAL(type(context).__name__ + ": " + context.upper())');
      if (turns === 0) return repl('{}["missing"]');
      if (turns === 1) return repl('child = rlm_query("child task")\nFINAL(child)');
      throw new Error(`unexpected turn ${turns}`);
    }, { name: 'scripted-root' });
    const rlm = new RLM({ root: { backend: model, model: 'm' }, language: 'python', sandbox, limits: { maxDepth: 1 } });
    const result = await rlm.completion({ context: 'root context', query: 'q' });
    expect(result.answer).toBe('str: CHILD TASK');
    const second = model.calls.filter((call) => !isChild(call.request))[1];
    expect(lastUserMessage(second!.request)).toMatch(/\[error\] KeyError: 'missing'\n {4}File "<cell 1>", line 1, in <module>/);
    expect(result.trajectory[1]?.blocks[0]?.subcalls[0]?.child?.turns[0]?.blocks[0]?.result.final?.value).toBe('str: CHILD TASK');
  });
});
