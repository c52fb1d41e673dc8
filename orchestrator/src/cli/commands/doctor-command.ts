/**
 * `rlm doctor`: checks what a run needs — Node, the Docker engine (rootless or not, cgroups,
 * whether limits are enforced, its OCI runtimes, and whether gVisor's `runsc` really starts a
 * sandbox), the sandbox image, provider keys (names only, never values), the config file and the
 * models it configures — and says how to fix each problem.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { RlmError, errorMessage } from '../../errors.js';
import { DEFAULT_KEY_VARIABLES } from '../../models/create-backend.js';
import { createDockerClient, describeDockerHost, dockerInfo, pingDocker, unenforcedLimitsReason, type DockerEngineInfo } from '../../sandbox/docker-client.js';
import { SANDBOX_IMAGE_REPOSITORY, sandboxImageTag } from '../../sandbox/image/ensure-sandbox-image.js';
import { Sandbox } from '../../sandbox/sandbox.js';
import { ExitCode, UsageError, type CliIo } from '../cli-io.js';
import { loadConfig } from '../config/load-config.js';
import { checkModels, describeModelReport, type ModelReport } from '../config/model-checks.js';
import { CONFIG_ENV, layerFromEnv, resolveSettings, type ResolvedSettings } from '../config/settings.js';
import { colorEnabled, paletteFor } from '../output/colors.js';
import { DOCTOR_FLAGS, DOCTOR_HELP } from './doctor-flags.js';
import { parseFlags } from './run-flags.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn or fail. */
  fix?: string;
  /** A configured model's context window, output limit and price (the model checks only). */
  model?: ModelReport;
}

const MIN_NODE_MAJOR = 22;

export async function doctorCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, DOCTOR_FLAGS);
  if (values.help) {
    io.stdout(DOCTOR_HELP);
    return ExitCode.ok;
  }
  if (positionals.length > 0) throw new UsageError(`rlm doctor takes no arguments; got ${JSON.stringify(positionals[0])}`);
  const checks = await runChecks(io, values.config);
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  if (values.json) {
    io.stdout(`${JSON.stringify({ ok: failed === 0, checks }, null, 2)}\n`);
  } else {
    const c = paletteFor(colorEnabled(io.env, io.stdoutIsTTY ?? false));
    const label = { ok: c.green('ok  '), warn: c.yellow('warn'), fail: c.red('FAIL') } as const;
    const width = Math.max(...checks.map((check) => check.name.length));
    for (const check of checks) {
      io.stdout(`${label[check.status]}  ${check.name.padEnd(width)}  ${check.detail}\n`);
      if (check.model) io.stdout(`${' '.repeat(width + 8)}${describeModelReport(check.model)}\n`);
      if (check.fix) io.stdout(`${' '.repeat(width + 8)}${c.dim(`fix: ${check.fix}`)}\n`);
    }
    io.stdout(failed > 0 ? `\n${failed} check(s) failed, ${warned} warning(s)\n` : `\nready${warned > 0 ? ` (${warned} warning(s))` : ''}\n`);
  }
  return failed > 0 ? ExitCode.failure : ExitCode.ok;
}

/** Every check, in order; never throws. */
export async function runChecks(io: CliIo, configPath?: string): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [checkNode()];
  checks.push(...(await checkDocker(io, await selectedRuntime(io, configPath))));
  checks.push(...checkProviders(io.env));
  const config = await checkConfig(io, configPath);
  checks.push(config.check);
  // The models the settings configure, each with its key; an unusable config is reported above.
  if (config.settings) checks.push(...checkModels(config.settings, io.env, { claudeInstalled: onPath('claude', io.env) !== undefined }));
  return checks;
}

function checkNode(): DoctorCheck {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= MIN_NODE_MAJOR
    ? { name: 'node', status: 'ok', detail: `${process.version} (${process.execPath})` }
    : {
        name: 'node',
        status: 'fail',
        detail: `${process.version} is too old; rlm needs Node ≥ ${MIN_NODE_MAJOR}`,
        fix: `install Node ${MIN_NODE_MAJOR} or later (e.g. from nodejs.org, or \`nvm install 24\`)`,
      };
}

