#!/usr/bin/env node
// Builds the rlm server image (`rlm serve` in a container; default tag rlm-server:local) from local
// files only: the workspace's build (`pnpm build` first; `pnpm build:server-image` does both), the
// rlm package's production dependencies from the pnpm store (`pnpm deploy --prod --prefer-offline`:
// no network when the store has them, which `pnpm install` made sure of), and, on the default
// `scratch` base, this machine's Node binary and the shared libraries it loads. Nothing is pulled
// unless --base-image names an image the engine lacks.
//
//   node deploy/build-server-image.mjs [--tag rlm-server:local] [--base-image scratch|node:24-bookworm-slim]
//                                      [--node PATH] [--context-dir DIR] [--json]
//
// The context is assembled in a temporary directory (or --context-dir, kept for inspection) and
// built with `docker build` against the engine DOCKER_HOST names; see the Dockerfile at the root for
// its layout. Progress goes to stderr; the last line says the image, its size and how long it took
// (with --json, stdout gets one object: tag, imageId, baseImage, sizeBytes, contextBytes, durationMs).
// Exit codes: 0 built, 1 failed, 2 bad usage.
import { spawn } from 'node:child_process';
import { constants, existsSync, readFileSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ORCHESTRATOR = path.join(ROOT, 'orchestrator');
const SCRATCH = 'scratch';
/** The unprivileged user the server runs as (the same uid as the sandbox's user, in another image). */
const SERVER_UID = 10001;
/** Where a Node base image (the official `node:*` images) keeps its binary; the scratch image puts it there too. */
const IMAGE_NODE_PATH = '/usr/local/bin/node';
const APP_DIR = '/opt/rlm';

const USAGE = `usage: node deploy/build-server-image.mjs [--tag rlm-server:local] [--base-image scratch|node:24-bookworm-slim] [--node PATH] [--context-dir DIR] [--json]
  --tag TAG           the image's tag (default rlm-server:local)
  --base-image IMAGE  scratch (default: this machine's Node and its libraries are copied in, nothing is
                      pulled) or an image with Node at ${IMAGE_NODE_PATH}, e.g. node:24-bookworm-slim
  --node PATH         the Node binary to copy into a scratch image (default: the one running this script)
  --context-dir DIR   assemble the build context in DIR (new or empty) and keep it
  --json              print the result as one JSON object on stdout`;

/** @param {string} message @returns {never} */
function usage(message) {
  process.stderr.write(`build-server-image: ${message}\n${USAGE}\n`);
  process.exit(2);
}

/** @param {string} message @returns {never} */
function fail(message) {
  process.stderr.write(`build-server-image: ${message}\n`);
  process.exit(1);
}

/** @param {string} message */
function progress(message) {
  process.stderr.write(`build-server-image: ${message}\n`);
}

/** @type {{ values: { tag?: string, 'base-image'?: string, node?: string, 'context-dir'?: string, json?: boolean, help?: boolean } }} */
let parsed;
try {
  parsed = parseArgs({
    options: {
      tag: { type: 'string' },
      'base-image': { type: 'string' },
      node: { type: 'string' },
      'context-dir': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
} catch (error) {
  usage(error instanceof Error ? error.message : String(error));
}
const options = parsed.values;
if (options.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const tag = options.tag ?? 'rlm-server:local';
const baseImage = options['base-image'] ?? SCRATCH;
if (!/^[a-z0-9][a-z0-9._\-/:@]*$/i.test(tag)) usage(`--tag ${JSON.stringify(tag)} is not an image reference`);
if (options.node !== undefined && baseImage !== SCRATCH) usage('--node only applies to --base-image scratch (a base image brings its own Node)');

const started = performance.now();

// --- the workspace's build -----------------------------------------------------------------------
const BUILT = ['dist/bundle/cli.js', 'dist/sandbox-assets/bundle-manifest.json', 'dist/sandbox-assets/repl-server.js', 'dist/sandbox/image/node-runtime.js'];
const missing = BUILT.filter((file) => !existsSync(path.join(ORCHESTRATOR, file)));
if (missing.length > 0) fail(`the workspace is not built (missing orchestrator/${missing.join(', orchestrator/')}): run \`pnpm build\` first`);
const version = /** @type {{ version: string }} */ (JSON.parse(readFileSync(path.join(ORCHESTRATOR, 'package.json'), 'utf8'))).version;

// --- the context directory -----------------------------------------------------------------------
const keepContext = options['context-dir'] !== undefined;
const contextDir = keepContext ? path.resolve(/** @type {string} */ (options['context-dir'])) : await mkdtemp(path.join(os.tmpdir(), 'rlm-server-context-'));
if (keepContext) {
  if (existsSync(contextDir) && (await readdir(contextDir)).length > 0) usage(`--context-dir ${contextDir} is not empty`);
  await mkdir(contextDir, { recursive: true });
}
const rootfs = path.join(contextDir, 'rootfs');

try {
  // --- the rlm package and its production dependencies -------------------------------------------
  // `pnpm deploy` copies the package's published files (package.json `files`) and installs its
  // production dependencies from the lockfile into the target, taking them from the store. pnpm 10
  // deploys from the shared lockfile only with inject-workspace-packages, which changes nothing
  // here (rlm has no workspace packages among its production dependencies); without it pnpm
  // re-resolves every version, which needs the registry.
  const appDir = path.join(rootfs, APP_DIR.slice(1));
  progress(`pnpm deploy --prod of the rlm package ${version} into the build context`);
  await run('pnpm', ['--config.inject-workspace-packages=true', '--filter', 'rlm', 'deploy', '--prod', '--prefer-offline', appDir], { cwd: ROOT });
  await rm(path.join(appDir, 'pnpm-lock.yaml'), { force: true });
  for (const file of ['bin/rlm.js', 'dist/bundle/cli.js', 'dist/sandbox-assets/Dockerfile.sandbox', 'node_modules/pyodide/package.json']) {
    if (!existsSync(path.join(appDir, file)))
      throw new Error(`pnpm deploy left out ${APP_DIR}/${file}; check orchestrator/package.json "files" and the rlm package's dependencies`);
  }

  // --- Node and what it loads (scratch only) -----------------------------------------------------
  if (baseImage === SCRATCH) {
    const node = await inspectNode(options.node);
    progress(`Node ${node.version} (${node.machine}) from ${node.binary.realPath} with ${node.libraries.length} shared libraries`);
    await place(node.binary.realPath, IMAGE_NODE_PATH, 0o755);
    for (const library of node.libraries) await place(library.realPath, library.imagePath, library.mode);
    // Before glibc 2.34 the name services that getaddrinfo loads were libraries of their own, which
    // ldd does not list; where they exist next to libc they come along (from 2.34 on they are stubs).
    const libc = node.libraries.find((library) => /\/libc\.so\.6$/.test(library.imagePath));
    if (libc) {
      for (const name of ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2']) {
        const file = path.join(path.dirname(libc.imagePath), name);
        if (existsSync(file) && !node.libraries.some((library) => library.imagePath === file)) await place(file, file, 0o644);
      }
    }
    const home = '/data';
    await writeRootfsFile('/etc/passwd', `root:x:0:0:root:${home}:/usr/sbin/nologin\nrlm:x:${SERVER_UID}:${SERVER_UID}:rlm server:${home}:/usr/sbin/nologin\n`);
    await writeRootfsFile('/etc/group', `root:x:0:\nrlm:x:${SERVER_UID}:\n`);
    // No nsswitch.conf means glibc's built-in default, which asks DNS before /etc/hosts.
    await writeRootfsFile('/etc/nsswitch.conf', 'passwd: files\ngroup: files\nhosts: files dns\n');
  }

  // `docker exec <container> rlm …`: a launcher with an absolute interpreter, since the package's
  // bin starts with `#!/usr/bin/env node` and a scratch image has no /usr/bin/env.
  await writeRootfsFile('/usr/local/bin/rlm', `#!${IMAGE_NODE_PATH}\nimport('${APP_DIR}/bin/rlm.js');\n`, 0o755);
  await mkdir(path.join(rootfs, 'tmp'), { recursive: true });
  await chmod(path.join(rootfs, 'tmp'), 0o1777);
  const dataDir = path.join(contextDir, 'owned', 'data');
  await mkdir(dataDir, { recursive: true });
  await chmod(dataDir, 0o770);
  await copyFile(path.join(ROOT, 'Dockerfile'), path.join(contextDir, 'Dockerfile'));

  const contextBytes = await treeSize(contextDir);
  progress(`context ${(contextBytes / 1024 / 1024).toFixed(1)} MiB in ${contextDir}; docker build -t ${tag} (base ${baseImage})`);

  // --- the build ---------------------------------------------------------------------------------
  const previousId = await capture('docker', ['image', 'inspect', '--format', '{{.Id}}', tag], { quiet: true }).then(
    (id) => id.trim(),
    () => undefined,
  );
  await run('docker', [
    'build',
    '--build-arg',
    `BASE_IMAGE=${baseImage}`,
    '--label',
    `org.opencontainers.image.title=rlm-server`,
    '--label',
    `org.opencontainers.image.version=${version}`,
    '--label',
    `rlm.image.base=${baseImage}`,
    '--tag',
    tag,
    contextDir,
  ]);
  const inspected = /** @type {Array<{ Id: string, Size: number }>} */ (JSON.parse(await capture('docker', ['image', 'inspect', tag])));
  const image = inspected[0];
  if (!image) throw new Error(`docker build succeeded but ${tag} is not on the engine`);
  const durationMs = Math.round(performance.now() - started);
  const result = { tag, imageId: image.Id, baseImage, sizeBytes: image.Size, contextBytes, durationMs };
  progress(`built ${tag} (${image.Id.slice(0, 19)}, ${(image.Size / 1000 / 1000).toFixed(0)} MB, on ${baseImage}) in ${(durationMs / 1000).toFixed(1)} s`);
  // The image this build replaced under the tag would stay behind untagged (hundreds of MB per
  // rebuild); it goes unless a container still uses it.
  if (previousId !== undefined && previousId !== image.Id) {
    await capture('docker', ['image', 'rm', previousId], { quiet: true }).then(
      () => progress(`removed the previous ${tag} (${previousId.slice(0, 19)})`),
      () => progress(`kept the previous ${tag} (${previousId.slice(0, 19)}): a container still uses it`),
    );
  }
  if (options.json) process.stdout.write(`${JSON.stringify(result)}\n`);
} catch (error) {
  // Not fail(): process.exit would skip the clean-up below.
  progress(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
} finally {
  if (!keepContext) await rm(contextDir, { recursive: true, force: true });
}

/**
 * The Node binary and its libraries, as the sandbox image's builder finds them (orchestrator's
 * node-runtime.ts, built to dist/ by `pnpm build`): `ldd`, else the binary's ELF interpreter.
 * @param {string | undefined} nodeBinary
 * @returns {Promise<{ binary: { realPath: string }, version: string, machine: string, libraries: Array<{ imagePath: string, realPath: string, mode: number }> }>}
 */
async function inspectNode(nodeBinary) {
  // A variable, not a literal: the workspace typechecks before anything is built.
  const module = pathToFileURL(path.join(ORCHESTRATOR, 'dist', 'sandbox', 'image', 'node-runtime.js')).href;
  const { inspectNodeRuntime } = /** @type {{ inspectNodeRuntime: (binary?: string) => ReturnType<typeof inspectNode> }} */ (await import(module));
  return inspectNodeRuntime(nodeBinary);
}

/**
 * Copies a host file to `imagePath` in rootfs/ (a clone where the filesystem can, else a copy),
 * keeping its mtime: the sandbox image the server builds from this Node is tagged by a hash that
 * includes the Node binary's and libraries' mtimes, so an unchanged Node rebuilt into a new server
 * image keeps mapping to the sandbox image already on the engine.
 * @param {string} from @param {string} imagePath @param {number} mode
 */
async function place(from, imagePath, mode) {
  const to = path.join(rootfs, imagePath.slice(1));
  await mkdir(path.dirname(to), { recursive: true });
  await copyFile(from, to, constants.COPYFILE_FICLONE);
  await chmod(to, mode);
  const info = await stat(from);
  await utimes(to, info.atime, info.mtime);
}

/** @param {string} imagePath @param {string} text @param {number} [mode] */
async function writeRootfsFile(imagePath, text, mode = 0o644) {
  const to = path.join(rootfs, imagePath.slice(1));
  await mkdir(path.dirname(to), { recursive: true });
  await writeFile(to, text, { mode });
  await chmod(to, mode);
}

/** Bytes of the regular files under `dir`, symlinks not followed. @param {string} dir @returns {Promise<number>} */
async function treeSize(dir) {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await treeSize(file);
    else if (entry.isFile()) total += (await lstat(file)).size;
  }
  return total;
}

/**
 * Runs a command with its output on our stderr.
 * @param {string} command @param {string[]} args @param {{ cwd?: string }} [options]
 */
function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, stdio: ['ignore', process.stderr, process.stderr] });
    child.on('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.on('exit', (code, signal) =>
      code === 0 ? resolve(undefined) : reject(new Error(`\`${command} ${args.join(' ')}\` failed (${signal ?? `exit ${code}`})`)),
    );
  });
}

/**
 * Runs a command and returns its stdout; its stderr goes to ours unless `quiet`.
 * @param {string} command @param {string[]} args @param {{ quiet?: boolean }} [options] @returns {Promise<string>}
 */
function capture(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', options.quiet ? 'ignore' : process.stderr] });
    /** @type {Buffer[]} */
    const chunks = [];
    child.stdout.on('data', (chunk) => chunks.push(chunk));
    child.on('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`)));
    child.on('exit', (code) =>
      code === 0 ? resolve(Buffer.concat(chunks).toString('utf8')) : reject(new Error(`\`${command} ${args.join(' ')}\` failed (exit ${code})`)),
    );
  });
}
