/**
 * A run bounded by its configuration, not by what its cells send: model names looked up as own
 * names only, sub-call prompts capped per cell and per run, records of sub-calls bounded, the
 * tree's sandboxes capped (and the tree still finishing), a lost REPL state told to the model.
 * Scripted models and in-process REPLs, as in rlm.test.ts.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecuteResult } from '@rlm/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { setLogSink } from '../logging.js';
import type { CompletionRequest } from '../models/model-backend.js';
import { ScriptedBackend } from '../models/scripted-backend.js';
import type { Repl, ReplFactory, ReplRequest } from '../sandbox/repl.js';
import { inProcessRepls, type InProcessReplFactory } from '../testing/in-process-repl.js';
import { echoSub, isChildRequest, lastUserMessage, replResponse as repl } from '../testing/scripted-models.js';
import { readTrajectory } from '../trajectory/trajectory-schema.js';
import { MAX_RECORDED_SUBCALLS_PER_CELL, RECORDED_TEXT_LIMIT_CHARS, REFUSED_PROMPT_PREFIX_CHARS } from './recorded-text.js';
import { RLM, useReplFactory } from './rlm.js';
import type { RlmOptions } from './rlm-options.js';
import type { RunEvent } from './run-events.js';
import type { SubcallRecord, TurnRecord } from './run-records.js';

let repls: InProcessReplFactory | undefined;
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  const open = repls?.made.filter((repl) => !repl.isClosed) ?? [];
  await Promise.all(open.map((repl) => repl.close()));
  expect(open.map((repl) => repl.id)).toEqual([]);
  repls = undefined;
});

/** An RLM whose cells run in in-process REPLs, made through `wrap` when given. */
function rlmOf(options: RlmOptions, wrap?: (factory: InProcessReplFactory) => ReplFactory): RLM {
  repls = inProcessRepls();
  return useReplFactory(new RLM(options), wrap ? wrap(repls) : repls);
}

