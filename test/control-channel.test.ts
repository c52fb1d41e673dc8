/**
 * The control channel treats the container as hostile, and the container does not outlive its host.
 *
 * The hostile peers are `fixtures/hostile-peer.cjs`: a raw WebSocket client that says hello properly
 * and then misbehaves. Some tests drive it through a bare ControlListener; the others build it into
 * the sandbox image in the REPL server's place, so a real Sandbox drives it with its own deadlines,
 * liveness check, caps and re-capping.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTROL_TOKEN_FILE_NAME, ChannelError, DEFAULT_OUTPUT_LIMIT_CHARS, Execute } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Sandbox, SandboxError, type SubcallParams, type SubcallResult } from 'rlm';
import { type HostilePeerMode, TEST_START_TIMEOUT_MS, hostilePeerImage, removeImages } from './support/docker.js';
import { containerRemoved, killHostOfSandbox } from './support/host-death.js';
import { buildContainerSpec } from '../orchestrator/src/sandbox/container-spec.js';
import { ControlListener, UnixSocketEndpoint } from '../orchestrator/src/sandbox/control/control-listener.js';
import { createDockerClient } from '../orchestrator/src/sandbox/docker-client.js';
import { createSandboxStateDir, sandboxOwnerLabels } from '../orchestrator/src/sandbox/reaper.js';

const docker = createDockerClient();
const image = inject('sandboxImage');
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

/** Starts our image with the hostile peer script in place of the REPL server; resolves once it said hello. */
async function startHostilePeer(mode: HostilePeerMode) {
  const id = `hostile-${randomBytes(4).toString('hex')}`;
  const stateDir = await createSandboxStateDir(id);
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const contextDir = path.join(stateDir, 'context');
  const controlDir = path.join(stateDir, 'control');
  await mkdir(contextDir, { recursive: true });
  await mkdir(controlDir, { recursive: true });
  await copyFile(path.join(fixtures, 'hostile-peer.cjs'), path.join(contextDir, 'hostile-peer.cjs'));
  const listener = await ControlListener.open({ endpoint: new UnixSocketEndpoint(controlDir), sandboxId: id });
  cleanups.push(() => listener.close());
  await writeFile(path.join(controlDir, CONTROL_TOKEN_FILE_NAME), listener.token);
  await chmod(path.join(controlDir, CONTROL_TOKEN_FILE_NAME), 0o444);
  const spec = buildContainerSpec({
    image,
    name: `rlm-sandbox-${id}`,
    labels: sandboxOwnerLabels(),
    contextDir,
    controlDir,
    args: ['/context/hostile-peer.cjs', `--url=${listener.containerUrl}`, `--token-file=/run/rlm/${CONTROL_TOKEN_FILE_NAME}`, `--mode=${mode}`],
  });
  const container: Dockerode.Container = await docker.createContainer({ ...spec, Entrypoint: ['/opt/rlm/bin/node'] });
  cleanups.push(() => container.remove({ force: true, v: true }));
  await container.start();
  const connection = await listener.accept({ signal: AbortSignal.timeout(20_000) });
  return { connection, container };
}

const cell = { code: '1', language: 'javascript' as const, timeoutMs: 5_000, outputLimitChars: 100 };

describe('a hostile container', () => {
  it('gets its connection closed for a malformed message, failing the pending request instead of the host', async () => {
    const { connection } = await startHostilePeer('malformed');
    // The peer breaks the protocol in answer to this request, so it is pending when that happens.
    const error = await connection.request(Execute, cell).catch((e: unknown) => e);
    expect(ChannelError.isInstance(error)).toBe(true);
    const info = await connection.closed;
    expect(info.code).toBe(1008);
    expect(info.violation).toBeDefined();
  });

  it('gets its connection closed with 1009 for a message over the size limit, before the host buffers it', async () => {
    const { connection } = await startHostilePeer('oversized');
    const before = process.memoryUsage().rss;
    const info = await connection.closed;
    expect(info.code).toBe(1009);
    expect(info.reason).toMatch(/size limit/);
    // The 65 MiB frame was refused from its header, not read into memory.
    expect(process.memoryUsage().rss - before).toBeLessThan(32 * 1024 * 1024);
  });

  it('gets its connection closed for a request to a method the host does not serve', async () => {
    const { connection } = await startHostilePeer('unknown-method');
    const info = await connection.closed;
    expect(info.code).toBe(1008);
    expect(info.violation?.message).toMatch(/no_such_method/);
  });
});

