/**
 * Making sure the sandbox image exists: tag it by a hash of its inputs, build it when that tag is
 * missing, and never pull anything (the default base is `scratch`).
 */
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { AbortedError, SandboxImageError } from '../../errors.js';
import { describeDockerError, dockerStatusCode } from '../docker-client.js';
import { locateSandboxAssets, type LocateSandboxAssetsOptions } from './assets.js';
import { SCRATCH, createBuildContext, packBuildContext, type BuildContext } from './build-context.js';
import { inspectNodeRuntime } from './node-runtime.js';

/** Repository part of every sandbox image tag. */
export const SANDBOX_IMAGE_REPOSITORY = 'rlm-sandbox';

/** Image label holding the full inputs hash; a tag whose image lacks the matching label is rebuilt. */
export const IMAGE_INPUTS_LABEL = 'rlm.image.inputs';

/** Environment variable naming the base image (default `scratch`). */
export const SANDBOX_BASE_IMAGE_ENV = 'RLM_SANDBOX_BASE_IMAGE';

/** One line of build output, as it arrives. */
export interface SandboxImageBuildEvent {
  /** `context`: assembling/sending the build context; `build`: a line from the engine's builder. */
  phase: 'context' | 'build';
  /** One line of text, without its newline: a step, an output line or an `ERROR: …` the engine reported. */
  message: string;
}

/** Options of {@link ensureSandboxImage} and {@link buildSandboxImage}: the engine, the base image and the Node binary the image is built from, progress and cancellation. */
export interface EnsureSandboxImageOptions extends Pick<LocateSandboxAssetsOptions, 'bundleDir' | 'dockerfile'> {
  /** The Docker engine to inspect and build on (see `createDockerClient`). */
  docker: Docker;
  /** Abandons the wait (the call rejects with `AbortedError`); the build itself stops when every caller waiting on it has aborted. */
  signal?: AbortSignal;
  /**
   * Called with each line of progress while this call builds the image: nothing when the image is
   * up to date, nor for a call that joins a build another call started. Must not throw.
   */
  onProgress?: (event: SandboxImageBuildEvent) => void;
  /**
   * Image to build on. Default `RLM_SANDBOX_BASE_IMAGE`, else `scratch`: the host's Node binary and
   * its libraries are copied in and nothing is pulled. Any other value (e.g.
   * `node:24-bookworm-slim`) must provide Node at `/usr/local/bin/node`; the engine pulls it if absent.
   */
  baseImage?: string;
  /** Node binary to copy into a `scratch` image; default `RLM_SANDBOX_NODE`, else the running node. Must be a Linux ELF. */
  nodeBinary?: string;
}

/** The sandbox image {@link ensureSandboxImage} found or built. */
export interface SandboxImage {
  /** `rlm-sandbox:<first 16 hex of the inputs hash>`. */
  tag: string;
  /** True when this call built the image (or waited for a concurrent call that did). */
  built: boolean;
  /** Wall time of this call, in milliseconds. */
  durationMs: number;
  /** The engine's image id (`sha256:…`). */
  imageId: string;
}

interface ResolvedInputs {
  tag: string;
  context: BuildContext;
  baseImage: string;
}

interface SharedOperation {
  promise: Promise<Omit<SandboxImage, 'durationMs'>>;
  controller: AbortController;
  waiters: number;
}

// Concurrent calls for the same tag share one inspect-and-build, so a burst of sandboxes builds once.
const inflight = new Map<string, SharedOperation>();

/**
 * Returns the tag of an up-to-date sandbox image, building it first when missing.
 *
 * Concurrent calls in this process for the same inputs share one build; aborting one caller's
 * `signal` only abandons the build when every caller waiting on it has aborted.
 *
 * @throws SandboxImageError when the assets are missing or the build fails (message names the
 *   failing Dockerfile step; `buildLog` holds the tail of the output).
 * @throws InvalidOptionError when `nodeBinary`/`RLM_SANDBOX_NODE` is not a usable Linux Node binary.
 * @throws AbortedError when `signal` fires first.
 */
export async function ensureSandboxImage(options: EnsureSandboxImageOptions): Promise<SandboxImage> {
  return run(options, false);
}

/**
 * Builds the sandbox image even when its tag exists (for `rlm sandbox build`). Same errors as
 * {@link ensureSandboxImage}.
 */
export async function buildSandboxImage(options: EnsureSandboxImageOptions): Promise<SandboxImage> {
  return run(options, true);
}

/** Computes the tag the current inputs map to, without contacting the engine. */
export async function sandboxImageTag(options: Omit<EnsureSandboxImageOptions, 'docker'>): Promise<string> {
  return (await resolveInputs(options)).tag;
}

async function run(options: EnsureSandboxImageOptions, force: boolean): Promise<SandboxImage> {
  const started = performance.now();
  const { signal } = options;
  throwIfAborted(signal);
  const inputs = await resolveInputs(options);
  throwIfAborted(signal);

  const key = force ? `${inputs.tag}#build` : inputs.tag;
  let shared = inflight.get(key);
  if (!shared) {
    const controller = new AbortController();
    const previous = force ? inflight.get(inputs.tag)?.promise.catch(() => undefined) : undefined;
    const operation: SharedOperation = {
      controller,
      waiters: 0,
      promise: (async () => {
        await previous;
        if (!force) {
          const existing = await inspectImage(options.docker, inputs.tag, controller.signal);
          if (existing && existing.labels[IMAGE_INPUTS_LABEL] === inputs.context.inputsHash) {
            return { tag: inputs.tag, built: false, imageId: existing.id };
          }
        }
        const imageId = await build(options, inputs, controller.signal);
        return { tag: inputs.tag, built: true, imageId };
      })(),
    };
    shared = operation;
    inflight.set(key, operation);
    const forget = () => {
      if (inflight.get(key) === operation) inflight.delete(key);
    };
    operation.promise.then(forget, forget);
  }
  const result = await join(shared, signal);
  return { ...result, durationMs: Math.round(performance.now() - started) };
}