/** A scripted root model answering with `replies` in order. */
function root(replies: string[]) {
  return new ScriptedBackend((_request, index) => replies[index] ?? new Error(`no reply #${index + 1}`), { name: 'scripted-root' });
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-bounded-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const allSubcalls = (turns: readonly TurnRecord[]): SubcallRecord[] => turns.flatMap((turn) => turn.blocks.flatMap((block) => block.subcalls));

describe('model names a cell gives', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('answers %s as an unknown model, naming the configured ones', async (name) => {
    const sub = echoSub();
    const model = root([repl(`FINAL(llm_query("hi", { model: ${JSON.stringify(name)} }) + " / " + rlm_query("hi", { model: ${JSON.stringify(name)} }))`)]);
    const rlm = rlmOf({
      root: { backend: model, model: 'm' },
      sub: { backend: sub, model: 's' },
      models: { big: { backend: sub, model: 'gpt-5' } },
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    const error = `Error: model ${JSON.stringify(name)} is not configured for this run; configured models: m, s, big`;
    expect(result.answer).toBe(`${error} / ${error}`);
    expect(sub.calls).toHaveLength(0);
  });
});

describe('sub-call prompts', () => {
  it('records a prompt refused by the context-window guard by its length and first characters only', async () => {
    const events: RunEvent[] = [];
    const logDir = await tempDir();
    const model = root([
      repl(
        'let refused = 0; for (let i = 0; i < 20; i++) { if (llm_query("P" + i + ":" + "y".repeat(1024 * 1024)).startsWith("Error: prompt of")) refused++ } print(refused)',
      ),
      repl('FINAL(refused)'),
    ]);
    const rlm = rlmOf({
      root: { backend: model, model: 'm' },
      sub: { backend: echoSub(), model: 'tiny', contextWindowTokens: 1_000 },
      logDir,
      onEvent: (e) => events.push(e),
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('20');
    const calls = allSubcalls(result.trajectory);
    expect(calls).toHaveLength(20);
    for (const [index, call] of calls.entries()) {
      expect(call.promptChars).toBe(`P${index}:`.length + 1024 * 1024);
      expect(call.prompt.startsWith(`P${index}:yyy`)).toBe(true);
      expect(call.prompt.length).toBeLessThan(REFUSED_PROMPT_PREFIX_CHARS + 100);
      expect(call.prompt).toMatch(/… \[1,048,5\d\d characters in all; only the first 200 recorded\]$/);
      expect(call.error).toMatch(/exceeds the context window of tiny/);
    }
    // The trajectory holds 20 refused prompts of 1 MiB in a few kilobytes.
    expect((await stat(result.trajectoryFile ?? '')).size).toBeLessThan(100_000);
    const { iterations } = await readTrajectory(result.trajectoryFile ?? '');
    expect(iterations[0]?.code_blocks[0]?.result.rlm_calls[0]).toMatchObject({ prompt_chars: 1024 * 1024 + 3 });
    expect(events.filter((e) => e.type === 'subcall_start').map((e) => e.type === 'subcall_start' && e.promptChars)).toHaveLength(20);
  });

  it('keeps an accepted prompt and its answer up to 64 Ki characters in the record, and sends the model all of it', async () => {
    const sub = echoSub();
    const model = root([repl('const answer = llm_query("BEGIN" + "z".repeat(200 * 1024) + "END"); FINAL(answer.length)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' } });
    const result = await rlm.completion({ context: '', query: 'q' });
    const whole = 200 * 1024 + 8;
    expect(result.answer).toBe(String(whole + 'ECHO '.length));
    expect(sub.calls[0]?.request.messages[0]?.content).toHaveLength(whole);
    const [call] = allSubcalls(result.trajectory);
    expect(call?.promptChars).toBe(whole);
    expect(call?.prompt).toMatch(/^BEGINz+\n… \[[\d,]+ characters not recorded; 204,808 in all\] …\nz+END$/);
    expect(call?.prompt.length).toBeLessThan(RECORDED_TEXT_LIMIT_CHARS + 100);
    expect(call?.response?.length).toBeLessThan(RECORDED_TEXT_LIMIT_CHARS + 100);
    expect(call?.response).toMatch(/^ECHO BEGINZ+\n… \[.*\] …\nZ+END$/);
  });

  it('refuses prompts past maxSubcallPromptBytesPerCell with an error naming it, and gives the next cell a fresh allowance', async () => {
    const sub = echoSub();
    const model = root([
      repl('const first = llm_query_batched(["a".repeat(400), "b".repeat(400), "c".repeat(400), "d"]).map((r) => r.slice(0, 120)); print(first.join("\\n"))'),
      repl('FINAL(llm_query("e".repeat(400)).slice(0, 8))'),
    ]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: sub, model: 's' }, limits: { maxSubcallPromptBytesPerCell: 1_000 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result).toMatchObject({ success: true, answer: 'ECHO EEE' });
    // Records come in the order the calls ended: find them by their prompts.
    const calls = result.trajectory[0]?.blocks[0]?.subcalls ?? [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((letter) => calls.find((call) => call.prompt.startsWith(letter)));
    expect(a?.response).toMatch(/^ECHO A+$/);
    expect(b?.response).toMatch(/^ECHO B+$/);
    expect(c).toMatchObject({ response: null, promptChars: 400 });
    expect(c?.error).toBe(
      'prompt of 400 bytes refused: this cell already passed 800 bytes of prompts to sub-calls, and maxSubcallPromptBytesPerCell allows 1000 bytes per cell; ' +
        'send less per cell, or raise limits.maxSubcallPromptBytesPerCell (limits.maxSubcallPromptMbPerCell in the config file)',
    );
    // A smaller prompt after the refused one still fits.
    expect(d?.response).toBe('ECHO D');
    expect(sub.calls.map((call) => call.request.messages[0]?.content.slice(0, 1))).toEqual(['a', 'b', 'd', 'e']);
    expect(lastUserMessage(model.calls[1]!.request)).toContain('Error: prompt of 400 bytes refused');
  });

  it('refuses prompts past maxSubcallPromptBytesPerRun across cells and child runs, and the run goes on', async () => {
    const model = new ScriptedBackend((request) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChildRequest(request)) return repl('FINAL(llm_query("c".repeat(300)).slice(0, 7))');
      if (turn === 0) return repl('const r1 = rlm_query("child: " + "x".repeat(293)); print(r1)');
      if (turn === 1) return repl('const r2 = llm_query("y".repeat(300)); print(r2.slice(0, 60))');
      return repl('FINAL([r1, r2.slice(0, 60)].join(" | "))');
    });
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, limits: { maxSubcallPromptBytesPerRun: 700 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    // 300 bytes to the child, 300 from the child's cell; the root's 300 more would pass 700.
    expect(result.success).toBe(true);
    expect(result.answer).toBe("ECHO CC | Error: prompt of 300 bytes refused: the run's cells already ");
    const refused = allSubcalls(result.trajectory).find((call) => call.error !== null);
    expect(refused?.error).toMatch(
      /the run's cells already passed 600 bytes .* maxSubcallPromptBytesPerRun allows 700 bytes per run; raise limits.maxSubcallPromptBytesPerRun/,
    );
  });

  it(`records a cell's first ${MAX_RECORDED_SUBCALLS_PER_CELL} sub-calls and counts the rest`, async () => {
    const logDir = await tempDir();
    const model = root([repl('FINAL(llm_query_batched(Array.from({ length: 1005 }, (_, i) => "p" + i)).length)')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, logDir });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('1005');
    const block = result.trajectory[0]?.blocks[0];
    expect(block?.subcalls).toHaveLength(MAX_RECORDED_SUBCALLS_PER_CELL);
    expect(block?.subcallsNotRecorded).toBe(5);
    const { iterations } = await readTrajectory(result.trajectoryFile ?? '');
    expect(iterations[0]?.code_blocks[0]?.result.rlm_calls_not_recorded).toBe(5);
  });
});

describe('the tree of sandboxes (maxSandboxes)', () => {
  /**
   * In-process REPLs that count how many are alive — made or being made, and not closed — at
   * every creation.
   */
  function counting(factory: InProcessReplFactory) {
    let creating = 0;
    const stats = { peak: 0, created: 0 };
    const live = () => factory.made.filter((made) => !made.isClosed).length + creating;
    const wrapped: ReplFactory = async (request: ReplRequest) => {
      creating += 1;
      stats.peak = Math.max(stats.peak, live());
      try {
        const repl = await factory(request);
        stats.created += 1;
        return repl;
      } finally {
        creating -= 1;
        stats.peak = Math.max(stats.peak, live());
      }
    };
    return { wrapped, stats };
  }

  /**
   * The root asks five children at once; each child (and grandchild) asks one level down with
   * `rlm_query` and answers `saw <what it got>`. A grandchild's own rlm_query, at maxDepth 2, is
   * a plain llm_query: `saw saw ECHO DEEPER: DEEPER: T1` comes from a real grandchild, and
   * `saw ECHO DEEPER: T1` from a grandchild answered as a plain llm_query.
   */
  function treeModel() {
    return new ScriptedBackend((request: CompletionRequest) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChildRequest(request)) {
        return turn === 0 ? repl('const inner = rlm_query("deeper: " + context.slice(0, 30)); print(inner)') : repl('FINAL("saw " + inner)');
      }
      return turn === 0 ? repl('const rs = rlm_query_batched(["t1", "t2", "t3", "t4", "t5"]); print(rs.join(" | "))') : repl('FINAL(rs.join(" | "))');
    });
  }

  it('finishes a batch of 5 children at depth 2 with maxSandboxes 2, never more than 2 REPLs alive, grandchildren answered as llm_query', async () => {
    const events: RunEvent[] = [];
    let count: ReturnType<typeof counting> | undefined;
    const rlm = rlmOf(
      {
        root: { backend: treeModel(), model: 'm' },
        sub: { backend: echoSub(), model: 's' },
        limits: { maxDepth: 2, maxSandboxes: 2 },
        onEvent: (e) => events.push(e),
      },
      (factory) => {
        count = counting(factory);
        return count.wrapped;
      },
    );
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.success).toBe(true);
    expect(result.answer).toBe(['T1', 'T2', 'T3', 'T4', 'T5'].map((t) => `saw ECHO DEEPER: ${t}`).join(' | '));
    expect(count?.stats).toEqual({ peak: 2, created: 6 });
    // Every child ran in a sandbox of its own; every grandchild became a plain llm_query, with a note.
    const children = result.trajectory[0]?.blocks[0]?.subcalls ?? [];
    expect(children.map((call) => call.child?.depth)).toEqual([1, 1, 1, 1, 1]);
    const grandchildren = children.map((call) => call.child?.turns[0]?.blocks[0]?.subcalls[0]);
    for (const grandchild of grandchildren) {
      expect(grandchild).toMatchObject({ kind: 'rlm_query', model: 's' });
      expect(grandchild?.child).toBeUndefined();
      expect(grandchild?.note).toMatch(
        /^rlm_query at depth 2 was answered as a plain llm_query: all 2 sandboxes of the run \(maxSandboxes\) were held by runs waiting/,
      );
    }
    const warnings = events.filter((e) => e.type === 'warning');
    expect(warnings).toHaveLength(5);
    expect(warnings.every((e) => e.type === 'warning' && e.code === 'sandbox_cap' && e.depth === 1)).toBe(true);
  });

  it('makes children wait for a sandbox rather than refuse one while a holder can still finish', async () => {
    let count: ReturnType<typeof counting> | undefined;
    const model = new ScriptedBackend((request: CompletionRequest) => {
      const turn = request.messages.filter((m) => m.role === 'assistant').length;
      if (isChildRequest(request)) return repl('FINAL("child " + context)');
      return turn === 0 ? repl('const rs = rlm_query_batched(["a", "b", "c", "d"]); print(rs.join(","))') : repl('FINAL(rs.join(","))');
    });
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, limits: { maxDepth: 1, maxSandboxes: 2 } }, (factory) => {
      count = counting(factory);
      return count.wrapped;
    });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('child a,child b,child c,child d');
    expect(count?.stats).toEqual({ peak: 2, created: 5 });
    expect((result.trajectory[0]?.blocks[0]?.subcalls ?? []).every((call) => call.child !== undefined && call.note === undefined)).toBe(true);
  });

  it('gives a grandchild a sandbox when one is free, never passing maxSandboxes', async () => {
    let count: ReturnType<typeof counting> | undefined;
    const rlm = rlmOf(
      { root: { backend: treeModel(), model: 'm' }, sub: { backend: echoSub(), model: 's' }, limits: { maxDepth: 2, maxSandboxes: 3 } },
      (factory) => {
        count = counting(factory);
        return count.wrapped;
      },
    );
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.success).toBe(true);
    expect(count?.stats.peak).toBeLessThanOrEqual(3);
    const answers = (result.answer ?? '').split(' | ');
    expect(answers).toHaveLength(5);
    for (const [index, answer] of answers.entries()) expect([`saw ECHO DEEPER: T${index + 1}`, `saw saw ECHO DEEPER: DEEPER: T${index + 1}`]).toContain(answer);
  });

  it('with maxSandboxes 1 answers every rlm_query as a plain llm_query', async () => {
    const model = root([repl('FINAL(rlm_query("solo"))')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' }, sub: { backend: echoSub(), model: 's' }, limits: { maxSandboxes: 1 } });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('ECHO SOLO');
    expect(repls?.made).toHaveLength(1);
  });

  it('refuses a maxSandboxes that is not a positive integer, naming the option', () => {
    expect(() => new RLM({ root: { backend: root([]), model: 'm' }, limits: { maxSandboxes: 0 } })).toThrow(
      /^limits\.maxSandboxes: must be a positive integer, got 0$/,
    );
  });
});

