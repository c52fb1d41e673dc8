import { describe, expect, it } from 'vitest';
import { formatReplServerArgs, parseReplServerArgs } from './repl-server-args.js';

describe('the REPL server command line', () => {
  it('round-trips every option, and a path that starts with a dash', () => {
    const args = { url: 'ws+unix:///run/rlm/control.sock:/', tokenFile: '-odd/token', heapLimitMb: 716, maxLifetimeMs: 86_400_000 };
    expect(parseReplServerArgs(formatReplServerArgs(args))).toEqual({ ...args, contextDir: '/context', language: 'javascript' });
  });

  it('carries no token, only the file that holds it', () => {
    const argv = formatReplServerArgs({ url: 'ws+unix:///run/rlm/control.sock:/', tokenFile: '/run/rlm/token' });
    expect(argv).toEqual(['--url=ws+unix:///run/rlm/control.sock:/', '--token-file=/run/rlm/token']);
    expect(() => parseReplServerArgs(['--url=ws://x', '--token=a-token-of-sixteen'])).toThrow(/token/);
  });

  it('carries the language of the sandbox, javascript unless told', () => {
    const args = { url: 'ws+unix:///run/rlm/control.sock:/', tokenFile: '/run/rlm/token', language: 'python' as const };
    expect(parseReplServerArgs(formatReplServerArgs(args))).toEqual({ ...args, contextDir: '/context' });
    expect(() => parseReplServerArgs(['--url=ws://x', '--token-file=/t', '--language=ruby'])).toThrow('--language must be one of javascript, python, got ruby');
  });

  it('names a missing or malformed option', () => {
    expect(() => parseReplServerArgs(['--url=ws://x'])).toThrow('--token-file is required');
    expect(() => parseReplServerArgs(['--url=ws://x', '--token-file=/t', '--heap-limit-mb=lots'])).toThrow(
      /--heap-limit-mb must be a positive integer, got lots/,
    );
    for (const bad of ['0', '-5', '1.5', '1e3', '']) {
      expect(() => parseReplServerArgs(['--url=ws://x', '--token-file=/t', `--max-lifetime-ms=${bad}`])).toThrow(
        /--max-lifetime-ms must be a positive integer/,
      );
    }
  });
});
