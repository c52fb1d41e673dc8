/**
 * The sandbox image: built from local files only, tagged by its inputs, holding nothing but Node
 * and the REPL server, and the container spec that runs it.
 */
import { randomBytes } from 'node:crypto';
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type Dockerode from 'dockerode';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AbortedError, SandboxImageError } from '../orchestrator/src/errors.js';
import { buildContainerSpec } from '../orchestrator/src/sandbox/container-spec.js';
import { SANDBOX_BUNDLE_FILES } from '../orchestrator/src/sandbox/image/assets.js';
import { SANDBOX_USER } from '../orchestrator/src/sandbox/image/build-context.js';
import { IMAGE_INPUTS_LABEL, ensureSandboxImage, sandboxImageTag, type SandboxImage } from '../orchestrator/src/sandbox/image/ensure-sandbox-image.js';
import { inspectNodeRuntime } from '../orchestrator/src/sandbox/image/node-runtime.js';
import { sandboxOwnerLabels } from '../orchestrator/src/sandbox/reaper.js';
import { removeImages, runToCompletion, testDocker, writeStandInBundle } from './support/docker.js';

const docker = testDocker();
const sandboxImage = inject('sandboxImage');
const cleanup: string[] = [];
const images = new Set<string>();

afterAll(async () => {
  await removeImages(docker, images);
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  cleanup.push(dir);
  return dir;
}

type TarEntry = { name: string; type: string; linkname?: string | null };

/** The entries of a tar stream, in order. */
async function tarEntries(archive: NodeJS.ReadableStream): Promise<TarEntry[]> {
  const extract = tar.extract();
  const entries: TarEntry[] = [];
  extract.on('entry', (header, stream, next) => {
    entries.push({ name: header.name, type: header.type ?? 'file', linkname: header.linkname });
    stream.on('end', next);
    stream.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    archive.pipe(extract as unknown as NodeJS.WritableStream);
  });
  return entries;
}

/** Paths and types of the files in a container's filesystem, read with `docker export`. */
async function filesystemOf(image: string): Promise<Map<string, { type: string; linkname?: string | null }>> {
  const container = await docker.createContainer({ Image: image, Entrypoint: ['/nonexistent'] });
  try {
    const entries = await tarEntries((await container.export()) as NodeJS.ReadableStream);
    return new Map(entries.map(({ name, type, linkname }) => [`/${name.replace(/\/$/, '')}`, { type, linkname }]));
  } finally {
    await container.remove({ force: true });
  }
}

describe('the sandbox image built from a stand-in bundle', () => {
  let bundleDir: string;
  let first: SandboxImage;
  const buildLog: string[] = [];

  beforeAll(async () => {
    bundleDir = await writeStandInBundle(randomBytes(8).toString('hex'));
    cleanup.push(bundleDir);
    first = await ensureSandboxImage({ docker, bundleDir, onProgress: (event) => buildLog.push(event.message) });
    images.add(first.tag);
  });

  it('builds from local files alone, pulling nothing', async () => {
    expect(first.built).toBe(true);
    expect(first.tag).toMatch(/^rlm-sandbox:[0-9a-f]{16}$/);
    expect(buildLog.join('\n')).not.toMatch(/pull|Pulling|registry/i);
    const info = await docker.getImage(first.tag).inspect();
    // A scratch image has no parent layers from anywhere else: one layer, our rootfs.
    expect(info.RootFS.Layers).toHaveLength(1);
    expect(info.Config.Labels?.[IMAGE_INPUTS_LABEL]).toMatch(/^[0-9a-f]{64}$/);
    expect(info.Config.Labels?.[IMAGE_INPUTS_LABEL]?.startsWith(first.tag.split(':')[1] ?? '-')).toBe(true);
  });

  it('is a no-op the second time, and concurrent calls share one answer', async () => {
    const [again, twin] = await Promise.all([ensureSandboxImage({ docker, bundleDir }), ensureSandboxImage({ docker, bundleDir })]);
    expect(again).toMatchObject({ tag: first.tag, built: false, imageId: first.imageId });
    expect(twin).toMatchObject({ tag: first.tag, built: false });
  });

  it('changes its tag when any input changes', async () => {
    const copyBundle = async () => {
      const other = await tempDir('rlm-other-bundle-');
      for (const file of SANDBOX_BUNDLE_FILES) {
        await mkdir(path.dirname(path.join(other, file)), { recursive: true });
        await copyFile(path.join(bundleDir, file), path.join(other, file));
      }
      return other;
    };
    const otherBundle = await copyBundle();
    expect(await sandboxImageTag({ bundleDir: otherBundle })).toBe(first.tag);
    await writeFile(path.join(otherBundle, 'repl-worker.js'), `${await readFile(path.join(bundleDir, 'repl-worker.js'), 'utf8')}// changed\n`);
    expect(await sandboxImageTag({ bundleDir: otherBundle })).not.toBe(first.tag);
    // The cell process's bundle is an input like the server's.
    const otherCellProcess = await copyBundle();
    await writeFile(path.join(otherCellProcess, 'cell-process.js'), `${await readFile(path.join(bundleDir, 'cell-process.js'), 'utf8')}// changed\n`);
    expect(await sandboxImageTag({ bundleDir: otherCellProcess })).not.toBe(first.tag);
    // Pyodide's files and its snapshot are inputs too.
    const otherSnapshot = await copyBundle();
    await writeFile(path.join(otherSnapshot, 'pyodide', 'python-snapshot.bin'), 'another snapshot');
    expect(await sandboxImageTag({ bundleDir: otherSnapshot })).not.toBe(first.tag);

    expect(await sandboxImageTag({ bundleDir, baseImage: 'node:24-bookworm-slim' })).not.toBe(first.tag);

    // Another Node binary (here: the same bytes at another path) is another input.
    const nodeDir = await tempDir('rlm-other-node-');
    const otherNode = path.join(nodeDir, 'node');
    await link(process.execPath, otherNode).catch(() => copyFile(process.execPath, otherNode));
    expect(await sandboxImageTag({ bundleDir, nodeBinary: otherNode })).not.toBe(first.tag);

    expect(await sandboxImageTag({ bundleDir })).toBe(first.tag);
  });

  it('fails a broken build with a SandboxImageError naming the step and carrying the log', async () => {
    const dockerfile = path.join(await tempDir('rlm-bad-dockerfile-'), 'Dockerfile.sandbox');
    await writeFile(dockerfile, 'FROM scratch\nCOPY rootfs/ /\nCOPY no-such-dir/ /x/\n');
    // A base image (which this Dockerfile ignores) keeps the Node binary out of the context: a small upload.
    const error = await ensureSandboxImage({ docker, bundleDir, dockerfile, baseImage: 'rlm-test-unused-base' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxImageError);
    expect(error).toMatchObject({
      message: expect.stringMatching(/failed at "Step 3\/\d+ : COPY no-such-dir\/ \/x\/"/),
      buildLog: expect.stringMatching(/Step 2\/\d+ : COPY rootfs\/ \//),
    });
  });

  it('stops a build when its signal aborts, leaving no image', async () => {
    const otherBundle = await writeStandInBundle(randomBytes(8).toString('hex'));
    cleanup.push(otherBundle);
    const tag = await sandboxImageTag({ bundleDir: otherBundle });
    // The engine could only tag the image while the build request lasts: record when it ends.
    const requests: Promise<unknown>[] = [];
    const watched = new Proxy(docker, {
      get(target, property, receiver) {
        if (property !== 'buildImage') return Reflect.get(target, property, receiver) as unknown;
        return (...args: Parameters<Dockerode['buildImage']>) => {
          const response = target.buildImage(...args) as Promise<NodeJS.ReadableStream>;
          requests.push(
            response.then(
              (stream) => finished(stream).catch(() => undefined),
              () => undefined,
            ),
          );
          return response;
        };
      },
    });
    const controller = new AbortController();
    const building = ensureSandboxImage({
      docker: watched,
      bundleDir: otherBundle,
      signal: controller.signal,
      onProgress: (event) => event.phase === 'context' && controller.abort(),
    });
    await expect(building).rejects.toBeInstanceOf(AbortedError);
    await Promise.all(requests);
    await expect(docker.getImage(tag).inspect()).rejects.toMatchObject({ statusCode: 404 });
    await expect(ensureSandboxImage({ docker, bundleDir: otherBundle, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it('refuses a Node binary that is not a Linux ELF, naming the option', async () => {
    const notElf = path.join(await tempDir('rlm-not-elf-'), 'node');
    await writeFile(notElf, '#!/bin/sh\necho v24\n', { mode: 0o755 });
    await expect(sandboxImageTag({ bundleDir, nodeBinary: notElf })).rejects.toThrow(/nodeBinary: .*not a Linux ELF/);
  });

  it('runs hardened under buildContainerSpec: user 10001, no network, read-only root, no host environment', async () => {
    // The container's user is not the host's: the directories must be open to others, as Sandbox makes them.
    const contextDir = await tempDir('rlm-ctx-');
    const controlDir = await tempDir('rlm-ctl-');
    await chmod(contextDir, 0o755);
    await chmod(controlDir, 0o755);
    await writeFile(path.join(contextDir, 'context.txt'), 'hello');
    const spec = buildContainerSpec({
      image: first.tag,
      name: `rlm-test-spec-${randomBytes(4).toString('hex')}`,
      labels: sandboxOwnerLabels(),
      contextDir,
      controlDir,
      args: ['--probe', 'yes'],
      limits: { memoryBytes: 256 * 1024 * 1024 },
    });
    const { exitCode, stdout, stderr } = await runToCompletion(docker, spec);
    expect(stderr).toBe('');
    expect(exitCode).toBe(0);
    const report = JSON.parse(stdout.trim()) as Record<string, unknown>;
    expect(report).toMatchObject({
      argv: ['--probe', 'yes'],
      uid: 10001,
      gid: 10001,
      user: 'rlm',
      cwd: '/tmp',
      node: process.version,
      interfaces: ['lo'],
      shell: false,
      rootfsWrite: 'error:EROFS',
      tmpWrite: 'ok',
      contextWrite: 'error:EROFS',
      contextFiles: ['context.txt'],
      controlDir: [],
      controlWrite: 'error:EROFS',
      devShm: false,
      worker: true,
    });
    expect(report.nofile).toMatch(/Max open files\s+1024\s+1024/);
    expect(report.capEff).toMatch(/CapEff:\s+0+$/);
    expect(report.noNewPrivs).toMatch(/NoNewPrivs:\s+1/);
    expect(report.seccomp).toMatch(/Seccomp:\s+2/);
    // Docker adds PATH and HOSTNAME (and HOME); nothing from the host's environment.
    expect(Object.keys(report.env as object).sort()).toEqual(expect.arrayContaining(['PATH']));
    for (const key of Object.keys(report.env as object)) expect(['PATH', 'HOSTNAME', 'HOME']).toContain(key);
  });
});

describe('the sandbox image of this workspace', () => {
  it('has no shell: a container with /bin/sh as entrypoint cannot start', async () => {
    await expect(runToCompletion(docker, { Image: sandboxImage, Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'] })).rejects.toThrow(
      /no such file or directory|executable file not found/i,
    );
  });

  it('holds only Node, its libraries, the REPL bundle (Pyodide included) and the account files', async () => {
    const files = await filesystemOf(sandboxImage);
    const paths = [...files.keys()];
    for (const absent of ['/bin/sh', '/bin/bash', '/usr/bin/env', '/bin/busybox', '/usr/bin/apt', '/sbin/apk', '/usr/bin/npm']) {
      expect(files.has(absent), absent).toBe(false);
    }
    expect(files.get('/opt/rlm/bin/node')?.type).toBe('file');
    expect(files.has('/opt/rlm/repl-server.js')).toBe(true);
    expect(files.has('/opt/rlm/cell-process.js')).toBe(true);
    expect(files.has('/opt/rlm/repl-worker.js')).toBe(true);
    expect(files.has('/etc/passwd')).toBe(true);
    const node = await inspectNodeRuntime();
    expect(files.has('/opt/rlm/pyodide/python-snapshot.bin')).toBe(true);
    const expected = new Set([
      '/opt/rlm/bin/node',
      ...SANDBOX_BUNDLE_FILES.map((file) => `/opt/rlm/${file}`),
      '/etc/passwd',
      '/etc/group',
      ...node.libraries.map((l) => l.imagePath),
    ]);
    // Docker adds these to every container's filesystem.
    const engine = /^\/(\.dockerenv|etc\/(hosts|hostname|resolv\.conf|mtab)|dev|proc|sys)(\/|$)/;
    const unexpected = paths.filter((p) => files.get(p)?.type !== 'directory' && !expected.has(p) && !engine.test(p));
    expect(unexpected).toEqual([]);
  });

  it('runs as user 10001 with the REPL server as entrypoint, its inspector signal disabled', async () => {
    const info = await docker.getImage(sandboxImage).inspect();
    expect(info.Config.User).toBe(SANDBOX_USER);
    expect(info.Config.Entrypoint).toEqual(['/opt/rlm/bin/node', '--disable-sigusr1', '/opt/rlm/repl-server.js']);
    expect(info.Config.Cmd ?? []).toEqual([]);
    const passwd = await readFileFromImage(sandboxImage, '/etc/passwd');
    expect(passwd).toMatch(/^rlm:x:10001:10001:[^:]*:\/nonexistent:\/usr\/sbin\/nologin$/m);
  });
});

describe('the sandbox image on a Node base image', () => {
  const baseTag = `rlm-test-node-base:${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    // Stands in for node:24-bookworm-slim (no registry here): Node and its libraries at /usr/local/bin/node.
    const node = await inspectNodeRuntime();
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, 'FROM scratch\nCOPY root/ /\n');
    const build = docker.buildImage(Readable.from(pack, { objectMode: false }), { t: baseTag, rm: true, forcerm: true });
    images.add(baseTag);
    await new Promise<void>((resolve, reject) => {
      const file = pack.entry({ name: 'root/usr/local/bin/node', mode: 0o755, size: node.binary.size }, (error) => (error ? reject(error) : resolve()));
      void readFile(node.binary.realPath).then((data) => file.end(data), reject);
    });
    for (const lib of node.libraries) pack.entry({ name: `root${lib.imagePath}`, mode: 0o755 }, await readFile(lib.realPath));
    pack.finalize();
    const stream = await build;
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (error: Error | null, output: { error?: string }[]) => {
        const failed = output.find((o) => o.error);
        if (error || failed) reject(error ?? new Error(failed?.error));
        else resolve();
      }),
    );
  });

  it("links /opt/rlm/bin/node to the base image's node and runs the REPL server with it", async () => {
    const bundleDir = await writeStandInBundle(randomBytes(8).toString('hex'));
    cleanup.push(bundleDir);
    const image = await ensureSandboxImage({ docker, bundleDir, baseImage: baseTag });
    images.add(image.tag);
    expect(image.built).toBe(true);
    expect(await entryInImage(image.tag, '/opt/rlm/bin/node')).toMatchObject({ type: 'symlink', linkname: '/usr/local/bin/node' });
    const { exitCode, stdout } = await runToCompletion(docker, { Image: image.tag, Cmd: ['--base'] });
    expect(exitCode).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ argv: ['--base'], uid: 10001, user: 'rlm' });
  });
});

/** The archive header of one path in an image (a symlink is not followed), without exporting the rest. */
async function entryInImage(image: string, file: string): Promise<{ type: string; linkname?: string | null }> {
  const container = await docker.createContainer({ Image: image, Entrypoint: ['/nonexistent'] });
  try {
    const [entry] = await tarEntries((await container.getArchive({ path: file })) as NodeJS.ReadableStream);
    if (!entry) throw new Error(`${file} is not in ${image}`);
    return { type: entry.type, linkname: entry.linkname };
  } finally {
    await container.remove({ force: true });
  }
}

async function readFileFromImage(image: string, file: string): Promise<string> {
  const container = await docker.createContainer({ Image: image, Entrypoint: ['/nonexistent'] });
  try {
    const archive = (await container.getArchive({ path: file })) as NodeJS.ReadableStream;
    const extract = tar.extract();
    let text = '';
    extract.on('entry', (_header, stream, next) => {
      stream.on('data', (chunk: unknown) => {
        text += (chunk as Buffer).toString('utf8');
      });
      stream.on('end', next);
    });
    await new Promise<void>((resolve, reject) => {
      extract.on('finish', resolve);
      extract.on('error', reject);
      archive.pipe(extract as unknown as NodeJS.WritableStream);
    });
    return text;
  } finally {
    await container.remove({ force: true });
  }
}
