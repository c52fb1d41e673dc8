/**
 * Hostile suite: what a cell could learn or use about its host from inside the container — the
 * control token on a command line, host paths in the mount table, an executable context mount.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { CONTEXT_MOUNT_PATH, CONTROL_MOUNT_PATH, CONTROL_TOKEN_FILE_NAME } from '@rlm/shared';
import type Dockerode from 'dockerode';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Sandbox, createDockerClient, type Language } from 'rlm';
import { IMAGE_NODE_PATH } from '../../orchestrator/src/sandbox/image/node-runtime.js';
import { sandboxStateRootPath } from '../../orchestrator/src/sandbox/reaper.js';
import { IS_GVISOR, TEST_SANDBOX_RUNTIME } from '../support/runtime.js';
import { TEST_START_TIMEOUT_MS } from '../support/docker.js';
import { expectNoContainerSurvives } from '../support/hostile-host.js';

/** Every control token a sandbox of this file was given, in order. */
const tokens: string[] = [];
const docker = tokenRecordingDocker();
const sandboxOptions = { docker, image: inject('sandboxImage'), startTimeoutMs: TEST_START_TIMEOUT_MS, ...TEST_SANDBOX_RUNTIME };

afterEach(async () => {
  await expectNoContainerSurvives(docker);
});

/**
 * A Docker client that records the control token of each container it creates, read from the
 * token file in the control directory the container mounts (the host removes the file once the
 * container has said hello, so it must be read before).
 */
function tokenRecordingDocker(): Dockerode {
  const client = createDockerClient();
  const create = client.createContainer.bind(client);
  client.createContainer = (async (options: Dockerode.ContainerCreateOptions) => {
    const bind = options.HostConfig?.Binds?.find((b) => b.split(':')[1] === CONTROL_MOUNT_PATH);
    if (bind === undefined) throw new Error(`no bind of ${CONTROL_MOUNT_PATH} in ${JSON.stringify(options.HostConfig?.Binds)}`);
    tokens.push((await readFile(path.join(bind.split(':')[0] ?? '', CONTROL_TOKEN_FILE_NAME), 'utf8')).trim());
    return create(options);
  }) as typeof client.createContainer;
  return client;
}

/** The control token of the sandbox created last. */
function lastToken(): string {
  const token = tokens.at(-1);
  if (token === undefined) throw new Error('no sandbox was created');
  return token;
}

/** Runs `node -e script` in the container as a second process (outside any cell), returning its stdout. */
async function execInContainer(containerId: string, script: string): Promise<string> {
  const exec = await docker.getContainer(containerId).exec({ Cmd: [IMAGE_NODE_PATH, '-e', script], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  docker.modem.demuxStream(stream, stdout, new PassThrough().resume());
  await new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });
  return Buffer.concat(chunks).toString('utf8');
}

describe('the control token', () => {
  it('reaches the container in a file, not on its command line or anywhere in docker inspect', async () => {
    await using sandbox = await Sandbox.create(sandboxOptions);
    const info = await docker.getContainer(sandbox.containerId ?? '').inspect();
    const commandLine = [info.Path, ...info.Args, ...(info.Config.Entrypoint ?? []), ...(info.Config.Cmd ?? [])];
    expect(commandLine.filter((arg) => arg.startsWith('--token='))).toEqual([]);
    const token = lastToken();
    expect(token.length).toBeGreaterThanOrEqual(16);
    expect(JSON.stringify(info)).not.toContain(token);
  });
});

describe('the context mount', () => {
  // gVisor's kernel takes no flags from the host's mount, and Docker cannot put noexec in its spec:
  // there the context is a plain read-only bind (see GVISOR_RUNTIMES in container-spec.ts).
  const flags = IS_GVISOR ? ['ro'] : ['ro', 'noexec', 'nosuid', 'nodev'];

  it(`is mounted at ${CONTEXT_MOUNT_PATH} ${flags.join(', ')}`, async () => {
    await using sandbox = await Sandbox.create(sandboxOptions);
    // The mount table as the kernel has it, read by a process of our own in the container (the cells may not read it).
    const mountinfo = await execInContainer(sandbox.containerId ?? '', `process.stdout.write(require('node:fs').readFileSync('/proc/self/mountinfo', 'utf8'))`);
    // Fields: id, parent, major:minor, root, mount point, per-mount options, …
    const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === CONTEXT_MOUNT_PATH);
    expect(line, `no ${CONTEXT_MOUNT_PATH} in the container's mount table:\n${mountinfo}`).toBeDefined();
    const mounted = (line ?? '').split(' ')[5]?.split(',') ?? [];
    expect(mounted).toEqual(expect.arrayContaining(flags));
  });
});

describe.each(['javascript', 'python'] as const)('a %s cell reading what the kernel says of the container', (language) => {
  const FILES = ['/proc/1/cmdline', '/proc/self/mountinfo', '/proc/1/environ', '/proc/1/mountinfo'];
  const CELL: Record<Language, string> = {
    javascript: `
      const fs = require('node:fs');
      const seen = {};
      for (const file of ${JSON.stringify(FILES)}) {
        try { seen[file] = 'READ ' + fs.readFileSync(file, 'utf8'); } catch (error) { seen[file] = 'denied ' + (error.code || error.message); }
      }
      print(JSON.stringify(seen));
    `,
    // Through Node's fs (what Pyodide's own file system does not reach) and through Python's open.
    python: [
      'import js',
      'fs = js.process.getBuiltinModule("node:fs")',
      'seen = {}',
      `for file in ${JSON.stringify(FILES)}:`,
      '    try:',
      '        seen[file] = "READ " + str(fs.readFileSync(file, "utf8"))',
      '    except BaseException as error:',
      '        seen[file] = "denied " + str(getattr(error, "code", None) or error)',
      '    try:',
      '        with open(file) as f:',
      '            seen["python " + file] = "READ " + f.read()',
      '    except BaseException as error:',
      '        seen["python " + file] = "denied " + type(error).__name__',
      'print(json.dumps(seen))',
    ].join('\n'),
  };

  it('cannot read the command line or mount table of the server or of its own process, and learns no token or host path', async () => {
    await using sandbox = await Sandbox.create({ ...sandboxOptions, language });
    const result = await sandbox.execute(CELL[language], { timeoutMs: 60_000 });
    expect(result.error).toBeNull();
    const seen = JSON.parse(result.stdout.text) as Record<string, string>;
    for (const file of FILES) expect(seen[file], `${file}: ${seen[file]?.slice(0, 300)}`).toMatch(/^denied /);
    const everything = result.stdout.text;
    expect(everything).not.toContain(lastToken());
    expect(everything).not.toContain(sandbox.id);
    expect(everything).not.toContain(sandboxStateRootPath());
  });
});