async function join(shared: SharedOperation, signal: AbortSignal | undefined): Promise<Omit<SandboxImage, 'durationMs'>> {
  shared.waiters += 1;
  if (!signal) return shared.promise;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      shared.waiters -= 1;
      if (shared.waiters === 0) shared.controller.abort(signal.reason);
      reject(new AbortedError('building the sandbox image was aborted', { cause: signal.reason }));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([shared.promise, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}

async function resolveInputs(options: Omit<EnsureSandboxImageOptions, 'docker'>): Promise<ResolvedInputs> {
  const assets = locateSandboxAssets({
    ...(options.bundleDir !== undefined ? { bundleDir: options.bundleDir } : {}),
    ...(options.dockerfile !== undefined ? { dockerfile: options.dockerfile } : {}),
  });
  const baseImage = options.baseImage ?? (process.env[SANDBOX_BASE_IMAGE_ENV] || SCRATCH);
  const node = baseImage === SCRATCH ? await inspectNodeRuntime(options.nodeBinary) : undefined;
  const context = await createBuildContext({ assets, baseImage, node });
  return { tag: `${SANDBOX_IMAGE_REPOSITORY}:${context.inputsHash.slice(0, 16)}`, context, baseImage };
}

async function inspectImage(docker: Docker, tag: string, signal: AbortSignal): Promise<{ id: string; labels: Record<string, string> } | undefined> {
  try {
    // The typings miss the options argument dockerode accepts.
    const image = docker.getImage(tag);
    const inspect = image.inspect as (options: { abortSignal: AbortSignal }) => Promise<Docker.ImageInspectInfo>;
    const info = await inspect.call(image, { abortSignal: signal });
    return { id: info.Id, labels: info.Config?.Labels ?? {} };
  } catch (error) {
    if (dockerStatusCode(error) === 404) return undefined;
    throw new SandboxImageError(`cannot inspect the sandbox image ${tag}: ${describeDockerError(error)}`, '', { cause: error });
  }
}

const LOG_TAIL_CHARS = 8_000;

interface BuildEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

async function build(options: EnsureSandboxImageOptions, inputs: ResolvedInputs, signal: AbortSignal): Promise<string> {
  const { docker, onProgress } = options;
  const { tag, context, baseImage } = inputs;
  const log: string[] = [];
  const emit = (phase: SandboxImageBuildEvent['phase'], message: string) => {
    log.push(message);
    onProgress?.({ phase, message });
  };
  emit('context', `building ${tag} on ${baseImage} (context ${(context.contentBytes / 1024 / 1024).toFixed(1)} MiB)`);

  // The context is produced while the engine reads it; if producing it fails (a host file vanished
  // or changed size), the request is cut off so the engine stops waiting for the rest.
  const local = new AbortController();
  const requestSignal = AbortSignal.any([signal, local.signal]);
  const pack = packBuildContext(context, requestSignal);
  let contextError: Error | undefined;
  pack.on('error', (error: Error) => {
    contextError = error;
    local.abort(error);
  });
  const archive = Readable.from(pack, { objectMode: false });
  let lastStep: string | undefined;
  let engineError: string | undefined;
  let imageId: string | undefined;
  try {
    const response = (await docker.buildImage(archive, {
      t: tag,
      buildargs: { BASE_IMAGE: baseImage },
      labels: { [IMAGE_INPUTS_LABEL]: context.inputsHash, 'rlm.image.base': baseImage },
      rm: true,
      forcerm: true,
      abortSignal: requestSignal,
    })) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        response,
        (error: Error | null) => (error ? reject(error) : resolve()),
        (event: BuildEvent) => {
          if (event.errorDetail || event.error) {
            engineError = event.errorDetail?.message ?? event.error;
            emit('build', `ERROR: ${engineError}`);
          }
          if (event.aux?.ID) imageId = event.aux.ID;
          const text = event.stream ?? event.status;
          if (!text) return;
          for (const line of text.split('\n')) {
            const trimmed = line.trimEnd();
            if (!trimmed) continue;
            if (/^Step \d+\/\d+ : /.test(trimmed)) lastStep = trimmed;
            emit('build', trimmed);
          }
        },
      );
    });
  } catch (error) {
    pack.destroy();
    if (signal.aborted) throw new AbortedError('building the sandbox image was aborted', { cause: error });
    if (contextError) {
      throw buildError(tag, lastStep, `sending the build context failed: ${contextError.message}`, log, contextError);
    }
    throw buildError(tag, lastStep, describeDockerError(error), log, error);
  }
  if (engineError !== undefined) throw buildError(tag, lastStep, engineError, log);
  if (imageId) return imageId;
  const built = await inspectImage(docker, tag, signal);
  if (!built) throw buildError(tag, lastStep, 'the engine reported success but the image is missing', log);
  return built.id;
}

function buildError(tag: string, step: string | undefined, reason: string, log: string[], cause?: unknown): SandboxImageError {
  const tail = log.join('\n').slice(-LOG_TAIL_CHARS);
  const where = step ? ` at ${JSON.stringify(step)}` : '';
  const lastLines = tail.split('\n').slice(-10).join('\n');
  return new SandboxImageError(
    `building the sandbox image ${tag} failed${where}: ${reason}\n--- last lines of the build log ---\n${lastLines}`,
    tail,
    cause === undefined ? undefined : { cause },
  );
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('building the sandbox image was aborted', { cause: signal.reason });
}
