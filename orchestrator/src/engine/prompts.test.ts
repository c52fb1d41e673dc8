import type { ExecuteResult } from '@rlm/shared';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { extractCodeBlocks } from './code-blocks.js';
import {
  DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS,
  NO_CODE_NUDGE,
  buildCompactedContinuation,
  buildCompactionRequest,
  buildFinalAnswerRequest,
  buildFirstUserMessage,
  buildSystemPrompt,
  buildTurnMessage,
  formatBlockOutput,
} from './prompts.js';
import { executeResult } from '../testing/execute-result.js';

const result = (overrides: Partial<ExecuteResult> = {}): ExecuteResult => executeResult({ durationMs: 3, ...overrides });

describe('buildSystemPrompt', () => {
  it('documents the JavaScript REPL API', () => {
    const prompt = buildSystemPrompt({ language: 'javascript', maxDepth: 1 });
    for (const name of [
      'context',
      'llm_query(prompt, { model })',
      'llm_query_batched(prompts, { model })',
      'rlm_query(prompt, { model })',
      'rlm_query_batched',
      'SHOW_VARS()',
      'print(',
      'console.log',
      'FINAL(value)',
      'FINAL_VAR("name")',
      "require('node:",
      'await',
    ]) {
      expect(prompt).toContain(name);
    }
    expect(prompt).toContain('synchronous');
    expect(prompt).toContain(`${(20_000).toLocaleString('en-US')} characters`);
  });

  it('gives examples as repl blocks of JavaScript, not Python', () => {
    const prompt = buildSystemPrompt({ language: 'javascript', maxDepth: 1 });
    const examples = extractCodeBlocks(prompt, 'javascript');
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const code of examples) {
      expect(code).not.toMatch(/^\s*(import |def |for .* in |print\(f")/m);
      // Each example is syntactically valid JavaScript (compiled, not run).
      expect(() => new Function(`return async () => {\n${code}\n}`)).not.toThrow();
    }
    expect(examples.some((code) => code.includes('llm_query_batched('))).toBe(true);
    expect(examples.some((code) => code.includes('rlm_query('))).toBe(true);
  });

  it('says rlm_query starts a child RLM only while the depth allows it', () => {
    const root = buildSystemPrompt({ language: 'javascript', maxDepth: 2 });
    expect(root).toContain('starts a **child RLM**');
    expect(root).toContain('up to 2 levels below you');
    const lastLevel = buildSystemPrompt({ language: 'javascript', maxDepth: 2, depth: 1 });
    expect(lastLevel).toContain('A child cannot start children of its own');
    const atMax = buildSystemPrompt({ language: 'javascript', maxDepth: 1, depth: 1 });
    expect(atMax).toContain('Here it is the same as `llm_query`');
    expect(atMax).not.toContain('starts a **child RLM**');
    expect(buildSystemPrompt({ language: 'javascript', maxDepth: 0 })).toContain('Here it is the same as `llm_query`');
  });

  it('lists custom tools only when there are some, and states the sub-model limit when known', () => {
    const plain = buildSystemPrompt({ language: 'javascript', maxDepth: 1 });
    expect(plain).not.toContain('Custom tools');
    expect(plain).not.toContain('characters per prompt');
    const withTools = buildSystemPrompt({
      language: 'javascript',
      maxDepth: 1,
      subModelContextChars: 500_000,
      tools: [
        { name: 'search_docs', description: 'search_docs(query) → array of {title, url}', kind: 'function' },
        { name: 'COUNTRIES', description: 'an array of country names', kind: 'data' },
        { name: 'misc', description: '' },
      ],
    });
    expect(withTools).toContain('Custom tools and data');
    expect(withTools).toContain('- `search_docs` (function): search_docs(query) → array of {title, url}');
    expect(withTools).toContain('- `COUNTRIES` (data): an array of country names');
    expect(withTools).toContain('- `misc`: no description given');
    expect(withTools).toContain('around 500,000 characters per prompt');
  });

  it('names the models cells may ask for, or says to leave model out', () => {
    expect(buildSystemPrompt({ language: 'javascript', maxDepth: 1 })).toContain('leave it out to use the default sub-model');
    expect(buildSystemPrompt({ language: 'javascript', maxDepth: 1, models: ['fast', 'smart'] })).toContain('the models you may name are `fast`, `smart`');
  });

  it('documents the Python REPL API with keyword options, close to the reference prompt', () => {
    const prompt = buildSystemPrompt({ language: 'python', maxDepth: 1 });
    for (const name of [
      'context',
      'llm_query(prompt, model=None)',
      'llm_query_batched(prompts, model=None)',
      'rlm_query(prompt, model=None)',
      'rlm_query_batched(prompts, model=None)',
      'SHOW_VARS()',
      'print()',
      'FINAL(value)',
      'FINAL_VAR("name")',
      'List[str]',
      '`re`, `json`, `math`, `collections` and `itertools` are already imported',
    ]) {
      expect(prompt).toContain(name);
    }
    expect(prompt).toContain('Python REPL environment');
    expect(prompt).not.toMatch(/\{ model \}|console\.|require\(|JavaScript/);
    expect(buildSystemPrompt({ language: 'python', maxDepth: 0 })).toContain('A `rlm_query(prompt, model=None)` function. Here it is the same as `llm_query`');
  });

  it('gives examples as repl blocks of Python, which extractCodeBlocks runs for python', () => {
    const examples = extractCodeBlocks(buildSystemPrompt({ language: 'python', maxDepth: 1 }), 'python');
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const code of examples) {
      expect(code).not.toMatch(/\b(const|let) |=>|;\s*$/m);
      expect(code).toMatch(/^[\w\s]/);
    }
    expect(examples.some((code) => code.includes('llm_query_batched('))).toBe(true);
    expect(examples.some((code) => code.includes('rlm_query('))).toBe(true);
  });

  it('refuses an unknown language, naming the option', () => {
    expect(() => buildSystemPrompt({ language: 'ruby' as never, maxDepth: 1 })).toThrow(InvalidOptionError);
    expect(() => buildSystemPrompt({ language: 'ruby' as never, maxDepth: 1 })).toThrow(/^language: /);
  });
});

describe('buildFirstUserMessage', () => {
  const base = {
    query: 'Who wrote it?',
    contextDescription: 'Your context is a string with 12 total characters.',
    contextVariables: ['context'],
    historyCount: 0,
  };

  it('carries the query and the description, says it is turn 1 and to look first', () => {
    const message = buildFirstUserMessage(base);
    expect(message).toContain('Your context is a string with 12 total characters.');
    expect(message).toContain('original query: "Who wrote it?"');
    expect(message).toContain('Turn 1.');
    expect(message).toContain("don't just provide a final answer yet");
    expect(message).not.toContain('history_0');
  });

  it('names several contexts and earlier conversations', () => {
    const message = buildFirstUserMessage({ ...base, contextVariables: ['context', 'context_1', 'context_2'], historyCount: 2 });
    expect(message).toContain('`context`, `context_1`, `context_2`');
    expect(message).toContain('`history_0` through `history_1`');
    expect(buildFirstUserMessage({ ...base, historyCount: 1 })).toContain('variable `history_0`');
  });
});

describe('buildTurnMessage', () => {
  it('numbers the turn, gives each block’s output in order and repeats the query', () => {
    const message = buildTurnMessage({
      turn: 3,
      maxTurns: 30,
      query: 'Q?',
      outputs: [{ result: result({ stdout: { text: 'first\n', truncatedChars: 0 } }) }, { result: result({ value: '42' }) }],
    });
    expect(message).toMatch(/^REPL output of block 1 of 2:\nfirst\n\nREPL output of block 2 of 2:\n→ 42\n\nTurn 3 of 30\. /);
    expect(message).toContain('original query: "Q?"');
  });

  it('sends the nudge when the last response ran no code', () => {
    const message = buildTurnMessage({ turn: 2, query: 'Q?', outputs: [] });
    expect(message.startsWith(NO_CODE_NUDGE)).toBe(true);
    expect(message).toContain('Turn 2.');
  });

  it('adds a note after the outputs, and sends it instead of the nudge when nothing ran', () => {
    const withOutput = buildTurnMessage({ turn: 2, query: 'Q', outputs: [{ result: result({ value: '1' }) }], note: 'FINAL_VAR: no variable named "x".' });
    expect(withOutput).toMatch(/→ 1\n\nFINAL_VAR: no variable named "x"\.\n\nTurn 2\./);
    const noteOnly = buildTurnMessage({ turn: 2, query: 'Q', outputs: [], note: 'FINAL_VAR: no variable named "x".' });
    expect(noteOnly.startsWith('FINAL_VAR: no variable')).toBe(true);
    expect(noteOnly).not.toContain(NO_CODE_NUDGE);
  });

  it('cuts each block’s output to the limit', () => {
    const long = result({ stdout: { text: 'x'.repeat(500), truncatedChars: 0 } });
    const message = buildTurnMessage({ turn: 2, query: 'Q', outputs: [{ result: long }, { result: long }], outputLimitChars: 100 });
    expect(message.match(/400 characters cut here/g)).toHaveLength(2);
  });
});

describe('formatBlockOutput', () => {
  it('shows stdout, the value, stderr and the error with its stack', () => {
    const text = formatBlockOutput(
      result({
        status: 'error',
        stdout: { text: 'hello\n', truncatedChars: 0 },
        value: "'v'",
        stderr: { text: 'careful\n', truncatedChars: 0 },
        error: { type: 'TypeError', message: 'x is not a function', stack: ['at f (cell 3, line 2:7)', 'at cell 3, line 4:1'] },
      }),
    );
    expect(text).toBe("hello\n→ 'v'\n[stderr]\ncareful\n[error] TypeError: x is not a function\n    at f (cell 3, line 2:7)\n    at cell 3, line 4:1");
  });

  it('says when there was no output', () => {
    expect(formatBlockOutput(result())).toBe('(no output)');
  });

  it('explains a timeout and a restarted REPL', () => {
    const timedOut = formatBlockOutput(
      result({ status: 'timeout', error: { type: 'TimeoutError', message: 'The cell ran past its time limit of 30 s and was stopped.', stack: [] } }),
    );
    expect(timedOut).toBe('[error] TimeoutError: The cell ran past its time limit of 30 s and was stopped.');
    expect(formatBlockOutput(result({ status: 'timeout' }))).toContain('[timeout] The cell ran past its time limit');
    expect(formatBlockOutput(result({ stateLost: true }))).toContain('every variable you defined is gone');
  });

  it('keeps the beginning and the end of a long output and says how much was cut', () => {
    const stdout = `${'a'.repeat(10_000)}${'b'.repeat(10_000)}`;
    const text = formatBlockOutput(
      result({ status: 'error', stdout: { text: stdout, truncatedChars: 0 }, error: { type: 'Error', message: 'boom', stack: [] } }),
      1_000,
    );
    const cut = 20_000 + '\n[error] Error: boom'.length - 1_000;
    expect(text).toContain(`… [${cut.toLocaleString('en-US')} characters cut here] …`);
    expect(text.startsWith('a'.repeat(750))).toBe(true);
    expect(text.endsWith('[error] Error: boom')).toBe(true);
    expect(text.replace(/\n… \[.*\] …\n/, '')).toHaveLength(1_000);
  });

  it('never splits a surrogate pair at a cut', () => {
    const text = formatBlockOutput(result({ stdout: { text: '😀'.repeat(1_000), truncatedChars: 0 } }), 101);
    expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
  });

  it('defaults to 20,000 characters per block', () => {
    expect(DEFAULT_BLOCK_OUTPUT_LIMIT_CHARS).toBe(20_000);
    expect(formatBlockOutput(result({ stdout: { text: 'z'.repeat(20_000), truncatedChars: 0 } }))).toHaveLength(20_000);
  });
});

describe('compaction prompts', () => {
  it('ask for a summary without code, then continue the turn with history in the REPL', () => {
    const request = buildCompactionRequest();
    expect(request).toContain('Do not write any code');
    expect(request).toContain('`history`');
    const continuation = buildCompactedContinuation({ turn: 7, query: 'Q?' });
    expect(continuation).toContain('This is turn 7.');
    expect(continuation).toContain('`history`');
    expect(continuation).toContain('original query: "Q?"');
  });
});

describe('buildFinalAnswerRequest', () => {
  it('asks for the best answer now as FINAL(...) in plain text', () => {
    const text = buildFinalAnswerRequest({ query: 'Q?' });
    expect(text).toContain('FINAL(your answer)');
    expect(text).toContain('not in a code block');
    expect(text).toContain('"Q?"');
    expect(buildFinalAnswerRequest()).toContain('the original query.');
  });
});
