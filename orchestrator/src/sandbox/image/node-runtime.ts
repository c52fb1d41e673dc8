/**
 * The Node runtime copied into a from-scratch sandbox image: the binary, the shared libraries it
 * loads (as `ldd` reports them, ELF interpreter included; where there is no `ldd`, as in rlm's own
 * from-scratch server image, as the binary's ELF interpreter lists them), and a cheap identity for
 * each so the image tag changes when any of them does without hashing 120 MB on every start.
 */
import { execFile } from 'node:child_process';
import { open, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { errorCode, errorMessage, InvalidOptionError, SandboxImageError } from '../../errors.js';

const execFileAsync = promisify(execFile);

/** Environment variable naming the Node binary to copy into the image. */
export const SANDBOX_NODE_ENV = 'RLM_SANDBOX_NODE';

/** A host file that goes into the image, identified by where it really is, its size and mtime. */
export interface HostFile {
  /** Where the file lands in the image (for libraries: the path `ldd` names). */
  imagePath: string;
  /** The real file on the host, symlinks resolved. */
  realPath: string;
  size: number;
  mtimeMs: number;
  /** Permission bits to give it in the image. */
  mode: number;
  /** Hex sha256 of the content, for files small enough to hash on every start. */
  sha256?: string;
}

export interface NodeRuntime {
  binary: HostFile;
  /** `process.version` style, e.g. `v24.3.0`. */
  version: string;
  /** ELF machine, e.g. `x86_64`. */
  machine: string;
  libraries: HostFile[];
}

/** Where the Node binary lives in the image. */
export const IMAGE_NODE_PATH = '/opt/rlm/bin/node';

const cache = new Map<string, Promise<Omit<NodeRuntime, 'binary'>>>();

/**
 * Inspects the Node binary to copy into the image: `nodeBinary`, else `RLM_SANDBOX_NODE`, else
 * the running `process.execPath`. Results are cached per binary identity, so a second call costs
 * a few `stat`s.
 *
 * @throws InvalidOptionError naming `nodeBinary`/`RLM_SANDBOX_NODE` when the file is missing or is
 *   not a Linux ELF executable (e.g. a macOS host: pass a Linux Node binary or use a base image).
 * @throws SandboxImageError when `ldd` cannot list its libraries.
 */
export async function inspectNodeRuntime(nodeBinary?: string): Promise<NodeRuntime> {
  const fromEnv = nodeBinary === undefined && Boolean(process.env[SANDBOX_NODE_ENV]);
  const option = nodeBinary !== undefined ? 'nodeBinary' : fromEnv ? SANDBOX_NODE_ENV : 'nodeBinary (defaults to the running node)';
  const requested = nodeBinary ?? (process.env[SANDBOX_NODE_ENV] || process.execPath);
  const binary = await hostFile(requested, IMAGE_NODE_PATH).catch((error: unknown) => {
    throw new InvalidOptionError(option, `cannot read the Node binary ${requested}: ${errorMessage(error)}`, { cause: error });
  });
  binary.mode = 0o755;
  const key = `${binary.realPath}\0${binary.size}\0${binary.mtimeMs}`;
  let rest = cache.get(key);
  if (!rest) {
    rest = inspectUncached(binary.realPath, requested, option);
    cache.set(key, rest);
    rest.catch(() => cache.delete(key));
  }
  const inspected = await rest;
  // Library identities are re-read each time: a distro upgrade changes them under the same node.
  const libraries = await Promise.all(inspected.libraries.map((lib) => libraryFile(lib.imagePath)));
  return { ...inspected, binary, libraries };
}

async function inspectUncached(realPath: string, requested: string, option: string): Promise<Omit<NodeRuntime, 'binary'>> {
  const machine = await elfMachine(realPath).catch((error: unknown) => {
    throw new InvalidOptionError(
      option,
      `${requested} is not a Linux ELF executable (${errorMessage(error)}); the sandbox image needs a Linux Node binary: set ${SANDBOX_NODE_ENV} (or the nodeBinary option) to one, or build on a Node base image with baseImage: 'node:24-bookworm-slim'`,
      { cause: error },
    );
  });
  const [version, libraries] = await Promise.all([nodeVersion(realPath, requested, option), sharedLibraries(realPath)]);
  return { version, machine, libraries };
}

async function hostFile(file: string, imagePath: string): Promise<HostFile> {
  const realPath = await realpath(file);
  const info = await stat(realPath);
  if (!info.isFile()) throw new Error(`${file} is not a regular file`);
  return { imagePath, realPath, size: info.size, mtimeMs: info.mtimeMs, mode: info.mode & 0o755 };
}

const ELF_MACHINES: Record<number, string> = {
  3: 'i386',
  40: 'arm',
  62: 'x86_64',
  183: 'aarch64',
  243: 'riscv64',
  21: 'ppc64',
  22: 's390x',
};

async function elfMachine(file: string): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, 20, 0);
    if (bytesRead < 20 || header.readUInt32BE(0) !== 0x7f454c46) throw new Error('no ELF header');
    const machine = header[5] === 2 ? header.readUInt16BE(18) : header.readUInt16LE(18);
    return ELF_MACHINES[machine] ?? `elf-machine-${machine}`;
  } finally {
    await handle.close();
  }
}

