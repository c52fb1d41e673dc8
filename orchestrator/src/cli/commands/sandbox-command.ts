/**
 * `rlm sandbox build|ls|prune|check|exec`: managing and exercising sandboxes by hand. The sandbox
 * modules (dockerode and the protocol's schemas with them) are imported by the command that uses
 * them, so that `rlm sandbox --help` and a usage error start at once.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import { closest } from '../../did-you-mean.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { type CommandName, findCommand, subcommandsOf } from '../flags/cli-flags.js';
import { helpText } from '../flags/help-text.js';
import { gotValue, helpHint, parseCommandFlags } from '../flags/parse-flags.js';

/** `rlm sandbox …`: a subcommand's flags are parsed, and its `--help` answered, before anything heavy loads. */
export async function sandboxCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) {
    // Nothing asked: a usage error, so the usage goes to stderr.
    io.stderr(helpText('sandbox'));
    return ExitCode.usage;
  }
  if (sub === 'help') {
    io.stdout(helpText(rest.length === 0 ? 'sandbox' : subcommand(rest.join(' '))));
    return ExitCode.ok;
  }
  if (sub.startsWith('-')) {
    // `rlm sandbox --help`, or a flag where the subcommand belongs.
    if (parseCommandFlags(argv, 'sandbox').values.help) {
      io.stdout(helpText('sandbox'));
      return ExitCode.ok;
    }
    throw new UsageError(`rlm sandbox needs a command first: ${commandList()}`, { hint: helpHint('sandbox') });
  }
  const command = subcommand(sub);
  if (parseCommandFlags(rest, command).values.help) {
    io.stdout(helpText(command));
    return ExitCode.ok;
  }
  switch (command) {
    case 'sandbox build':
      return build(rest, io);
    case 'sandbox ls':
      return list(rest, io);
    case 'sandbox prune':
      return prune(rest, io);
    case 'sandbox check':
      return check(rest, io);
    case 'sandbox exec':
      return exec(rest, io);
    default:
      throw new Error(`rlm sandbox: ${command} has no implementation`);
  }
}

/** The sandbox subcommand named `word` (an alias's included), or a usage error naming the nearest. */
function subcommand(word: string): CommandName {
  const found = findCommand(`sandbox ${word}`);
  if (found !== undefined && found !== 'sandbox') return found;
  const near = closest(word, subcommandNames());
  throw new UsageError(`unknown sandbox command "${word}"${near ? ` (did you mean "rlm sandbox ${near}"?)` : ''}; expected ${commandList()}`, {
    hint: helpHint('sandbox'),
  });
}

/** `build`, `ls`…: the sandbox commands as typed after `rlm sandbox`. */
function subcommandNames(): string[] {
  return subcommandsOf('sandbox').map((name) => name.slice('sandbox '.length));
}