describe('a REPL whose state was lost', () => {
  /** A REPL that reports its state lost for a cell containing `LOSE_STATE`, as a sandbox replaced after a crash does. */
  class StateLosingRepl implements Repl {
    constructor(readonly inner: Repl) {}
    get language() {
      return this.inner.language;
    }
    get isClosed() {
      return this.inner.isClosed;
    }
    async execute(code: string, options?: Parameters<Repl['execute']>[1]): Promise<ExecuteResult> {
      const result = await this.inner.execute(code, options);
      return code.includes('LOSE_STATE') ? { ...result, stateLost: true } : result;
    }
    loadContext(...args: Parameters<Repl['loadContext']>) {
      return this.inner.loadContext(...args);
    }
    defineTools(...args: Parameters<Repl['defineTools']>) {
      return this.inner.defineTools(...args);
    }
    setSubcallHandler(handler: Parameters<Repl['setSubcallHandler']>[0]) {
      this.inner.setSubcallHandler(handler);
    }
    close() {
      return this.inner.close();
    }
    [Symbol.asyncDispose]() {
      return this.inner.close();
    }
  }

  it('tells the model in the next prompt that its variables are gone', async () => {
    const model = root([repl('// LOSE_STATE\nprint("x".repeat(50000))'), repl('FINAL("ok")')]);
    const rlm = rlmOf({ root: { backend: model, model: 'm' } }, (factory) => async (request) => new StateLosingRepl(await factory(request)));
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(result.answer).toBe('ok');
    // Said even when the block's output is cut to the output limit.
    expect(lastUserMessage(model.calls[1]!.request)).toMatch(/\[REPL restarted\] .*every variable you defined is gone/);
  });
});

describe('trajectory write failures', () => {
  it('reports a trajectory line it cannot write as a warning event, and the run still answers', async () => {
    const dir = await tempDir();
    const blocker = path.join(dir, 'not-a-directory');
    await writeFile(blocker, '');
    const events: RunEvent[] = [];
    const logged: string[] = [];
    const previous = setLogSink((line) => logged.push(line));
    cleanups.push(async () => {
      setLogSink(previous);
    });
    const rlm = rlmOf({ root: { backend: root([repl('FINAL(1)')]), model: 'm' }, logDir: blocker, onEvent: (e) => events.push(e) });
    const result = await rlm.completion({ context: '', query: 'q' });
    expect(logged).toHaveLength(2);
    expect(result.answer).toBe('1');
    const warnings = events.filter((e) => e.type === 'warning');
    expect(warnings.map((e) => e.type === 'warning' && e.code)).toEqual(['trajectory_write', 'trajectory_write']);
    expect(warnings.map((e) => e.type === 'warning' && e.message)).toEqual([
      expect.stringMatching(/^the metadata line could not be written/),
      expect.stringMatching(/^turn 1 could not be written/),
    ]);
    expect(await readFile(blocker, 'utf8')).toBe('');
  });
});
