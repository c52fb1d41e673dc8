/**
 * The build context of the sandbox image: a `Dockerfile` and a `rootfs/` tree, described as a
 * manifest (which also yields the image's input hash) and streamed to the engine as a tar archive
 * without touching the disk.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { CONTEXT_MOUNT_PATH, CONTROL_MOUNT_PATH } from '@rlm/shared';
import tar from 'tar-stream';
import { toError } from '../../errors.js';
import { BUNDLE_MANIFEST_NAME, SANDBOX_BUNDLE_FILES, sandboxAssetPath, type SandboxAssets } from './assets.js';
import { IMAGE_NODE_PATH, type HostFile, type NodeRuntime } from './node-runtime.js';

/** The unprivileged user the sandbox runs as, `uid:gid`. */
export const SANDBOX_USER = '10001:10001';
export const SANDBOX_UID = 10001;

/** Where a Node base image (the official `node:*` images) keeps its binary. */
export const BASE_IMAGE_NODE_PATH = '/usr/local/bin/node';

/** The base image that means "no base": everything comes from rootfs/. */
export const SCRATCH = 'scratch';

/** Bumped when the way the context is laid out changes in a way the manifest does not capture. */
const CONTEXT_FORMAT = 1;

export type ContextEntry =
  | { type: 'directory'; path: string; mode: number }
  | { type: 'file'; path: string; mode: number; data: Buffer }
  | { type: 'host-file'; path: string; mode: number; file: HostFile }
  | { type: 'symlink'; path: string; target: string };

export interface BuildContext {
  /** Entries in archive order, paths relative to the context root (`Dockerfile`, `rootfs/…`). */
  entries: ContextEntry[];
  /** Hex sha256 over the Dockerfile, the base image, every entry's content or host identity and the Node version. */
  inputsHash: string;
  /** Total bytes of file content the archive carries. */
  contentBytes: number;
}

export interface BuildContextInput {
  assets: SandboxAssets;
  /** `scratch`, or an image that already has Node at {@link BASE_IMAGE_NODE_PATH}. */
  baseImage: string;
  /** The Node runtime to copy in; required for `scratch`, ignored otherwise. */
  node: NodeRuntime | undefined;
}

const PASSWD = ['root:x:0:0:root:/nonexistent:/usr/sbin/nologin', `rlm:x:${SANDBOX_UID}:${SANDBOX_UID}:rlm sandbox:/nonexistent:/usr/sbin/nologin`, ''].join(
  '\n',
);
const GROUP = ['root:x:0:', `rlm:x:${SANDBOX_UID}:`, ''].join('\n');

/** Assembles the context's manifest and hash. Reads the Dockerfile and bundle (small); host files are only stat'ed. */
export async function createBuildContext(input: BuildContextInput): Promise<BuildContext> {
  const { assets, baseImage, node } = input;
  const files: ContextEntry[] = [];
  const dirs = new Map<string, number>([['rootfs', 0o755]]);
  const addDir = (imageDir: string, mode = 0o755) => {
    let dir = imageDir;
    while (dir !== '/' && dir !== '.') {
      const key = `rootfs${dir}`;
      if (!dirs.has(key)) dirs.set(key, dir === imageDir ? mode : 0o755);
      dir = path.posix.dirname(dir);
    }
  };
  const addFile = (entry: ContextEntry & { path: string }) => {
    addDir(path.posix.dirname(entry.path));
    files.push({ ...entry, path: `rootfs${entry.path}` });
  };

  addDir('/tmp', 0o1777);
  addDir(CONTEXT_MOUNT_PATH);
  addDir(CONTROL_MOUNT_PATH);
  addFile({ type: 'file', path: '/etc/passwd', mode: 0o644, data: Buffer.from(PASSWD) });
  addFile({ type: 'file', path: '/etc/group', mode: 0o644, data: Buffer.from(GROUP) });
  const manifest = await readBundleManifest(assets.bundleDir);
  for (const name of SANDBOX_BUNDLE_FILES) {
    const file = await bundleFile(sandboxAssetPath(assets, name), `/opt/rlm/${name}`, manifest?.entry(name));
    addFile({ type: 'host-file', path: file.imagePath, mode: 0o644, file });
  }
  if (baseImage === SCRATCH) {
    if (!node) throw new Error('a scratch-based sandbox image needs a Node runtime');
    addFile({ type: 'host-file', path: IMAGE_NODE_PATH, mode: 0o755, file: node.binary });
    for (const lib of node.libraries) addFile({ type: 'host-file', path: lib.imagePath, mode: lib.mode, file: lib });
  } else {
    addFile({ type: 'symlink', path: IMAGE_NODE_PATH, target: BASE_IMAGE_NODE_PATH });
  }

  const dockerfile = await readFile(assets.dockerfile);
  const entries: ContextEntry[] = [
    { type: 'file', path: 'Dockerfile', mode: 0o644, data: dockerfile },
    ...[...dirs].sort(([a], [b]) => a.localeCompare(b)).map(([p, mode]): ContextEntry => ({ type: 'directory', path: p, mode })),
    ...files,
  ];

  const hash = createHash('sha256');
  hash.update(JSON.stringify({ format: CONTEXT_FORMAT, baseImage, nodeVersion: baseImage === SCRATCH ? node?.version : undefined }));
  let contentBytes = 0;
  for (const entry of entries) {
    hash.update(`\n${entry.type} ${entry.path} `);
    switch (entry.type) {
      case 'directory':
        hash.update(entry.mode.toString(8));
        break;
      case 'symlink':
        hash.update(entry.target);
        break;
      case 'file':
        hash.update(`${entry.mode.toString(8)} ${createHash('sha256').update(entry.data).digest('hex')}`);
        contentBytes += entry.data.length;
        break;
      case 'host-file':
        // Small files are hashed by content; the Node binary and libraries by where they are, size and mtime.
        hash.update(`${entry.mode.toString(8)} ${entry.file.sha256 ?? JSON.stringify([entry.file.realPath, entry.file.size, entry.file.mtimeMs])}`);
        contentBytes += entry.file.size;
        break;
    }
  }
  return { entries, inputsHash: hash.digest('hex'), contentBytes };
}