async function checkDocker(io: CliIo, runtime: string | undefined): Promise<DoctorCheck[]> {
  let docker: Dockerode;
  try {
    docker = createDockerClient({ env: io.env });
    await pingDocker(docker, { signal: io.signal, timeoutMs: 5_000 });
  } catch (error) {
    return [
      {
        name: 'docker engine',
        status: 'fail',
        detail: firstClause(error),
        fix: 'start the Docker engine (e.g. `sudo systemctl start docker`) or point DOCKER_HOST at it; for rootless Docker, DOCKER_HOST=unix:///run/user/$UID/docker.sock',
      },
    ];
  }
  const host = describeDockerHost(docker);
  let info: DockerEngineInfo;
  try {
    info = await dockerInfo(docker, { signal: io.signal });
  } catch (error) {
    return [
      {
        name: 'docker engine',
        status: 'fail',
        detail: firstClause(error),
        fix: 'check that your user may use the Docker engine (the docker group, or rootless Docker)',
      },
    ];
  }
  const checks: DoctorCheck[] = [
    { name: 'docker engine', status: 'ok', detail: `Docker ${info.serverVersion} at ${host} (${info.architecture})` },
    {
      name: 'docker mode',
      status: 'ok',
      detail: `${info.rootless ? 'rootless' : 'rootful'}, cgroup v${info.cgroupVersion ?? '?'}${info.cgroupDriver ? ` (driver ${info.cgroupDriver})` : ''}, default runtime ${info.defaultRuntime ?? 'runc'}`,
    },
  ];
  const unenforced = unenforcedLimitsReason(info);
  checks.push(
    unenforced
      ? {
          name: 'resource limits',
          status: 'warn',
          detail: `not enforced: ${unenforced}; a cell can take all of the host's memory, CPUs and processes`,
          fix: 'use a cgroup v2 host with the cpu, memory and pids controllers delegated to your user, or a rootful engine',
        }
      : { name: 'resource limits', status: 'ok', detail: 'memory, CPU and pids limits are enforced' },
  );
  checks.push(checkRuntimes(info));
  const image = await checkImage(docker, io);
  checks.push(image.check);
  checks.push(
    await checkRunsc({
      info,
      image: image.builtTag,
      required: runtime === 'runsc',
      trial: () => tryRunsc({ docker, image: image.builtTag ?? '', signal: io.signal, timeoutMs: RUNSC_TRIAL_TIMEOUT_MS }),
    }),
  );
  return checks;
}

/** The engine's OCI runtimes, its default first. */
export function checkRuntimes(info: DockerEngineInfo): DoctorCheck {
  const fallback = info.defaultRuntime ?? 'runc';
  const names = [fallback, ...info.runtimes.filter((name) => name !== fallback)];
  return { name: 'docker runtimes', status: 'ok', detail: names.map((name) => (name === fallback ? `${name} (default)` : name)).join(', ') };
}

/**
 * How long the runsc trial may take, start and cell: generous, since gVisor's ptrace platform
 * starts a sandbox in seconds on an idle machine and far slower on a loaded one.
 */
export const RUNSC_TRIAL_TIMEOUT_MS = 60_000;

/** What a successful runsc trial saw. */
export interface RunscTrialResult {
  /** Wall time of start and cell, in milliseconds. */
  durationMs: number;
  /** The kernel release the cell saw: gVisor's own, not the host's. */
  kernel: string;
}

/**
 * Starts one sandbox under `runsc` from the built sandbox image and runs one cell in it: the whole
 * path a run takes (the hardened container, its control socket, the REPL), so a daemon that
 * registers runsc but cannot run rlm's sandboxes under it (e.g. without `--host-uds=open`) fails.
 * The sandbox is closed (its container removed) whatever happens.
 *
 * @throws the sandbox's error (a SandboxError saying what the container printed, InvalidOptionError,
 *   AbortedError when `signal` fires or `timeoutMs` passes), or an Error when the cell fails.
 */
export async function tryRunsc(options: { docker: Dockerode; image: string; signal?: AbortSignal | undefined; timeoutMs: number }): Promise<RunscTrialResult> {
  const signal = options.signal ? AbortSignal.any([options.signal, AbortSignal.timeout(options.timeoutMs)]) : AbortSignal.timeout(options.timeoutMs);
  const started = performance.now();
  await using sandbox = await Sandbox.create({ docker: options.docker, image: options.image, runtime: 'runsc', startTimeoutMs: options.timeoutMs, signal });
  const result = await sandbox.execute("require('node:os').release()", { timeoutMs: options.timeoutMs, signal });
  if (result.status !== 'ok') throw new Error(`the cell ended with ${result.status}: ${result.error?.message ?? 'no error message'}`);
  return { durationMs: performance.now() - started, kernel: (result.value ?? '').replace(/^'|'$/g, '') };
}

