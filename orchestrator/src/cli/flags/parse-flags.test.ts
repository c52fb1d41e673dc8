import { describe, expect, it } from 'vitest';
import { UsageError } from '../cli-io.js';
import { parseCommandFlags } from './parse-flags.js';

/** The usage error `parse` throws: its message and hint. */
function refusal(parse: () => unknown): { message: string; hint: string | undefined } {
  try {
    parse();
  } catch (error) {
    if (error instanceof UsageError) return { message: error.message, hint: error.hint };
    throw error;
  }
  throw new Error('expected a usage error');
}

describe('parseCommandFlags', () => {
  it('reads values, switches, repeatable flags, short names and positionals, `-` and what follows `--` included', () => {
    const { values, positionals } = parseCommandFlags(
      ['q', '--context-file', 'a.txt', '--context-file=b.txt', '--json', '-h', '--model', 'gpt-5', '-', '--', '--not-a-flag'],
      'run',
    );
    expect(values).toEqual({ 'context-file': ['a.txt', 'b.txt'], json: true, help: true, model: 'gpt-5' });
    expect(positionals).toEqual(['q', '-', '--not-a-flag']);
  });

  it('takes a negative number as a value, with a space or with =, so its range can be checked by the setting', () => {
    expect(parseCommandFlags(['--budget', '-1'], 'run').values.budget).toBe('-1');
    expect(parseCommandFlags(['--budget=-1'], 'run').values.budget).toBe('-1');
    expect(parseCommandFlags(['--max-depth', '-0.5', '--timeout', '-.5'], 'run').values).toEqual({ 'max-depth': '-0.5', timeout: '-.5' });
    expect(parseCommandFlags(['--port', '-80'], 'view').values.port).toBe('-80');
  });

  it('suggests the nearest flag of the command for an unknown one, and names the command and its help', () => {
    expect(refusal(() => parseCommandFlags(['q', '--budgte', '1'], 'run'))).toEqual({
      message: 'unknown option --budgte (did you mean --budget?)',
      hint: 'Run `rlm --help` for usage.',
    });
    expect(refusal(() => parseCommandFlags(['--jsn'], 'sandbox ls'))).toEqual({
      message: 'unknown option --jsn for rlm sandbox ls (did you mean --json?)',
      hint: 'Run `rlm sandbox ls --help` for usage.',
    });
    // Only the command's own flags are suggested: --model is the main command's, not demo's.
    expect(refusal(() => parseCommandFlags(['--modle', 'x'], 'demo')).message).toBe('unknown option --modle for rlm demo');
    // Another command's flag says whose it is.
    expect(refusal(() => parseCommandFlags(['--model', 'x'], 'demo')).message).toBe(
      'unknown option --model for rlm demo; it is an option of rlm, rlm eval, rlm eval rescore',
    );
    expect(refusal(() => parseCommandFlags(['--runtime', 'runsc'], 'sandbox exec')).message).toBe(
      'unknown option --runtime for rlm sandbox exec; it is an option of rlm, rlm demo, rlm eval, rlm sandbox check',
    );
    expect(refusal(() => parseCommandFlags(['--zzzzzz'], 'run')).message).toBe('unknown option --zzzzzz');
    expect(refusal(() => parseCommandFlags(['-x'], 'run')).message).toBe('unknown option -x');
  });

  it('says how to give a negative number as an argument rather than a flag', () => {
    expect(refusal(() => parseCommandFlags(['-1'], 'sandbox exec')).message).toBe(
      'unknown option -1 for rlm sandbox exec; to give -1 as an argument, put it after --: -- -1',
    );
  });

  it('refuses a flag without its value, naming what it takes', () => {
    expect(refusal(() => parseCommandFlags(['q', '--budget'], 'run')).message).toBe('--budget needs a value: --budget USD');
    expect(refusal(() => parseCommandFlags(['q', '--model', '--json'], 'run')).message).toBe(
      '--model needs a value, got the flag --json; for a value that starts with "-", write --model=--json',
    );
    // Written with =, a dash-led value is the value.
    expect(parseCommandFlags(['--query=-x'], 'run').values.query).toBe('-x');
  });

  it('refuses a switch given a value', () => {
    expect(refusal(() => parseCommandFlags(['--json=false'], 'doctor')).message).toBe('--json takes no value; write --json alone');
  });
});
