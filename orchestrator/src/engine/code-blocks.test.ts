import { describe, expect, it } from 'vitest';
import { extractCodeBlocks, findFinalInText, proseOutsideCode } from './code-blocks.js';

const fence = '```';

describe('extractCodeBlocks', () => {
  it('takes repl blocks and the language’s own fences, in order of appearance', () => {
    const text = [
      'First I look.',
      `${fence}repl`,
      'print(context.length)',
      fence,
      'Then:',
      `${fence}js`,
      'const a = 1;',
      fence,
      `${fence}javascript`,
      'print(a)',
      fence,
    ].join('\n');
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['print(context.length)', 'const a = 1;', 'print(a)']);
  });

  it('runs python and py fences for Python, and not js ones', () => {
    const text = `${fence}python\nx = 1\n${fence}\n${fence}py\nprint(x)\n${fence}\n${fence}js\nnope()\n${fence}\n${fence}repl\ny = 2\n${fence}`;
    expect(extractCodeBlocks(text, 'python')).toEqual(['x = 1', 'print(x)', 'y = 2']);
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['nope()', 'y = 2']);
  });

  it('ignores other languages, including a repl fence written inside one', () => {
    const text = [
      `${fence}bash`,
      'rm -rf /',
      fence,
      '````markdown',
      'Example of a cell:',
      `${fence}repl`,
      'print("inside an example")',
      fence,
      '````',
      `${fence}`,
      'no language',
      fence,
      `${fence}repl`,
      'print("real")',
      fence,
    ].join('\n');
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['print("real")']);
  });

  it('tolerates CRLF line breaks, trailing blanks and extra words after the language', () => {
    const text = `${fence}repl   \r\nconst x = 1;  \r\nprint(x)\r\n${fence}  \r\n${fence}REPL title="two"\r\nprint(2)\r\n${fence}`;
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['const x = 1;\nprint(x)', 'print(2)']);
  });

  it('takes an unterminated last block to the end of the text', () => {
    const text = `${fence}repl\nprint(1)\n${fence}\n${fence}repl\nconst y = 2;\nprint(y)\n`;
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['print(1)', 'const y = 2;\nprint(y)']);
  });

  it('ends a runnable block left open when the next runnable fence starts', () => {
    const text = `${fence}repl\nconst a = 1;\n${fence}repl\nprint(a)\n${fence}\n${fence}text\n${fence}repl\n${fence}`;
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['const a = 1;', 'print(a)']);
  });

  it('removes a list item’s fence indentation and keeps the code’s own', () => {
    const text = `1. Look:\n   ${fence}repl\n   for (const x of [1]) {\n     print(x);\n   }\n   ${fence}\n`;
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['for (const x of [1]) {\n  print(x);\n}']);
  });

  it('needs a closing fence at least as long as the opening one, of the same character', () => {
    const text = `~~~~repl\nconst s = \`\n${fence}\n\`;\n~~~\nprint(s)\n~~~~\n`;
    expect(extractCodeBlocks(text, 'javascript')).toEqual(['const s = `\n```\n`;\n~~~\nprint(s)']);
  });

  it('leaves out empty blocks and returns nothing for text without fences', () => {
    expect(extractCodeBlocks(`${fence}repl\n\n   \n${fence}`, 'javascript')).toEqual([]);
    expect(extractCodeBlocks('I will answer now. ```repl``` is how I run code.', 'javascript')).toEqual([]);
    expect(extractCodeBlocks('', 'python')).toEqual([]);
  });
});

describe('findFinalInText', () => {
  it('finds FINAL(value) at the start of a line', () => {
    expect(findFinalInText('I have it.\nFINAL(42)')).toEqual({ kind: 'FINAL', value: '42' });
    expect(findFinalInText('  FINAL( The answer is Paris. )\nThanks')).toEqual({ kind: 'FINAL', value: 'The answer is Paris.' });
  });

  it('honours balanced parentheses and values spanning lines', () => {
    expect(findFinalInText('FINAL(f(x) = (a + b) * c)')).toEqual({ kind: 'FINAL', value: 'f(x) = (a + b) * c' });
    expect(findFinalInText('Done.\nFINAL(\n- first (1)\n- second\n)\ntrailing')).toEqual({
      kind: 'FINAL',
      value: '- first (1)\n- second',
    });
  });

  it('strips the quotes of a single quoted string, reading JSON escapes in a double-quoted one', () => {
    expect(findFinalInText('FINAL("Paris")')).toEqual({ kind: 'FINAL', value: 'Paris' });
    expect(findFinalInText("FINAL('Paris')")).toEqual({ kind: 'FINAL', value: 'Paris' });
    expect(findFinalInText('FINAL("line 1\\nline 2")')).toEqual({ kind: 'FINAL', value: 'line 1\nline 2' });
    expect(findFinalInText('FINAL("a" + "b")')).toEqual({ kind: 'FINAL', value: '"a" + "b"' });
    expect(findFinalInText("FINAL(It's John's)")).toEqual({ kind: 'FINAL', value: "It's John's" });
  });

  it('finds FINAL_VAR(name) and strips quotes around the name', () => {
    expect(findFinalInText('FINAL_VAR(answer)')).toEqual({ kind: 'FINAL_VAR', name: 'answer' });
    expect(findFinalInText('FINAL_VAR("answer")')).toEqual({ kind: 'FINAL_VAR', name: 'answer' });
    expect(findFinalInText("FINAL_VAR( 'result' )\r\n")).toEqual({ kind: 'FINAL_VAR', name: 'result' });
  });

  it('ignores FINAL inside code fences, mid-line, or without parentheses', () => {
    const inFence = `${fence}repl\nFINAL(x)\n${fence}\n${fence}text\nFINAL_VAR(y)\n${fence}`;
    expect(findFinalInText(inFence)).toBeNull();
    expect(findFinalInText('When done I will call FINAL(answer).')).toBeNull();
    expect(findFinalInText('FINAL answer: 42')).toBeNull();
    expect(findFinalInText('FINALLY(42)')).toBeNull();
    expect(findFinalInText(`${fence}repl\nFINAL(x)`)).toBeNull();
  });

  it('ignores an opening without a balancing parenthesis and an empty name', () => {
    expect(findFinalInText('FINAL(the model was cut off')).toBeNull();
    expect(findFinalInText('FINAL_VAR()\nFINAL_VAR("")')).toBeNull();
  });

  it('takes the first final in the text and one written after a code block', () => {
    expect(findFinalInText('FINAL_VAR(a)\nFINAL(b)')).toEqual({ kind: 'FINAL_VAR', name: 'a' });
    expect(findFinalInText(`${fence}repl\nx = 1\n${fence}\nFINAL(b)`)).toEqual({ kind: 'FINAL', value: 'b' });
  });
});

describe('proseOutsideCode', () => {
  it('keeps the words around the blocks, of every language, and drops the code', () => {
    const text = 'I will count the lines.\n```repl\nprint(context.length)\n```\nThen summarise.\n\n```json\n{"a": 1}\n```\n';
    expect(proseOutsideCode(text)).toBe('I will count the lines.\n\nThen summarise.');
  });

  it('is empty for a response that is only code, including a block left open', () => {
    expect(proseOutsideCode('```repl\nprint(1)\n```')).toBe('');
    expect(proseOutsideCode('```python\nprint(1)\n')).toBe('');
  });
});
