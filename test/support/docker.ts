/**
 * Helpers for tests that drive the real Docker engine: a client, stand-in REPL bundles, running a
 * container to completion, and owners that are known to be dead.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type Dockerode from 'dockerode';
import { pack } from 'tar-stream';
import { createDockerClient } from '../../orchestrator/src/sandbox/docker-client.js';
import { SANDBOX_BUNDLE_FILES } from '../../orchestrator/src/sandbox/image/assets.js';
import { IMAGE_NODE_PATH } from '../../orchestrator/src/sandbox/image/node-runtime.js';
import { formatOwner, processStartTime } from '../../orchestrator/src/sandbox/reaper.js';

/**
 * How long a test sandbox may take to start: far above the 30 s default, because a machine running
 * two suites at once (as CI's proof does) can take that long to start a 1-CPU Python container.
 */
export const TEST_START_TIMEOUT_MS = 120_000;

export function testDocker(): Dockerode {
  return createDockerClient();
}

/**
 * Writes a throwaway `repl-server.js`/`repl-worker.js` pair into a new temp directory. The server
 * prints one JSON line describing what it sees inside the container, then exits. `nonce` makes the
 * bundle, and so the image tag, unique.
 */
export async function writeStandInBundle(nonce: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-standin-bundle-'));
  const server = `// stand-in REPL server for image tests (${nonce})
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const attempt = (fn) => { try { return fn(); } catch (error) { return 'error:' + (error.code || error.message); } };
const args = process.argv.slice(2);
const report = {
  argv: args,
  uid: process.getuid(),
  gid: process.getgid(),
  user: attempt(() => os.userInfo().username),
  env: process.env,
  cwd: process.cwd(),
  node: process.version,
  interfaces: Object.keys(os.networkInterfaces()),
  shell: fs.existsSync('/bin/sh'),
  rootfsWrite: attempt(() => { fs.writeFileSync('/opt/rlm/probe', 'x'); return 'ok'; }),
  tmpWrite: attempt(() => { fs.writeFileSync('/tmp/probe', 'x'); return 'ok'; }),
  contextWrite: attempt(() => { fs.writeFileSync('/context/probe', 'x'); return 'ok'; }),
  contextFiles: attempt(() => fs.readdirSync('/context')),
  controlDir: attempt(() => fs.readdirSync('/run/rlm')),
  controlWrite: attempt(() => { fs.writeFileSync('/run/rlm/probe', 'x'); return 'ok'; }),
  devShm: fs.existsSync('/dev/shm'),
  nofile: attempt(() => fs.readFileSync('/proc/self/limits', 'utf8').split('\\n').find((l) => l.startsWith('Max open files'))),
  capEff: attempt(() => fs.readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith('CapEff'))),
  noNewPrivs: attempt(() => fs.readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith('NoNewPrivs'))),
  seccomp: attempt(() => fs.readFileSync('/proc/self/status', 'utf8').split('\\n').find((l) => l.startsWith('Seccomp:'))),
  worker: fs.existsSync(__dirname + '/repl-worker.js'),
};
process.stdout.write(JSON.stringify(report) + '\\n');
`;
  await writeFile(path.join(dir, 'repl-server.js'), server);
  await writeFile(path.join(dir, 'repl-worker.js'), `// stand-in REPL worker (${nonce})\n`);
  // The Python worker and Pyodide's files: placeholders, the stand-in server never loads them.
  for (const file of SANDBOX_BUNDLE_FILES.filter((name) => name !== 'repl-server.js' && name !== 'repl-worker.js')) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), `stand-in ${file} (${nonce})\n`);
  }
  return dir;
}

/** Runs a container to completion and returns its exit code and output; the container is always removed. */
export async function runToCompletion(
  docker: Dockerode,
  options: Dockerode.ContainerCreateOptions,
  timeoutMs = 60_000,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const container = await docker.createContainer(options);
  try {
    const stream = await container.attach({ stream: true, stdout: true, stderr: true });
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    stdout.on('data', (chunk: Buffer) => out.push(chunk));
    stderr.on('data', (chunk: Buffer) => err.push(chunk));
    docker.modem.demuxStream(stream, stdout, stderr);
    const ended = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    // Ask for the exit code before starting (with AutoRemove the container may be gone later), and
    // for the *next* exit: the default condition, not-running, is already true of a created container.
    const waited = container.wait({ condition: 'next-exit' }) as Promise<{ StatusCode: number }>;
    await container.start();
    const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`container did not exit within ${timeoutMs} ms`)), timeoutMs).unref());
    const { StatusCode } = await Promise.race([waited, timer]);
    // The output stream ends once the engine has delivered everything the container wrote.
    await Promise.race([ended, timer]);
    return { exitCode: StatusCode, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/**
 * Runs `code` with the image's Node in a new process of a running container (docker exec, as the
 * container's user, under its capabilities, seccomp filter and no-new-privileges). `code` may use
 * `await` and `print(...)`, like a cell. Resolves with the exit code and the output.
 */
export async function execInContainer(docker: Dockerode, containerId: string, code: string): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const script = `const print = (...values) => process.stdout.write(values.join(' ') + '\\n');\n(async () => {\n${code}\n})().catch((error) => { process.stderr.write(String(error?.stack ?? error)); process.exitCode = 1; });`;
  const exec = await docker.getContainer(containerId).exec({ Cmd: [IMAGE_NODE_PATH, '-e', script], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough().on('data', (chunk: Buffer) => out.push(chunk));
  const stderr = new PassThrough().on('data', (chunk: Buffer) => err.push(chunk));
  docker.modem.demuxStream(stream, stdout, stderr);
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  const { ExitCode } = await exec.inspect();
  return { exitCode: ExitCode ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** An owner string for a process of this host that has exited. */
export async function deadOwner(): Promise<string> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn a process');
  const startTime = processStartTime(pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return formatOwner({ host: os.hostname(), pid, startTime });
}

/** Removes images, ignoring ones already gone. */
export async function removeImages(docker: Dockerode, tags: Iterable<string>): Promise<void> {
  for (const tag of tags) {
    await docker
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
  }
}

/** The modes of `fixtures/hostile-peer.cjs`. */
export type HostilePeerMode = 'malformed' | 'oversized' | 'unknown-method' | 'frozen' | 'silent' | 'forged-output' | 'forged-final' | 'call-flood';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/**
 * Builds `baseImage` with `fixtures/hostile-peer.cjs` in the REPL server's place, in `mode`, so a real
 * {@link Sandbox} drives a hostile server through its ordinary arguments. `values` fills other
 * placeholders of the script (e.g. `__EXPECTED_REFUSALS__`). The tag is unique to the call; remove
 * it with {@link removeImages}.
 */
export async function hostilePeerImage(docker: Dockerode, baseImage: string, mode: HostilePeerMode, values: Record<string, string> = {}): Promise<string> {
  let script = (await readFile(path.join(fixtures, 'hostile-peer.cjs'), 'utf8')).replaceAll('__HOSTILE_MODE__', mode);
  for (const [placeholder, value] of Object.entries(values)) script = script.replaceAll(placeholder, value);
  const tag = `rlm-test-hostile-peer-${randomBytes(4).toString('hex')}:${mode}`;
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM ${baseImage}\nCOPY repl-server.js /opt/rlm/repl-server.js\n`);
  context.entry({ name: 'repl-server.js', mode: 0o644 }, script);
  context.finalize();
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: tag });
  await new Promise((resolve, reject) => docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))));
  return tag;
}
