import { describe, expect, it } from 'vitest';
import { formatReplServerArgs, parseReplServerArgs } from './repl-server-args.js';

describe('the REPL server command line', () => {
  it('round-trips a token that starts with a dash (base64url tokens can)', () => {
    const args = { url: 'ws+unix:///run/rlm/control.sock:/', token: '-k3J_x-9aZ', heapLimitMb: 716 };
    expect(parseReplServerArgs(formatReplServerArgs(args))).toEqual({ ...args, contextDir: '/context', language: 'javascript' });
  });

  it('carries the language of the sandbox, javascript unless told', () => {
    const args = { url: 'ws+unix:///run/rlm/control.sock:/', token: 'a-token-of-sixteen', language: 'python' as const };
    expect(parseReplServerArgs(formatReplServerArgs(args))).toEqual({ ...args, contextDir: '/context' });
    expect(() => parseReplServerArgs(['--url=ws://x', '--token=t', '--language=ruby'])).toThrow('--language must be one of javascript, python, got ruby');
  });

  it('names a missing or malformed option', () => {
    expect(() => parseReplServerArgs(['--url=ws://x'])).toThrow('--token is required');
    expect(() => parseReplServerArgs(['--url=ws://x', '--token=t', '--heap-limit-mb=lots'])).toThrow(/--heap-limit-mb must be a positive integer, got lots/);
  });
});
