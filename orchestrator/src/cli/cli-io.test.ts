import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { RunLimitError } from '../engine/run-budget.js';
import {
  AbortedError,
  DockerUnavailableError,
  InvalidOptionError,
  RlmError,
  SandboxClosedError,
  SandboxError,
  SandboxImageError,
  SandboxUnresponsiveError,
} from '../errors.js';
import { ModelCallError, type ModelCallErrorKind } from '../models/model-backend.js';
import { PortInUseError } from '../viewer/viewer-server.js';
import { type CliIo, ExitCode, UsageError, exitCodeFor } from './cli-io.js';
import { ConfigError } from './config/load-config.js';
import { runCli } from './run-cli.js';

const modelError = (kind: ModelCallErrorKind) => new ModelCallError(`openai gpt-5: ${kind}`, 'openai', 'gpt-5', {}, { kind });

describe('exitCodeFor', () => {
  it('gives 2 to bad usage, flags, config and options', () => {
    expect(exitCodeFor(new UsageError('--bogus: unknown flag'))).toBe(2);
    expect(exitCodeFor(new ConfigError('rlm.config.yaml: root.modle: unknown key'))).toBe(2);
    expect(exitCodeFor(new InvalidOptionError('limits.maxDepth', 'must be ≥ 0'))).toBe(2);
  });

  it('gives 3 to a provider that refuses every call, and 1 to a model failure another call could get past', () => {
    for (const kind of ['auth', 'permission', 'model_not_found', 'unreachable'] as const)
      expect({ kind, code: exitCodeFor(modelError(kind)) }).toEqual({ kind, code: 3 });
    for (const kind of ['rate_limited', 'timeout', 'invalid_request', 'provider_error'] as const)
      expect({ kind, code: exitCodeFor(modelError(kind)) }).toEqual({ kind, code: 1 });
  });

  it('gives 4 to Docker, the image and every sandbox failure, out of memory included', () => {
    expect(exitCodeFor(new DockerUnavailableError('Docker is not running', 'unix:///var/run/docker.sock'))).toBe(4);
    expect(exitCodeFor(new SandboxImageError('the build failed', 'Step 3/9'))).toBe(4);
    expect(exitCodeFor(new SandboxError('killed at its memory limit of 1024 MiB', 'sbx-1', { kind: 'out_of_memory' }))).toBe(4);
    expect(exitCodeFor(new SandboxClosedError('closed', 'sbx-1'))).toBe(4);
    expect(exitCodeFor(new SandboxUnresponsiveError('stopped answering', 'sbx-1', 'liveness', 'execute'))).toBe(4);
  });

  it('gives 1 to a limit, any other rlm error, an unknown error and a run that ended with no error at all', () => {
    expect(exitCodeFor(new RunLimitError('consecutive_failures', '5 turns in a row failed'))).toBe(5);
    expect(exitCodeFor(new RunLimitError('cost', 'over budget', 'partial'))).toBe(5);
    expect(exitCodeFor(new RlmError('the run ended without an answer'))).toBe(1);
    expect(exitCodeFor(new PortInUseError(8080))).toBe(1);
    expect(exitCodeFor(new Error('a bug'))).toBe(1);
    expect(exitCodeFor('thrown string')).toBe(1);
    expect(exitCodeFor(null)).toBe(1);
  });

  it('gives 130 to a cancelled operation', () => {
    expect(exitCodeFor(new AbortedError('the run was cancelled'))).toBe(130);
  });

  it('uses only the agreed codes', () => {
    expect(ExitCode).toEqual({ ok: 0, failure: 1, usage: 2, providerRefused: 3, sandbox: 4, limitReached: 5, interrupted: 130, terminated: 143 });
  });
});

function captureIo(env: NodeJS.ProcessEnv): { io: CliIo; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { io: { stdout: (t) => stdout.push(t), stderr: (t) => stderr.push(t), env, signal: new AbortController().signal }, stdout, stderr };
}

describe('runCli', () => {
  it('exits 4 with one line when the Docker engine is unreachable', async () => {
    const { io, stderr } = captureIo({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    expect(await runCli(['sandbox', 'ls'], io)).toBe(ExitCode.sandbox);
    expect(stderr.join('').trim().split('\n')).toHaveLength(1);
    expect(stderr.join('')).toMatch(/^rlm: .*nonexistent\/docker\.sock/);
  });

  it("exits 2 with the command's help hint on a bad flag", async () => {
    const { io, stderr } = captureIo({});
    expect(await runCli(['sandbox', 'ls', '--bogus'], io)).toBe(ExitCode.usage);
    expect(stderr.join('')).toBe('rlm: unknown option --bogus for rlm sandbox ls\nRun `rlm sandbox ls --help` for usage.\n');
  });

  it('prints the usage on stderr and exits 2 when given nothing; --help prints it on stdout and exits 0', async () => {
    const none = captureIo({});
    expect(await runCli([], none.io)).toBe(ExitCode.usage);
    expect(none.stdout).toEqual([]);
    expect(none.stderr.join('')).toMatch(/^Usage: rlm \[query\] \[options\]\n/);
    const help = captureIo({});
    expect(await runCli(['--help'], help.io)).toBe(ExitCode.ok);
    expect(help.stderr).toEqual([]);
    expect(help.stdout.join('')).toBe(none.stderr.join(''));
  });

  it('suggests the command a one-word first argument is a typo of, and how to ask it as a query', async () => {
    const { io, stdout, stderr } = captureIo({});
    expect(await runCli(['sandbx', 'ls'], io)).toBe(ExitCode.usage);
    expect(stdout).toEqual([]);
    expect(stderr.join('')).toBe(
      'rlm: unknown command "sandbx" (did you mean "rlm sandbox"?)\nTo ask "sandbx" as the question, write: rlm --query sandbx …; `rlm --help` lists the commands.\n',
    );
  });

  it('takes a first argument that is far from every command, or more than a word, as the query', async () => {
    for (const query of ['q', 'documents', 'sandbox please', 'Which view?']) {
      const { io, stderr } = captureIo({});
      // No context: the main command's own usage error, which proves it got the query.
      expect(await runCli([query], { ...io, cwd: os.tmpdir() })).toBe(ExitCode.usage);
      expect(stderr.join(''), query).toMatch(/^rlm: no context/);
    }
  });

  it("answers `rlm help COMMAND` with that command's page, a sandbox command's included", async () => {
    const { io, stdout } = captureIo({});
    expect(await runCli(['help', 'sandbox', 'exec'], io)).toBe(ExitCode.ok);
    expect(stdout.join('')).toMatch(/^Usage: rlm sandbox exec /);
    const typo = captureIo({});
    expect(await runCli(['help', 'doctr'], typo.io)).toBe(ExitCode.usage);
    expect(typo.stderr.join('')).toMatch(/^rlm: no help on "doctr" \(did you mean "rlm help doctor"\?\)/);
  });
});
