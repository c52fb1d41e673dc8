/**
 * `RlmOptions.subcalls: false` (the RLM paper's "no sub-calls" ablation): the REPL's sub-calls are
 * refused without calling any model, and the system prompt says nothing of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ScriptedBackend } from '../models/scripted-backend.js';
import { inProcessRepls, type InProcessReplFactory } from '../testing/in-process-repl.js';
import { lastUserMessage, replResponse } from '../testing/scripted-models.js';
import { buildSystemPrompt } from './prompts.js';
import { RLM, useReplFactory } from './rlm.js';

let repls: InProcessReplFactory | undefined;

afterEach(async () => {
  await Promise.all((repls?.made ?? []).map((repl) => repl.close()));
});

const SUBCALL_WORDS = /llm_query|rlm_query|sub-LLM|sub-model|sub-call/i;

describe('a run without sub-calls', () => {
  it('answers a cell’s llm_query and rlm_query with a clear refusal and calls no other model', async () => {
    const root = new ScriptedBackend([
      replResponse(
        [
          'let outcome = [];',
          'for (const call of [() => llm_query("hi"), () => rlm_query("hi"), () => llm_query_batched(["a", "b"])]) {',
          '  try { outcome.push(String(call())); } catch (error) { outcome.push("threw: " + error.message); }',
          '}',
          'print(outcome.join("\\n"))',
        ].join('\n'),
      ),
      replResponse('FINAL("done")'),
    ]);
    const sub = new ScriptedBackend(['never asked']);
    repls = inProcessRepls();
    const rlm = useReplFactory(new RLM({ root: { backend: root, model: 'm' }, sub: { backend: sub, model: 's' }, subcalls: false }), repls);

    const result = await rlm.completion({ context: 'text', query: 'q' });

    expect(result.answer).toBe('done');
    const output = result.trajectory[0]?.blocks[0]?.result.stdout.text ?? '';
    expect(output).toMatch(/llm_query is not available in this run: sub-calls are turned off \(subcalls: false\)/);
    expect(output).toMatch(/rlm_query is not available in this run/);
    expect(sub.calls).toHaveLength(0);
    expect(root.calls).toHaveLength(2);
    // The root model was never told about sub-calls, in the system prompt nor in the turn's message.
    expect(root.calls[0]?.request.system ?? '').not.toMatch(SUBCALL_WORDS);
    expect(lastUserMessage(root.calls[1]!.request)).toContain('Continue using the REPL environment, which holds the context, by writing ```repl blocks');
  });

  it('has a system prompt that mentions no sub-call function, in either language, tools included', () => {
    for (const language of ['javascript', 'python'] as const) {
      const prompt = buildSystemPrompt({
        language,
        maxDepth: 1,
        subcalls: false,
        models: ['fast'],
        subModelContextChars: 100_000,
        tools: [{ name: 'lookup', description: 'finds a word', kind: 'function' }],
      });
      expect(prompt).not.toMatch(SUBCALL_WORDS);
      expect(prompt).toContain('FINAL_VAR');
      expect(prompt).toContain('SHOW_VARS()');
      expect(prompt).toContain('4. Custom tools');
      expect(prompt).toContain('`lookup` (function)');
    }
  });

  it('leaves the prompt with sub-calls as it was', () => {
    const prompt = buildSystemPrompt({ language: 'javascript', maxDepth: 1 });
    expect(prompt).toBe(buildSystemPrompt({ language: 'javascript', maxDepth: 1, subcalls: true }));
    expect(prompt).toContain('llm_query');
    expect(prompt).toContain('hand pieces to `llm_query` and keep the answers in variables.');
  });
});