/**
 * The gVisor check: whether the engine has `runsc`, and whether `trial` (see {@link tryRunsc})
 * starts a sandbox under it. A failure is `fail` when `required` (the settings select runsc),
 * else `warn`; never throws.
 */
export async function checkRunsc(options: {
  info: DockerEngineInfo;
  /** The sandbox image's tag when it is built; the trial needs it. */
  image: string | undefined;
  required: boolean;
  trial: () => Promise<RunscTrialResult>;
}): Promise<DoctorCheck> {
  const name = 'gVisor (runsc)';
  if (!options.info.runtimes.includes('runsc')) {
    return {
      name,
      status: options.required ? 'fail' : 'ok',
      detail: `not installed (${options.required ? 'the settings select it' : 'optional'}; runtimes: ${options.info.runtimes.join(', ') || 'none listed'}) — for a stronger boundary than containers, install gVisor and register runsc with the engine`,
      ...(options.required ? { fix: `install runsc (Debian: apt-get install runsc) and register it: ${RUNSC_DAEMON_CONFIG}` } : {}),
    };
  }
  if (options.image === undefined) {
    return {
      name,
      status: 'warn',
      detail: 'registered, not tried: the sandbox image is not built',
      fix: 'build it with `rlm sandbox build`, then run `rlm doctor` again',
    };
  }
  try {
    const result = await options.trial();
    return {
      name,
      status: 'ok',
      detail: `works: a sandbox ran a cell under gVisor in ${(result.durationMs / 1000).toFixed(1)} s (the cell saw kernel ${result.kernel}); select it with --runtime runsc or sandbox.runtime: runsc`,
    };
  } catch (error) {
    const reason = errorMessage(error);
    return {
      name,
      status: options.required ? 'fail' : 'warn',
      detail: `registered, but a sandbox does not run under it: ${reason.replace(/\s+/g, ' ').trim()}`,
      fix: runscFix(reason),
    };
  }
}

/** The engine configuration runsc needs to run rlm's sandboxes (Debian's runsc, 20221219). */
const RUNSC_DAEMON_CONFIG =
  '/etc/docker/daemon.json: {"runtimes": {"runsc": {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--platform=ptrace", "--host-uds=open"]}}}, then reload dockerd (kill -HUP its pid, or restart it)';

/** The fix for a runsc failure, from what runsc or the container said. */
export function runscFix(reason: string): string {
  if (/network enabled in root network namespace/.test(reason)) {
    return `runsc refuses to start with its own network stack here: add "--network=none" to its runtimeArgs in ${RUNSC_DAEMON_CONFIG}`;
  }
  if (/connect EPERM .*control\.sock|EPERM.*\/run\/rlm/.test(reason)) {
    return `gVisor refuses host Unix sockets, and rlm's control channel is one: add "--host-uds=open" to runsc's runtimeArgs in ${RUNSC_DAEMON_CONFIG}`;
  }
  if (/exited with code 2\b/.test(reason)) {
    return "gVisor could not start its threads: under runsc the engine's pids limit counts gVisor's own host threads too (rlm gives it 2 × sandbox.limits.pids + 128); raise sandbox.limits.pids";
  }
  if (/AbortError|aborted|timed? ?out/i.test(reason)) {
    return `the sandbox did not start within ${RUNSC_TRIAL_TIMEOUT_MS / 1000} s: check dockerd's log for runsc's errors; the configuration rlm needs is ${RUNSC_DAEMON_CONFIG}`;
  }
  return `check dockerd's log for runsc's errors; the configuration rlm needs is ${RUNSC_DAEMON_CONFIG}`;
}

/** The runtime the settings select (`RLM_SANDBOX_RUNTIME`, else the config file's sandbox.runtime); undefined when unset or unreadable. */
async function selectedRuntime(io: CliIo, explicit: string | undefined): Promise<string | undefined> {
  try {
    const fromEnv = layerFromEnv(io.env).sandbox?.runtime;
    if (fromEnv) return fromEnv;
    const loaded = await loadConfig({ cwd: io.cwd ?? process.cwd(), explicit: explicit ?? (io.env[CONFIG_ENV] || undefined) });
    return loaded?.config.sandbox?.runtime;
  } catch {
    // An unusable setting or config file: the config check reports it.
    return undefined;
  }
}

