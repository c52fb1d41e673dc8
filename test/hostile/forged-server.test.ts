/**
 * Hostile suite: the REPL server itself is hostile — what a cell that took it over could send.
 * The sandbox image is rebuilt with `fixtures/hostile-server.cjs` in the server's place, and a real
 * {@link Sandbox} drives it: a forged result is cut to the host's limits (no forged answer, no flood
 * of output or variables accepted), and a 60 MB frame of nested arrays neither stalls the host nor
 * swells it.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OUTPUT_LIMIT_CHARS, MAX_LISTED_VARIABLES } from '@rlm/shared';
import { pack } from 'tar-stream';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { Sandbox, createDockerClient } from 'rlm';
import { TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS, removeImages } from '../support/docker.js';
import { HostMonitor, expectHostHealthy, expectNoContainerSurvives } from '../support/hostile-host.js';

const docker = createDockerClient();
const baseImage = inject('sandboxImage');
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
/** A repository of this run's own: nothing else builds, prunes or runs these images. */
const repository = `rlm-test-hostile-server-${randomBytes(4).toString('hex')}`;
const images: Record<'forged-result' | 'nested-frame', string> = { 'forged-result': '', 'nested-frame': '' };

/** The sandbox image with the hostile server, in `mode`, where the REPL server was. */
async function hostileServerImage(mode: keyof typeof images): Promise<string> {
  const script = (await readFile(path.join(fixtures, 'hostile-server.cjs'), 'utf8')).replace('__HOSTILE_MODE__', mode);
  const tag = `${repository}:${mode}`;
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM ${baseImage}\nCOPY repl-server.js /opt/rlm/repl-server.js\n`);
  context.entry({ name: 'repl-server.js', mode: 0o644 }, script);
  context.finalize();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: tag });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
  return tag;
}

beforeAll(async () => {
  images['forged-result'] = await hostileServerImage('forged-result');
  images['nested-frame'] = await hostileServerImage('nested-frame');
});

afterAll(async () => {
  await removeImages(docker, Object.values(images));
});

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

describe('a taken-over REPL server forging a result', () => {
  it('gets it cut on the host: output to the limit, no 2 MiB FINAL taken as the answer, the variable list capped', async () => {
    const monitor = HostMonitor.start();
    await using sandbox = await Sandbox.create({ docker, image: images['forged-result'], startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME });
    // Either re-capped on the host or refused whole (a violation: the container is replaced); never taken as sent.
    const result = await sandbox.execute('1', { timeoutMs: 30_000 });
    expect(result.stdout.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS + 200);
    expect(result.stderr.text.length).toBeLessThanOrEqual(DEFAULT_OUTPUT_LIMIT_CHARS + 200);
    expect(result.final).toBeNull();
    expect(result.variables.length).toBeLessThanOrEqual(MAX_LISTED_VARIABLES);
    expectHostHealthy(monitor, 'forged 52 MB execute result');
  }, 300_000);
});

describe('a taken-over REPL server sending a 60 MB frame of nested arrays', () => {
  it('neither stalls the host nor swells it, and execute settles', async () => {
    const monitor = HostMonitor.start();
    await using sandbox = await Sandbox.create({ docker, image: images['nested-frame'], startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME });
    // The server sends the frame again before it answers: a second one, after the one following its hello.
    const result = await sandbox.execute('1', { timeoutMs: 30_000 });
    expect(['ok', 'error']).toContain(result.status);
    expectHostHealthy(monitor, '60 MB nested-array frames');
  }, 300_000);
});