async function nodeVersion(realPath: string, requested: string, option: string): Promise<string> {
  const self = await realpath(process.execPath).catch(() => process.execPath);
  if (self === realPath) return process.version;
  try {
    const { stdout } = await execFileAsync(realPath, ['--version'], { timeout: 30_000, env: {} });
    return stdout.trim();
  } catch (error) {
    throw new InvalidOptionError(option, `${requested} does not run here (\`--version\` failed: ${errorMessage(error)})`, {
      cause: error,
    });
  }
}

/**
 * The absolute library paths in `ldd` output, in order, interpreter included; `linux-vdso` and
 * other entries without a file are skipped.
 *
 * @throws Error naming the library when one is `not found`.
 */
export function parseLddOutput(output: string): string[] {
  const paths: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const missing = /^(\S+)\s+=>\s+not found/.exec(line);
    if (missing) throw new Error(`the shared library ${missing[1]} is not found`);
    const match = /=>\s+(\/\S+)(?:\s+\(0x[0-9a-f]+\))?$/.exec(line) ?? /^(\/\S+)(?:\s+\(0x[0-9a-f]+\))?$/.exec(line);
    if (match?.[1] && !paths.includes(match[1])) paths.push(match[1]);
  }
  return paths;
}

/**
 * Runs `ldd` on the binary; where there is no `ldd` (a distroless or from-scratch image, such as the
 * `rlm serve` image built by deploy/build-server-image.mjs), runs the binary's ELF interpreter with
 * `--list`, which is what glibc's `ldd` script does and which musl's loader accepts too. A binary
 * without an interpreter is static: its output says so, as `ldd`'s does.
 */
export async function listLibraries(realPath: string): Promise<{ stdout: string }> {
  try {
    return await execFileAsync('ldd', [realPath], { timeout: 30_000 });
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
  const interpreter = await elfInterpreter(realPath);
  if (interpreter === undefined) return { stdout: 'statically linked\n' };
  return await execFileAsync(interpreter, ['--list', realPath], { timeout: 30_000 });
}

const PT_INTERP = 3;

/**
 * The ELF interpreter (`PT_INTERP`, e.g. `/lib64/ld-linux-x86-64.so.2`) a binary names, or
 * undefined for a static binary.
 *
 * @throws Error when the file is not an ELF file or its program headers are out of bounds.
 */
export async function elfInterpreter(file: string): Promise<string | undefined> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(64);
    const { bytesRead } = await handle.read(header, 0, 64, 0);
    if (bytesRead < 52 || header.readUInt32BE(0) !== 0x7f454c46) throw new Error('no ELF header');
    const is64 = header[4] === 2;
    const little = header[5] !== 2;
    const u16 = (b: Buffer, at: number) => (little ? b.readUInt16LE(at) : b.readUInt16BE(at));
    const u32 = (b: Buffer, at: number) => (little ? b.readUInt32LE(at) : b.readUInt32BE(at));
    const word = (b: Buffer, at: number) => (is64 ? Number(little ? b.readBigUInt64LE(at) : b.readBigUInt64BE(at)) : u32(b, at));
    const tableOffset = word(header, is64 ? 0x20 : 0x1c);
    const entrySize = u16(header, is64 ? 0x36 : 0x2a);
    const entries = u16(header, is64 ? 0x38 : 0x2c);
    if (entrySize < (is64 ? 56 : 32)) throw new Error(`program header entries of ${entrySize} bytes`);
    const table = Buffer.alloc(entrySize * entries);
    if ((await handle.read(table, 0, table.length, tableOffset)).bytesRead < table.length) throw new Error('truncated program headers');
    for (let i = 0; i < entries; i += 1) {
      const entry = table.subarray(i * entrySize, (i + 1) * entrySize);
      if (u32(entry, 0) !== PT_INTERP) continue;
      const size = word(entry, is64 ? 0x20 : 0x10);
      if (size === 0 || size > 4096) throw new Error(`an interpreter path of ${size} bytes`);
      const name = Buffer.alloc(size);
      await handle.read(name, 0, size, word(entry, is64 ? 0x08 : 0x04));
      const end = name.indexOf(0);
      return name.subarray(0, end < 0 ? size : end).toString('utf8');
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

async function sharedLibraries(realPath: string): Promise<HostFile[]> {
  let stdout: string;
  try {
    ({ stdout } = await listLibraries(realPath));
  } catch (error) {
    const output = `${(error as { stdout?: string }).stdout ?? ''}${(error as { stderr?: string }).stderr ?? ''}`;
    // Static binaries make glibc's ldd exit 1 with this message; they need no libraries.
    if (/not a dynamic executable|statically linked/.test(output)) return [];
    throw new SandboxImageError(
      `cannot list the shared libraries of ${realPath} with \`ldd\` or its ELF interpreter (${errorMessage(error).trim()}): install ldd (libc-bin) or build on a Node base image with baseImage: 'node:24-bookworm-slim'`,
      output,
      { cause: error },
    );
  }
  if (/statically linked/.test(stdout)) return [];
  let paths: string[];
  try {
    paths = parseLddOutput(stdout);
  } catch (error) {
    throw new SandboxImageError(`${realPath}: ${errorMessage(error)} (ldd output below)`, stdout, { cause: error });
  }
  return Promise.all(paths.map(libraryFile));
}

/** A shared library of the Node binary, to copy into the image at the same path. */
async function libraryFile(file: string): Promise<HostFile> {
  return hostFile(file, file).catch((error: unknown) => {
    throw new SandboxImageError(
      `cannot read ${file}, a shared library of the Node binary: ${errorMessage(error)}; check the file, or build on a Node base image with baseImage: 'node:24-bookworm-slim'`,
      '',
      { cause: error },
    );
  });
}