/** The image check, and the image's tag when it is built for the current inputs (the runsc trial needs it). */
async function checkImage(docker: Dockerode, io: CliIo): Promise<{ check: DoctorCheck; builtTag?: string }> {
  const name = 'sandbox image';
  let tag: string;
  try {
    tag = await sandboxImageTag({});
  } catch (error) {
    return {
      check: {
        name,
        status: 'fail',
        detail: firstClause(error),
        fix: 'run `pnpm build` in the repository (the REPL server bundle is missing), or fix RLM_SANDBOX_NODE / RLM_SANDBOX_BASE_IMAGE',
      },
    };
  }
  const build = 'nothing to do: the first run builds it (a few seconds); or build it now with `rlm sandbox build`';
  try {
    const images = await docker.listImages({ filters: { reference: [SANDBOX_IMAGE_REPOSITORY] }, ...({ abortSignal: io.signal } as object) });
    const tags = images.flatMap((image) => image.RepoTags ?? []);
    if (tags.includes(tag)) return { check: { name, status: 'ok', detail: `${tag} is built` }, builtTag: tag };
    if (tags.length > 0) {
      const older = `${tags.slice(0, 2).join(', ')}${tags.length > 2 ? ', …' : ''}`;
      return { check: { name, status: 'warn', detail: `stale: ${tags.length} older image(s) (${older}), none for the current inputs (${tag})`, fix: build } };
    }
    return { check: { name, status: 'warn', detail: `${tag} is not built yet`, fix: build } };
  } catch (error) {
    return { check: { name, status: 'fail', detail: `cannot list images: ${firstClause(error)}`, fix: 'check that your user may use the Docker engine' } };
  }
}

/** Which providers' key variables are set: names only. */
function checkProviders(env: NodeJS.ProcessEnv): DoctorCheck[] {
  const byVariable = new Map<string, string[]>();
  for (const [backend, variable] of Object.entries(DEFAULT_KEY_VARIABLES)) {
    if (!variable) continue;
    byVariable.set(variable, [...(byVariable.get(variable) ?? []), backend]);
  }
  const set = [...byVariable.keys()].filter((name) => (env[name] ?? '') !== '');
  const unset = [...byVariable.keys()].filter((name) => !set.includes(name));
  const claude = onPath('claude', env);
  const checks: DoctorCheck[] = [];
  if (set.length > 0) {
    checks.push({ name: 'provider keys', status: 'ok', detail: `set: ${set.map((name) => `${name} (${byVariable.get(name)?.join(', ')})`).join(', ')}` });
  } else {
    checks.push({
      name: 'provider keys',
      status: 'warn',
      detail: `no provider key is set (looked for ${unset.join(', ')})`,
      fix: 'export the key of your provider, e.g. ANTHROPIC_API_KEY or OPENAI_API_KEY; or use a local server (--backend ollama / vllm), or --backend claude-cli; `rlm demo` needs no key',
    });
  }
  checks.push(
    claude
      ? { name: 'claude CLI', status: 'ok', detail: `${claude} (for --backend claude-cli)` }
      : { name: 'claude CLI', status: 'ok', detail: 'not installed (optional: --backend claude-cli uses a Claude subscription through it)' },
  );
  return checks;
}

/** The config file and RLM_* variables checked, and the settings they give (none when unusable). */
async function checkConfig(io: CliIo, explicit: string | undefined): Promise<{ check: DoctorCheck; settings?: ResolvedSettings }> {
  const cwd = io.cwd ?? process.cwd();
  try {
    const settings = await resolveSettings({ flags: explicit === undefined ? {} : { config: explicit }, env: io.env, cwd });
    const check: DoctorCheck = settings.configFile
      ? { name: 'config', status: 'ok', detail: `${settings.configFile.file} is valid` }
      : { name: 'config', status: 'ok', detail: 'no rlm.config.yaml here (optional; flags, RLM_* variables and defaults apply)' };
    return { check, settings };
  } catch (error) {
    if (error instanceof UsageError || RlmError.isInstance(error))
      return {
        check: { name: 'config', status: 'fail', detail: error.message, fix: 'correct the key or value named above (see the README for the schema)' },
      };
    throw error;
  }
}

function onPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, command);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The error's message up to its fix (the fix is printed separately). */
function firstClause(error: unknown): string {
  const message = errorMessage(error);
  return message.split(': start the Docker engine')[0] ?? message;
}