const contentHashes = new Map<string, string>();

/** A manifest entry, trusted for a file of the same size that is not newer than the manifest. */
interface ManifestEntry {
  size: number;
  sha256: string;
  writtenMs: number;
}

const BundleManifest = z.object({
  files: z.record(z.string(), z.object({ size: z.number().int().nonnegative(), sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
});

/** The build's manifest of content hashes in `bundleDir`, or undefined when there is none or it is unreadable. */
async function readBundleManifest(bundleDir: string): Promise<{ entry(name: string): ManifestEntry | undefined } | undefined> {
  const file = path.join(bundleDir, BUNDLE_MANIFEST_NAME);
  try {
    const [text, info] = await Promise.all([readFile(file, 'utf8'), stat(file)]);
    const parsed = BundleManifest.safeParse(JSON.parse(text));
    if (!parsed.success) return undefined;
    return { entry: (name) => (parsed.data.files[name] ? { ...parsed.data.files[name], writtenMs: info.mtimeMs } : undefined) };
  } catch {
    return undefined;
  }
}

/**
 * A bundle file with its content hash: from the build's manifest when it still describes the file,
 * else read (once per process for the same path, size and mtime).
 */
async function bundleFile(file: string, imagePath: string, listed?: ManifestEntry): Promise<HostFile> {
  const realPath = await realpath(file);
  const info = await stat(realPath);
  const key = `${realPath}\0${info.size}\0${info.mtimeMs}`;
  let sha256 = listed && listed.size === info.size && info.mtimeMs <= listed.writtenMs ? listed.sha256 : contentHashes.get(key);
  if (sha256 === undefined) {
    sha256 = createHash('sha256')
      .update(await readFile(realPath))
      .digest('hex');
    contentHashes.set(key, sha256);
  }
  return { imagePath, realPath, size: info.size, mtimeMs: info.mtimeMs, mode: 0o644, sha256 };
}

// A fixed timestamp keeps the archive, and so the engine's layer, the same for the same inputs.
const MTIME = new Date('2000-01-01T00:00:00Z');

/**
 * Streams the context as a tar archive. The returned stream errors (and the build fails) if a host
 * file cannot be read or changed size since it was stat'ed.
 */
export function packBuildContext(context: BuildContext, signal?: AbortSignal): tar.Pack {
  const pack = tar.pack();
  const common = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: MTIME };
  void (async () => {
    for (const entry of context.entries) {
      signal?.throwIfAborted();
      switch (entry.type) {
        case 'directory':
          pack.entry({ ...common, name: `${entry.path}/`, type: 'directory', mode: entry.mode });
          break;
        case 'symlink':
          pack.entry({ ...common, name: entry.path, type: 'symlink', linkname: entry.target, mode: 0o777 });
          break;
        case 'file':
          await new Promise<void>((resolve, reject) =>
            pack.entry({ ...common, name: entry.path, mode: entry.mode }, entry.data, (error) => (error ? reject(error) : resolve())),
          );
          break;
        case 'host-file': {
          const sink = pack.entry({ ...common, name: entry.path, mode: entry.mode, size: entry.file.size });
          await pipeline(createReadStream(entry.file.realPath, signal ? { signal } : {}), sink);
          break;
        }
      }
    }
    pack.finalize();
  })().catch((error: unknown) => pack.destroy(toError(error)));
  return pack;
}