function commandList(): string {
  const names = subcommandNames();
  return `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

async function connect(io: CliIo) {
  const { createDockerClient, pingDocker } = await import('../../sandbox/docker-client.js');
  const docker = createDockerClient({ env: io.env });
  await pingDocker(docker, { signal: io.signal });
  return docker;
}

async function build(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'sandbox build');
  const docker = await connect(io);
  const { buildSandboxImage } = await import('../../sandbox/image/ensure-sandbox-image.js');
  io.stderr('building the sandbox image…\n');
  const result = await buildSandboxImage({
    docker,
    signal: io.signal,
    ...(values['base-image'] ? { baseImage: values['base-image'] } : {}),
    ...(values.node ? { nodeBinary: values.node } : {}),
  });
  io.stdout(`${result.tag} (built in ${(result.durationMs / 1000).toFixed(1)} s)\n`);
  return ExitCode.ok;
}

async function list(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'sandbox ls');
  const docker = await connect(io);
  const { listSandboxes } = await import('../../sandbox/reaper.js');
  const sandboxes = await listSandboxes({ docker, signal: io.signal });
  if (values.json) {
    io.stdout(`${JSON.stringify(sandboxes)}\n`);
  } else if (sandboxes.length === 0) {
    io.stdout('no rlm sandboxes\n');
  } else {
    for (const s of sandboxes)
      io.stdout(`${s.id.slice(0, 12)}  ${s.state.padEnd(8)}  ${s.ownerAlive ? 'owner alive' : 'orphaned   '}  ${s.owner}  ${s.name}\n`);
  }
  return ExitCode.ok;
}

async function prune(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'sandbox prune');
  const docker = await connect(io);
  const { pruneSandboxes } = await import('../../sandbox/reaper.js');
  const result = await pruneSandboxes({ docker, all: values.all ?? false, signal: io.signal });
  io.stdout(`removed ${result.removed.length} sandbox container${result.removed.length === 1 ? '' : 's'}\n`);
  for (const failure of result.failed) io.stderr(`could not remove ${failure.id.slice(0, 12)}: ${failure.error}\n`);
  let failed = result.failed.length;
  if (values.images) {
    const [{ sandboxImageTag }, { pruneSandboxImages }] = await Promise.all([
      import('../../sandbox/image/ensure-sandbox-image.js'),
      import('../../sandbox/image/prune-sandbox-images.js'),
    ]);
    const current = await sandboxImageTag({});
    const images = await pruneSandboxImages({ docker, keep: [current], signal: io.signal });
    io.stdout(
      `removed ${images.removed.length} stale sandbox image${images.removed.length === 1 ? '' : 's'}${images.removed.length ? `: ${images.removed.join(', ')}` : ''} (kept ${current})\n`,
    );
    if (images.inUse.length) io.stdout(`left ${images.inUse.join(', ')}: still used by a container\n`);
    for (const failure of images.failed) io.stderr(`could not remove ${failure.image}: ${failure.error}\n`);
    failed += images.failed.length;
  }
  return failed === 0 ? ExitCode.ok : ExitCode.failure;
}

async function check(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandFlags(argv, 'sandbox check');
  const docker = await connect(io);
  const [{ Sandbox }, { checkIsolation }] = await Promise.all([import('../../sandbox/sandbox.js'), import('../../sandbox/isolation-check.js')]);
  // A listener on the host's loopback that the sandbox must not be able to reach.
  const decoy = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => decoy.listen(0, '127.0.0.1', resolve));
  const port = (decoy.address() as { port: number }).port;
  try {
    const started = performance.now();
    await using sandbox = await Sandbox.create({ docker, signal: io.signal, ...(values.runtime ? { runtime: values.runtime } : {}) });
    const startMs = performance.now() - started;
    const findings = await checkIsolation(sandbox, docker, port, { signal: io.signal });
    const failed = findings.filter((f) => !f.ok);
    if (values.json) {
      io.stdout(`${JSON.stringify({ ok: failed.length === 0, startMs: Math.round(startMs), findings })}\n`);
    } else {
      io.stdout(`sandbox ${sandbox.id} started in ${Math.round(startMs)} ms\n`);
      for (const f of findings) io.stdout(`${f.ok ? 'ok  ' : 'FAIL'}  ${f.name.padEnd(40)} ${f.detail}\n`);
      io.stdout(failed.length === 0 ? 'all isolation checks passed\n' : `${failed.length} check(s) failed\n`);
    }
    return failed.length === 0 ? ExitCode.ok : ExitCode.failure;
  } finally {
    decoy.close();
  }
}

async function exec(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandFlags(argv, 'sandbox exec');
  const hint = helpHint('sandbox exec');
  if (positionals.length > 1) throw new UsageError('give the code as one argument (quote it) or with --file', { hint });
  const code = values.file ? await readUserFile(values.file, '--file') : positionals[0];
  if (code === undefined) throw new UsageError('no code: pass it as an argument or with --file', { hint });
  const timeoutSeconds = values.timeout === undefined ? 60 : Number(values.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0)
    throw new UsageError(`--timeout must be a number of seconds greater than 0 (got ${gotValue(values.timeout ?? '')})`, { hint });
  const context = values['context-file'] ? await readUserFile(values['context-file'], '--context-file') : undefined;
  const docker = await connect(io);
  const { Sandbox } = await import('../../sandbox/sandbox.js');
  await using sandbox = await Sandbox.create({ docker, signal: io.signal, ...(context === undefined ? {} : { context }) });
  const result = await sandbox.execute(code, { timeoutMs: Math.round(timeoutSeconds * 1000), signal: io.signal });
  if (values.json) {
    io.stdout(`${JSON.stringify(result)}\n`);
  } else {
    io.stdout(result.stdout.text);
    if (result.value !== undefined) io.stdout(`${result.value}\n`);
    io.stderr(result.stderr.text);
    if (result.error) io.stderr(`${result.error.type}: ${result.error.message}\n${result.error.stack.map((s) => `    ${s}\n`).join('')}`);
    if (result.final) io.stdout(`FINAL: ${result.final.value}\n`);
  }
  return result.status === 'ok' ? ExitCode.ok : ExitCode.failure;
}

async function readUserFile(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    throw new RlmError(`${flag}: cannot read ${file}: ${errorCode(error) ?? errorMessage(error)}`, { cause: error });
  }
}