describe('a Sandbox whose REPL server is hostile', () => {
  const images = new Map<string, string>();
  const imageFor = (name: string) => images.get(name) ?? expect.unreachable(`no image ${name}`);

  beforeAll(async () => {
    const built = await Promise.all([
      hostilePeerImage(docker, image, 'frozen'),
      hostilePeerImage(docker, image, 'silent'),
      hostilePeerImage(docker, image, 'forged-output'),
      hostilePeerImage(docker, image, 'forged-final'),
      // 40 sub-calls against a cap of 4, 12 tool calls against a cap of 2.
      hostilePeerImage(docker, image, 'call-flood', { __EXPECTED_REFUSALS__: String(36 + 10) }),
    ]);
    for (const tag of built) images.set(tag.split(':').at(-1) ?? '', tag);
  });
  afterAll(async () => {
    await removeImages(docker, images.values());
  });

  async function create(mode: HostilePeerMode, options: Parameters<typeof Sandbox.create>[0] = {}): Promise<Sandbox> {
    const sandbox = await Sandbox.create({ docker, image: imageFor(mode), startTimeoutMs: TEST_START_TIMEOUT_MS, ...options });
    cleanups.push(() => sandbox.close());
    return sandbox;
  }

  it('settles execute with a SandboxUnresponsiveError timeout when the server stops answering pings, removes its container and replaces it', async () => {
    // The cell's own deadline is far off: the missing pongs are what end it.
    const sandbox = await create('frozen', { livenessTimeoutMs: 2_000 });
    const frozen = docker.getContainer(sandbox.containerId ?? '');
    const removed = containerRemoved(frozen, AbortSignal.timeout(120_000));
    const result = await sandbox.execute('1', { timeoutMs: 600_000 });
    expect(result.status).toBe('timeout');
    expect(result.error?.type).toBe('SandboxUnresponsiveError');
    expect(result.error?.message).toMatch(
      /^the sandbox stopped answering: it answered no ping for [\d.]+ s \(livenessTimeoutMs is 2000\), so the host removed its container and started a fresh one\. All variables were lost/,
    );
    expect(result.stateLost).toBe(true);
    expect(await removed).toBe(true);
    expect(sandbox.restarts).toBe(1);
    expect(sandbox.containerId).not.toBe(frozen.id);
  });

  it('settles execute at its host deadline when the server answers pings but never the cell, and removes the container', async () => {
    const sandbox = await create('silent', { hostGraceMs: 0, hostCallTimeoutMs: 1_000 });
    const silent = docker.getContainer(sandbox.containerId ?? '');
    const removed = containerRemoved(silent, AbortSignal.timeout(120_000));
    const result = await sandbox.execute('1', { timeoutMs: 500 });
    expect(result).toMatchObject({ status: 'timeout', stateLost: true, final: null, error: { type: 'SandboxUnresponsiveError' } });
    expect(result.error?.message).toMatch(/^the sandbox stopped answering: it did not answer execute within [\d.]+ s/);
    expect(await removed).toBe(true);
    expect(sandbox.restarts).toBe(1);
  });

  it('throws SandboxUnresponsiveError from loadContext past its deadline, and runs the next call in a fresh container', async () => {
    const sandbox = await create('silent', { hostCallTimeoutMs: 1_000 });
    const first = sandbox.containerId ?? '';
    const removed = containerRemoved(docker.getContainer(first), AbortSignal.timeout(120_000));
    const error = await sandbox.loadContext('some text').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxError);
    expect(error).toMatchObject({
      name: 'SandboxUnresponsiveError',
      reason: 'deadline',
      operation: 'load_context',
      message: expect.stringMatching(/did not answer load_context within [\d.]+ s, so the host removed its container; the next call runs in a fresh one/),
    });
    expect(await removed).toBe(true);
    expect(sandbox.containerId).toBeUndefined();
    // The next call starts a fresh container (which, this image being what it is, does not answer either).
    const next = await sandbox.defineTools({ echo: { handler: (args) => args } }).catch((e: unknown) => e);
    expect(next).toMatchObject({ name: 'SandboxUnresponsiveError', operation: 'define_tools' });
    expect(sandbox.restarts).toBe(1);
  });

  it('retires a container at its maximum lifetime even while idle, and says so at the next call, which runs in a fresh one', async () => {
    const sandbox = await create('silent', { maxLifetimeMs: 3_000 });
    const first = sandbox.containerId ?? '';
    // Removed by the host, not by a call: nothing is asked of the sandbox meanwhile.
    expect(await containerRemoved(docker.getContainer(first), AbortSignal.timeout(120_000))).toBe(true);
    const result = await sandbox.execute('1', { timeoutMs: 1_000 });
    expect(result).toMatchObject({ status: 'error', stateLost: true, error: { type: 'SandboxUnresponsiveError' } });
    expect(result.error?.message).toMatch(/^the sandbox was retired: it reached its maximum lifetime of 3\.0 s \(maxLifetimeMs\)/);
    expect(sandbox.restarts).toBe(1);
    expect(sandbox.containerId).not.toBe(first);
  });

  it('cuts a forged result of 40 MB of output and a 1 MB value to the limits the caller asked for', async () => {
    const sandbox = await create('forged-output');
    const result = await sandbox.execute('1', { timeoutMs: 30_000 });
    // Well-formed, within the protocol's 48 MiB for an execute result: taken in, then cut.
    expect(result.error, result.error?.message).toBeNull();
    expect(result.stdout.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS);
    expect(result.stdout.text.startsWith('START')).toBe(true);
    expect(result.stdout.text.endsWith('END')).toBe(true);
    expect(result.stdout.truncatedChars).toBeGreaterThan(29_900_000);
    expect(result.stderr.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS);
    expect(result.stderr.truncatedChars).toBeGreaterThan(9_900_000);
    expect(result.value?.length).toBeLessThanOrEqual(4096);
    expect(sandbox.restarts).toBe(0);
  });

  it('refuses a forged FINAL over MAX_FINAL_CHARS and 5,000 variables as a protocol violation: no answer, the container replaced', async () => {
    const sandbox = await create('forged-final');
    const result = await sandbox.execute('1', { timeoutMs: 30_000 });
    expect(result.final).toBeNull();
    expect(result).toMatchObject({ status: 'error', stateLost: true, variables: [], error: { type: 'SandboxProtocolError' } });
    expect(result.error?.message).toMatch(/final\.value/);
    expect(sandbox.restarts).toBe(1);
  });

  it('refuses calls past its per-sandbox caps at once, naming the cap; ends the admitted ones itself when the cell ends; refuses a call between cells', async () => {
    // Admitted calls are held until their signal fires: the peer never cancels them, so only the host can.
    const aborted: unknown[] = [];
    const hold = <T>(signal: AbortSignal, value: T) =>
      new Promise<T>((resolve) =>
        signal.addEventListener(
          'abort',
          () => {
            aborted.push(signal.reason);
            resolve(value);
          },
          { once: true },
        ),
      );
    let subcallsServed = 0;
    let toolCallsServed = 0;
    const sandbox = await create('call-flood', {
      callCaps: { maxSubcallsInFlight: 4, maxToolCallsInFlight: 2 },
      onSubcall: (request: SubcallParams, { signal }): Promise<SubcallResult> => {
        subcallsServed += 1;
        return hold(signal, { outcomes: request.prompts.map(() => ({ ok: true as const, text: 'late' })) });
      },
      tools: {
        slow: {
          handler: (_args, { signal }) => {
            toolCallsServed += 1;
            return hold(signal, 'late');
          },
        },
      },
    });
    // The peer answers once every refused call came back refused; the admitted ones are still held.
    const result = await sandbox.execute('1', { timeoutMs: 30_000 });
    const refused = JSON.parse(result.stdout.text) as { subcalls: string[]; tools: string[] };
    expect(refused.subcalls).toHaveLength(36);
    for (const error of refused.subcalls)
      expect(error).toMatch(/^llm_query was refused: 4 sub-call requests are already being served .*\(maxSubcallsInFlight\) is 4/);
    expect(refused.tools).toHaveLength(10);
    for (const error of refused.tools) expect(error).toMatch(/^the call of slow was refused: 2 tool calls .*\(maxToolCallsInFlight\) is 2/);
    expect(subcallsServed).toBe(4);
    expect(toolCallsServed).toBe(2);
    // The cell is over: the host aborted every call it admitted, and they settled before execute returned.
    expect(aborted).toHaveLength(6);
    expect(sandbox.callsInFlight).toMatchObject({ subcalls: 0, toolCalls: 0 });

    // A sub-call sent between two cells (while a context loads) is refused without reaching the handler.
    await sandbox.loadContext('text');
    const next = await sandbox.execute('2', { timeoutMs: 30_000 });
    const { between } = JSON.parse(next.stdout.text) as { between: SubcallResult };
    expect(between.outcomes[0]).toEqual({ ok: false, error: expect.stringMatching(/^refused: no cell is running/) });
    expect(subcallsServed).toBe(4);
  });
});

describe('when the host goes away', () => {
  it('the REPL server exits because its channel dropped, not for want of heartbeats, and its container is removed', async () => {
    const death = await killHostOfSandbox(docker, image, cleanups);
    expect(death.wasRunning).toBe(true);
    expect(death.removed).toBe(true);
    // 1006: the socket closed without a close frame, as it does when the host process dies. The
    // heartbeat timeout (20 s) would have said "no ping from the host".
    expect(death.lastStderrLine).toMatch(/^control channel closed \(1006 .*\); exiting$/);
  });
});
