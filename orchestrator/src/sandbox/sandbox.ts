/**
 * A sandbox: one hardened container running the REPL server, driven over its control channel.
 *
 * Users enter through {@link Sandbox.create}; the constructor is internal. A sandbox survives its
 * container: when a cell kills the container (memory exhausted) or the container breaks the
 * protocol, the cell's result says so with `stateLost: true` and the next cell runs in a fresh
 * container with the contexts loaded and the tools defined again.
 *
 * Everything inside the container is treated as hostile, the REPL server included: the host holds
 * its own deadline on every call, pings the container and gives up on it when it stops answering,
 * caps the sub-calls and tool calls it serves for it, and cuts every result to its limits again.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CONTROL_MOUNT_PATH,
  CONTROL_TOKEN_FILE_NAME,
  ChannelError,
  ConnectionClosedError,
  DEFAULT_CELL_TIMEOUT_MS,
  DEFAULT_MAX_SANDBOX_LIFETIME_MS,
  DEFAULT_OUTPUT_LIMIT_CHARS,
  DefineTools,
  Execute,
  formatReplServerArgs,
  LoadContext,
  ProtocolViolationError,
  RemoteError,
  RequestAbortedError,
  Subcall,
  ToolCall,
  type ExecuteResult,
  type Language,
  type LoadContextParams,
  type LoadContextResult,
  type RpcConnection,
  type ToolCallParams,
  type ToolCallResult,
  type ToolDefinition,
} from '@rlm/shared';
import type Dockerode from 'dockerode';
import { AbortedError, InvalidOptionError, RlmError, SandboxClosedError, SandboxError, SandboxUnresponsiveError, errorMessage, toError } from '../errors.js';
import { debug, warn } from '../logging.js';
import { buildContainerSpec, DEFAULT_SANDBOX_LIMITS, type SandboxLimits } from './container-spec.js';
import { writeContextFile, type ContextValue } from './context-files.js';
import { CallGate, resolveCallCaps, type SandboxCallCaps } from './call-caps.js';
import { ControlListener, DEFAULT_LIVENESS_TIMEOUT_MS, UnixSocketEndpoint } from './control/control-listener.js';
import { assertRuntimeAvailable, createDockerClient, describeDockerError, describeDockerHost, dockerInfo, unenforcedLimitsReason } from './docker-client.js';
import { ensureSandboxImage } from './image/ensure-sandbox-image.js';
import { createSandboxStateDir, reapOrphanedSandboxes, sandboxOwnerLabels } from './reaper.js';
import { captureContainerOutput, type OutputTail } from './container-output.js';
import { CellCalls, refusedSubcall, refusedToolCall, serveInCell } from './cell-calls.js';
import type { ExecuteOptions, Repl, SubcallHandler } from './repl.js';
import { recapExecuteResult } from './result-caps.js';
import { ToolDispatcher, toolDefinitions, type SandboxTool, type SandboxTools } from './tools.js';

export type { ExecuteOptions, SubcallHandler } from './repl.js';
export { DEFAULT_SANDBOX_CALL_CAPS, type SandboxCallCaps } from './call-caps.js';

/**
 * How long past a cell's timeout the REPL itself may take to answer: it waits 700 ms for a cell
 * that ignores its interrupt before it replaces the cell's runtime. The host's own grace comes on top.
 */
const REPL_GRACE_MS = 1_000;
/** Default {@link SandboxOptions.hostGraceMs}. */
export const DEFAULT_HOST_GRACE_MS = 10_000;
/** Default {@link SandboxOptions.hostCallTimeoutMs}. */
export const DEFAULT_HOST_CALL_TIMEOUT_MS = 60_000;
/** The longest timer Node keeps (about 24.8 days); longer deadlines would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Options of `Sandbox.create`: the engine, image, limits, language, context, sub-call handler, tools and timeouts (in milliseconds). */
export interface SandboxOptions {
  /**
   * The language of this sandbox's cells: `javascript` (default) or `python` (CPython on Pyodide,
   * loaded when the container starts, so `create` takes about a second longer and the first cell
   * is fast). One sandbox runs one language; a cell in the other is refused.
   */
  language?: Language;
  /** Docker client; default from `DOCKER_HOST` or the local socket. */
  docker?: Dockerode;
  /** Image to run; default: the rlm sandbox image, built on first use. */
  image?: string;
  /** Memory, CPU, pids and scratch limits; unset fields take {@link DEFAULT_SANDBOX_LIMITS}. */
  limits?: Partial<SandboxLimits>;
  /** OCI runtime, e.g. `runsc` for gVisor; must be registered with the daemon. */
  runtime?: string;
  /** Loaded as `context` before `create` resolves. */
  context?: ContextValue;
  /** Default per-cell wall-clock limit in milliseconds (default 120 000). */
  cellTimeoutMs?: number;
  /** Default per-stream output cap in characters (default 20 000). */
  outputLimitChars?: number;
  /** How long the container may take to start and connect, in milliseconds (default 30 000). */
  startTimeoutMs?: number;
  /** Serves the cells' sub-calls; without one, every sub-call answers with an error string. */
  onSubcall?: SubcallHandler;
  /**
   * Host-side functions cells call by name, synchronously (`const rows = lookup_customer("c-42")`);
   * defined before `create` resolves and again in every replacement container. Names must be
   * identifiers that are not reserved by the REPL, keywords or built-in globals (checked before
   * anything starts). See {@link SandboxTool}; {@link Sandbox.defineTools} changes the set later.
   */
  tools?: Record<string, SandboxTool>;
  /**
   * How long past a cell's timeout (and the REPL's own second of grace) the host waits for the cell's
   * result, in milliseconds; default 10 000. Past it the host removes the container: the result has
   * status `timeout`, error type `SandboxUnresponsiveError`, `stateLost: true`, and the next cell runs
   * in a fresh container. Room for a loaded machine, on which a container's timers run late.
   */
  hostGraceMs?: number;
  /**
   * The host's deadline for loading a context and defining tools, in milliseconds; default 60 000.
   * It is also added to the deadline of the first call in a new container or after the REPL restarted
   * its cell runtime, which then starts the runtime and loads every context first. Past it the call
   * throws {@link SandboxUnresponsiveError} and the next call runs in a fresh container.
   */
  hostCallTimeoutMs?: number;
  /**
   * How long the container may go without answering the host's pings, in milliseconds; default
   * 20 000. Past it the host removes the container, as for a missed deadline.
   */
  livenessTimeoutMs?: number;
  /**
   * Longest life of one container, in milliseconds; default 24 h (`DEFAULT_MAX_SANDBOX_LIFETIME_MS`).
   * The REPL server exits at it whatever happens (so a container never outlives a dead host for
   * longer); the host replaces the container a little before, and the next call says the state was lost.
   */
  maxLifetimeMs?: number;
  /**
   * Caps on the sub-calls and tool calls the host serves for this sandbox at once, counted across all
   * of its requests; unset fields take {@link DEFAULT_SANDBOX_CALL_CAPS}. A request over a cap is
   * answered at once with an error string per prompt (or a `ToolError`) naming the cap, never queued.
   */
  callCaps?: Partial<SandboxCallCaps>;
  /**
   * Cancels {@link Sandbox.create} only: it rejects with `AbortedError` and leaves nothing running.
   * The sandbox's later calls take their own signals; it lives until {@link Sandbox.close}.
   */
  signal?: AbortSignal;
}

let reapedThisProcess = false;

/** Per engine address: why it does not enforce resource limits (undefined: it does, or it could not tell); asked once per process. */
const limitsEnforcement = new Map<string, Promise<string | undefined>>();

/**
 * Asks the engine once per process whether it enforces memory, CPU and pids limits, and warns once
 * when it does not. Never throws: an engine that cannot answer fails later, where it matters.
 */
function checkLimitsEnforcement(docker: Dockerode): Promise<string | undefined> {
  const host = describeDockerHost(docker);
  let check = limitsEnforcement.get(host);
  if (!check) {
    check = dockerInfo(docker).then(
      (info) => {
        const reason = unenforcedLimitsReason(info);
        if (reason) {
          warn(
            `${reason}: sandboxes on ${host} run WITHOUT their memory, CPU and pids limits (limits.memoryBytes, limits.cpus, ` +
              `limits.pids are accepted but not applied), so a cell can take all of the host's memory, CPUs and processes; ` +
              `the REPL's heap cap still applies. For enforced limits use a rootful engine or a cgroup v2 host.`,
          );
        }
        return reason;
      },
      (error: unknown) => {
        limitsEnforcement.delete(host);
        debug(`could not ask ${host} whether it enforces limits: ${describeDockerError(error)}`);
        return undefined;
      },
    );
    limitsEnforcement.set(host, check);
  }
  return check;
}

/** A REPL in a hardened Docker container (no network, read-only root, no capabilities, limits on memory, CPU and processes): cells run in it with the context loaded as variables, and reach the host only through sub-calls and tools. Create with `Sandbox.create`; close with `close()` or `await using` (idempotent; the container is removed). */
export class Sandbox implements Repl {
  /** Unique per sandbox; names its container `rlm-sandbox-<id>` and its state directory. */
  readonly id: string;
  /**
   * Why the engine does not apply this sandbox's memory, CPU and pids limits (e.g. a rootless
   * daemon on a cgroup v1 host); undefined when it applies them. Also warned about once per process.
   */
  readonly unenforcedLimitsReason: string | undefined;
  /** The language of this sandbox's cells. */
  readonly language: Language;
  readonly #docker: Dockerode;
  readonly #image: string;
  readonly #limits: SandboxLimits;
  readonly #options: SandboxOptions;
  #subcallHandler: SubcallHandler | undefined;
  readonly #stateDir: string;
  readonly #contextDir: string;
  readonly #loaded = new Map<string, LoadContextParams>();
  readonly #toolDispatcher: ToolDispatcher;
  #toolDefinitions: ToolDefinition[];
  #instance: ContainerInstance | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  #restarts = 0;
  readonly #callGate: CallGate;
  /** A container was replaced outside a cell (a failed load or tool definition): the next cell's result says the state was lost. */
  #stateLostUnreported = false;
  /** The next call starts the REPL's cell runtime (a new container, or the REPL restarted it): its deadline gets room for that. */
  #runtimeStartPending = false;
  /** The cell running now, whose sub-calls and tool calls end with it; undefined between cells. */
  #cell: CellCalls | undefined;

  private constructor(init: {
    id: string;
    docker: Dockerode;
    image: string;
    limits: SandboxLimits;
    options: SandboxOptions;
    stateDir: string;
    unenforcedLimitsReason: string | undefined;
    tools: SandboxTools;
    toolDefinitions: ToolDefinition[];
    callCaps: SandboxCallCaps;
  }) {
    this.id = init.id;
    this.#callGate = new CallGate(init.callCaps);
    this.unenforcedLimitsReason = init.unenforcedLimitsReason;
    this.language = init.options.language ?? 'javascript';
    this.#docker = init.docker;
    this.#image = init.image;
    this.#limits = init.limits;
    this.#options = init.options;
    this.#subcallHandler = init.options.onSubcall;
    this.#stateDir = init.stateDir;
    this.#contextDir = path.join(init.stateDir, 'context');
    this.#toolDispatcher = new ToolDispatcher(init.tools);
    this.#toolDefinitions = init.toolDefinitions;
  }

  /**
   * Starts a container and waits until its REPL is connected (and `options.context` is loaded).
   *
   * @throws {DockerUnavailableError} the engine cannot be reached.
   * @throws {SandboxImageError} the image was missing and could not be built.
   * @throws {SandboxError} the container failed to start or connect within `startTimeoutMs`.
   * @throws {InvalidOptionError} an option is out of range, a tool's name or shape does not fit (`tools.<name>`;
   *   checked before anything starts), or `runtime` is not registered with the daemon.
   * @throws {SandboxUnresponsiveError} the container stopped answering while the tools were defined or the context loaded.
   * @throws {AbortedError} `options.signal` fired; nothing is left running.
   */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const limits = { ...DEFAULT_SANDBOX_LIMITS, ...options.limits };
    validateTimes(options);
    const callCaps = resolveCallCaps(options.callCaps);
    if (options.language !== undefined && options.language !== 'javascript' && options.language !== 'python') {
      throw new InvalidOptionError('language', `must be 'javascript' or 'python', got ${JSON.stringify(options.language)}`);
    }
    const tools = { ...options.tools };
    const definitions = toolDefinitions(tools);
    const docker = options.docker ?? createDockerClient();
    const signal = options.signal;
    if (!reapedThisProcess) {
      reapedThisProcess = true;
      // Leftovers of crashed processes go in the background; they never delay this sandbox.
      void reapOrphanedSandboxes({ docker }).catch((error: unknown) => warn(`could not reap orphaned sandboxes: ${errorMessage(error)}`));
    }
    if (options.runtime) assertRuntimeAvailable(await dockerInfo(docker, signal ? { signal } : {}), options.runtime);
    const [image, unenforcedLimitsReason] = await Promise.all([
      options.image ?? ensureSandboxImage({ docker, ...(signal ? { signal } : {}) }).then((ensured) => ensured.tag),
      checkLimitsEnforcement(docker),
    ]);
    const id = randomBytes(6).toString('hex');
    const stateDir = await createSandboxStateDir(id);
    const sandbox = new Sandbox({ id, docker, image, limits, options, stateDir, unenforcedLimitsReason, tools, toolDefinitions: definitions, callCaps });
    try {
      await mkdir(path.join(stateDir, 'context'), { recursive: true, mode: 0o755 });
      await mkdir(path.join(stateDir, 'control'), { recursive: true, mode: 0o755 });
      sandbox.#instance = await sandbox.#startInstance(signal);
      if (definitions.length > 0) await sandbox.#define(sandbox.#instance, definitions, signal ?? new AbortController().signal);
      if (options.context !== undefined) await sandbox.loadContext(options.context, signal ? { signal } : {});
      return sandbox;
    } catch (error) {
      await sandbox.close();
      if (signal?.aborted) throw new AbortedError('creating the sandbox was aborted', { cause: error });
      throw error;
    }
  }

  /** The id of the container currently serving this sandbox (changes after a crash). */
  get containerId(): string | undefined {
    return this.#instance?.containerId;
  }

  /**
   * Replaces the handler of the cells' sub-calls (a session's sandbox serves one completion, then
   * the next, each with its own budget). Takes effect for the next call a cell makes.
   */
  setSubcallHandler(handler: SubcallHandler | undefined): void {
    this.#subcallHandler = handler;
  }

  /** How many times a crashed container was replaced. */
  get restarts(): number {
    return this.#restarts;
  }

  /** True once `close()` was called (or the sandbox failed for good); every later call throws {@link SandboxClosedError}. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** What the host is serving for this sandbox right now: sub-call requests, their prompts and bytes, tool calls. */
  get callsInFlight(): { subcalls: number; prompts: number; promptBytes: number; toolCalls: number } {
    return this.#callGate.inFlight;
  }

  /**
   * Runs one cell. A cell's own failure (exception, timeout, memory exhausted, even a crash of the
   * container) is reported in the result, not thrown. The result is cut to its limits on the host,
   * whatever the container sent: stdout and stderr to `outputLimitChars` each, a `FINAL` answer over
   * `MAX_FINAL_CHARS` becomes an error result of type `FinalTooLargeError`, variables to `MAX_LISTED_VARIABLES`.
   *
   * The host waits at most the cell's timeout plus one second (the REPL's grace) plus `hostGraceMs`
   * (more for the first call in a new container, see `hostCallTimeoutMs`), and no longer than the
   * container keeps answering pings (`livenessTimeoutMs`). Past either, the container is removed and
   * the result has status `timeout`, error type `SandboxUnresponsiveError` and `stateLost: true`;
   * the next call runs in a fresh container with the contexts loaded and the tools defined again.
   *
   * @throws {SandboxClosedError} the sandbox was closed.
   * @throws {AbortedError} `options.signal` fired; the sandbox is closed.
   * @throws {SandboxError} a replacement container could not be started after a crash.
   * @throws {InvalidOptionError} (`language`) the cell's language is not the sandbox's.
   */
  execute(code: string, options: ExecuteOptions = {}): Promise<ExecuteResult> {
    if (options.language !== undefined && options.language !== this.language) {
      return Promise.reject(
        new InvalidOptionError(
          'language',
          `this sandbox runs ${this.language} cells, not ${options.language}; create one with language: '${options.language}'`,
        ),
      );
    }
    const params = {
      code,
      language: this.language,
      timeoutMs: options.timeoutMs ?? this.#options.cellTimeoutMs ?? DEFAULT_CELL_TIMEOUT_MS,
      outputLimitChars: options.outputLimitChars ?? this.#options.outputLimitChars ?? DEFAULT_OUTPUT_LIMIT_CHARS,
    };
    return this.#serialized(options.signal, async (instance, signal) => {
      const stateLostBefore = this.#stateLostUnreported;
      this.#stateLostUnreported = false;
      const cell = new CellCalls();
      this.#cell = cell;
      try {
        const deadlineMs = params.timeoutMs + REPL_GRACE_MS + (this.#options.hostGraceMs ?? DEFAULT_HOST_GRACE_MS) + this.#runtimeStartAllowance();
        const raw = await instance.guarded('execute', deadlineMs, signal, (callSignal) => instance.connection.request(Execute, params, { signal: callSignal }));
        // The REPL restarted its cell runtime during this cell: its next call starts it again.
        this.#runtimeStartPending = raw.stateLost;
        const result = recapExecuteResult(raw, params.outputLimitChars);
        return stateLostBefore && !result.stateLost ? { ...result, stateLost: true } : result;
      } catch (error) {
        if (error instanceof RemoteError) throw new SandboxError(error.message, this.id, { cause: error });
        if (!isChannelFailure(error) && !(error instanceof SandboxUnresponsiveError)) throw error;
        const diagnosis = await instance.diagnose(toError(error), this.#limits);
        await this.#replaceInstance(signal);
        return crashResult(diagnosis);
      } finally {
        // The cell is over: every call it started is aborted on the host (model requests closed),
        // and settles before the result is handed back, so its records belong to this cell.
        if (this.#cell === cell) this.#cell = undefined;
        this.#toolDispatcher.abortRunning();
        await cell.end(signal.aborted ? 'the cell was cancelled' : 'the cell that made this call ended', this.#options.hostGraceMs ?? DEFAULT_HOST_GRACE_MS);
      }
    });
  }

  /**
   * Binds `variable` (default `context`) to `value` in the REPL. The value travels as a file through
   * the read-only context mount. It is loaded again into a replacement container after a crash.
   *
   * A `ContextFile` (alone, or as the items of a list or the values of a map) is copied or
   * streamed into the mount, never held whole in the host's memory.
   *
   * @throws {SandboxError} with `kind: 'out_of_memory'` when the context does not fit in the
   *   sandbox's memory (`limits.memoryBytes`; the CLI's `--memory-mb`): refused before it was read
   *   when it cannot fit, or the REPL's process or the container was killed for memory while reading
   *   it; the message names the limit and the option to raise.
   * @throws {SandboxError} the REPL could not read the file (e.g. invalid JSON), or the container
   *   stopped while it did (the next call runs in a fresh container; every variable is lost).
   * @throws {SandboxUnresponsiveError} the container did not answer within `hostCallTimeoutMs` or
   *   stopped answering pings; it was removed, and the next call runs in a fresh one.
   * @throws {SandboxClosedError} the sandbox was closed.
   * @throws {AbortedError} `options.signal` fired; the sandbox is closed.
   * @throws {InvalidOptionError} (`context`) the value cannot be loaded: no JSON form, or a file that cannot be read.
   */
  loadContext(value: ContextValue, options: { variable?: string; signal?: AbortSignal } = {}): Promise<LoadContextResult> {
    const variable = options.variable ?? 'context';
    if (this.#toolDefinitions.some((tool) => tool.name === variable)) {
      return Promise.reject(new InvalidOptionError('variable', `"${variable}" is the name of a tool of this sandbox; bind the context to another variable`));
    }
    return this.#serialized(options.signal, async (instance, signal) => {
      const params = await writeContextFile(this.#contextDir, variable, value, { signal });
      const result = await this.#dropOnFailure(instance, () => this.#load(instance, params, signal));
      this.#loaded.set(variable, params);
      return result;
    });
  }

  /**
   * Makes `tools` the sandbox's whole set of custom tools (a tool defined earlier and missing here
   * is removed), in the running container and in every replacement. Resolves with the names now
   * defined, after the REPL has bound them; a cell running meanwhile is waited for first.
   *
   * @throws {InvalidOptionError} a tool's name or shape does not fit (`tools.<name>`), a name is bound
   *   to a context of this sandbox, or the REPL refused a name (a global of its runtime); nothing changed.
   * @throws {SandboxClosedError} the sandbox was closed.
   * @throws {AbortedError} `options.signal` fired; the sandbox is closed.
   * @throws {SandboxUnresponsiveError} the container did not answer within `hostCallTimeoutMs` or
   *   stopped answering pings; it was removed, and the next call runs in a fresh one.
   * @throws {SandboxError} the container stopped while defining them; the next call runs in a fresh one.
   */
  defineTools(tools: Record<string, SandboxTool>, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    let definitions: ToolDefinition[];
    const copy = { ...tools };
    try {
      definitions = toolDefinitions(copy);
      const context = definitions.find((tool) => this.#loaded.has(tool.name));
      if (context) throw new InvalidOptionError(`tools.${context.name}`, 'the name is bound to a context of this sandbox; choose another name');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#serialized(options.signal, async (instance, signal) => {
      const defined = await this.#dropOnFailure(instance, () => this.#define(instance, definitions, signal));
      this.#toolDefinitions = definitions;
      this.#toolDispatcher.tools = copy;
      return defined;
    });
  }

  /** Removes the container and the sandbox's files. Safe to call twice and concurrently; never throws. */
  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= (async () => {
      await this.#instance?.destroy();
      this.#instance = undefined;
      await rm(this.#stateDir, { recursive: true, force: true }).catch((error: unknown) =>
        warn(`could not remove sandbox state ${this.#stateDir}: ${errorMessage(error)}`),
      );
    })();
    return this.#closing;
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Room in a call's deadline for starting the REPL's cell runtime and loading every context first, when the call will. */
  #runtimeStartAllowance(): number {
    return this.#runtimeStartPending ? (this.#options.hostCallTimeoutMs ?? DEFAULT_HOST_CALL_TIMEOUT_MS) : 0;
  }

  async #load(instance: ContainerInstance, params: LoadContextParams, signal: AbortSignal): Promise<LoadContextResult> {
    try {
      const deadlineMs = (this.#options.hostCallTimeoutMs ?? DEFAULT_HOST_CALL_TIMEOUT_MS) + this.#runtimeStartAllowance();
      const result = await instance.guarded('load_context', deadlineMs, signal, (callSignal) =>
        instance.connection.request(LoadContext, params, { signal: callSignal }),
      );
      this.#runtimeStartPending = false;
      return result;
    } catch (error) {
      if (error instanceof RemoteError) {
        if (error.code === 'out_of_memory') throw await this.#contextOutOfMemory(params, remoteDetail(error), error);
        throw new SandboxError(`could not load ${params.variable}: ${error.message}`, this.id, { cause: error });
      }
      throw await this.#channelFailure(instance, error, signal, `loading context "${params.variable}"`, params);
    }
  }

  async #define(instance: ContainerInstance, tools: ToolDefinition[], signal: AbortSignal): Promise<string[]> {
    try {
      const deadlineMs = (this.#options.hostCallTimeoutMs ?? DEFAULT_HOST_CALL_TIMEOUT_MS) + this.#runtimeStartAllowance();
      const result = await instance.guarded('define_tools', deadlineMs, signal, (callSignal) =>
        instance.connection.request(DefineTools, { tools }, { signal: callSignal }),
      );
      this.#runtimeStartPending = false;
      return result.defined;
    } catch (error) {
      if (error instanceof RemoteError) {
        if (error.code === 'invalid_tools' || error.code === 'invalid_params') {
          throw new InvalidOptionError('tools', `the sandbox refused them: ${error.message}`, { cause: error });
        }
        throw new SandboxError(`could not define the tools: ${error.message}`, this.id, { cause: error });
      }
      throw await this.#channelFailure(instance, error, signal, 'defining the tools');
    }
  }

  /**
   * What a load or a tool definition throws when its request failed without an answer, so that no
   * channel error escapes untyped: AbortedError when `signal` fired, SandboxClosedError when the
   * sandbox was closed meanwhile, and when the channel broke, a SandboxError saying how the container
   * ended (`kind: 'out_of_memory'` when it was killed for memory) with the channel's error as its
   * cause, marked so that {@link Sandbox.#dropOnFailure} drops the container. Anything else (a
   * SandboxUnresponsiveError) is returned as it is.
   */
  async #channelFailure(instance: ContainerInstance, error: unknown, signal: AbortSignal, doing: string, params?: LoadContextParams): Promise<unknown> {
    if (signal.aborted) return new AbortedError(`sandbox ${this.id}: ${doing} was aborted`, { cause: error });
    if (!isChannelFailure(error)) return error;
    if (this.#closed) return new SandboxClosedError(`sandbox ${this.id} was closed while ${doing}`, this.id, { cause: error });
    const diagnosis = await instance.diagnose(toError(error), this.#limits);
    const failure =
      diagnosis.type === 'OutOfMemoryError' && params
        ? // How it was killed, without the diagnosis's advice for cells.
          await this.#contextOutOfMemory(params, diagnosis.message.replace(/: the cell needed.*$/s, ''), error)
        : new SandboxError(
            `sandbox ${this.id} failed while ${doing}: ${diagnosis.message}; the next call runs in a fresh container, and every variable is lost`,
            this.id,
            { cause: error, kind: diagnosis.type === 'OutOfMemoryError' ? 'out_of_memory' : 'sandbox_failed' },
          );
    brokenContainerErrors.add(failure);
    return failure;
  }

  /**
   * The error of a context that did not fit in the sandbox's memory: the file's size, the limit, the
   * REPL's `detail` when it gave one, and the option to raise (with a figure for text).
   */
  async #contextOutOfMemory(params: LoadContextParams, detail: string | undefined, cause: unknown): Promise<SandboxError> {
    const bytes = await stat(path.join(this.#contextDir, params.file)).then(
      (info) => info.size,
      () => undefined,
    );
    const limitMb = Math.round(this.#limits.memoryBytes / MIB);
    // Loading text takes twice its size at the peak, and the REPL gets about 70 % of the sandbox's memory.
    const suggestedMb = bytes === undefined ? undefined : Math.ceil(((3 * bytes) / MIB + 256) / 512) * 512;
    return new SandboxError(
      `sandbox ${this.id} ran out of memory loading context "${params.variable}"${bytes === undefined ? '' : ` (a ${formatFileSize(bytes)} file)`} ` +
        `at its memory limit of ${limitMb} MiB${detail ? `: ${detail}` : ''}; raise the limit with limits.memoryBytes ` +
        `(--memory-mb on the CLI${suggestedMb !== undefined && suggestedMb > limitMb ? `, e.g. --memory-mb ${suggestedMb}` : ''}), or load a smaller context`,
      this.id,
      { cause, kind: 'out_of_memory' },
    );
  }

  /**
   * Runs a load or a tool definition on `instance`; when its container stops answering or breaks
   * down meanwhile, the container is removed and dropped, so the next call starts a fresh one. The
   * failure arrives typed (see {@link Sandbox.#channelFailure}): a SandboxError that says how the
   * container ended, SandboxUnresponsiveError when the host gave up on it.
   */
  async #dropOnFailure<T>(instance: ContainerInstance, task: () => Promise<T>): Promise<T> {
    try {
      return await task();
    } catch (error) {
      const broken = error instanceof SandboxUnresponsiveError || brokenContainerErrors.has(toError(error)) || isChannelFailure(error);
      if (!broken || this.#closed) throw error;
      await instance.destroy();
      if (this.#instance === instance) this.#instance = undefined;
      this.#stateLostUnreported = true;
      throw error;
    }
  }

  /** Runs `task` after every earlier call, with a live instance and a signal that also fires on close. */
  #serialized<T>(callerSignal: AbortSignal | undefined, task: (instance: ContainerInstance, signal: AbortSignal) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed) throw new SandboxClosedError(`sandbox ${this.id} is closed`, this.id);
      const instance = this.#instance ?? (await this.#replaceInstance(callerSignal));
      const signal = callerSignal ?? new AbortController().signal;
      try {
        signal.throwIfAborted();
        return await task(instance, signal);
      } catch (error) {
        if (callerSignal?.aborted) {
          // The cell cannot be detached from its REPL: an aborted call takes the sandbox with it.
          await this.close();
          throw new AbortedError(`sandbox ${this.id}: the call was aborted; the sandbox is closed`, { cause: error });
        }
        if (this.#closed && (isChannelFailure(error) || error instanceof SandboxUnresponsiveError)) {
          throw new SandboxClosedError(`sandbox ${this.id} was closed while the call ran`, this.id, { cause: error });
        }
        throw error;
      }
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => {});
    return result;
  }

  /**
   * Removes the current container and starts another, loading every context and defining the tools
   * in it. When that fails, no container is kept: the next call tries again.
   */
  async #replaceInstance(signal: AbortSignal | undefined): Promise<ContainerInstance> {
    await this.#instance?.destroy();
    this.#instance = undefined;
    if (this.#closed) throw new SandboxClosedError(`sandbox ${this.id} is closed`, this.id);
    this.#restarts += 1;
    const instance = await this.#startInstance(signal);
    this.#instance = instance;
    const loadSignal = signal ?? new AbortController().signal;
    try {
      for (const params of this.#loaded.values()) await this.#load(instance, params, loadSignal);
      if (this.#toolDefinitions.length > 0) await this.#define(instance, this.#toolDefinitions, loadSignal);
    } catch (error) {
      await instance.destroy();
      if (this.#instance === instance) this.#instance = undefined;
      this.#stateLostUnreported = true;
      throw error;
    }
    return instance;
  }

  async #startInstance(signal: AbortSignal | undefined): Promise<ContainerInstance> {
    const instance = await ContainerInstance.start({
      docker: this.#docker,
      image: this.#image,
      sandboxId: this.id,
      language: this.language,
      limits: this.#limits,
      stateDir: this.#stateDir,
      contextDir: this.#contextDir,
      ...(this.#options.runtime ? { runtime: this.#options.runtime } : {}),
      startTimeoutMs: this.#options.startTimeoutMs ?? 30_000,
      livenessTimeoutMs: this.#options.livenessTimeoutMs ?? DEFAULT_LIVENESS_TIMEOUT_MS,
      maxLifetimeMs: this.#options.maxLifetimeMs ?? DEFAULT_MAX_SANDBOX_LIFETIME_MS,
      // Looked up per call, so setSubcallHandler also reaches a container that is already running.
      onSubcall: (params, { signal: callSignal }) =>
        serveInCell(
          this.#cell,
          callSignal,
          (cellSignal) => this.#callGate.subcall(params, () => (this.#subcallHandler ?? noSubcalls)(params, { signal: cellSignal })),
          () => refusedSubcall(params),
        ),
      onToolCall: (params, { signal: callSignal }) =>
        serveInCell(
          this.#cell,
          callSignal,
          (cellSignal) => this.#callGate.toolCall(params.name, () => this.#toolDispatcher.call(params, cellSignal)),
          refusedToolCall,
        ),
      ...(signal ? { signal } : {}),
    });
    this.#runtimeStartPending = true;
    return instance;
  }
}

// -------------------------------------------------------------------------------------------------

interface InstanceInit {
  docker: Dockerode;
  image: string;
  sandboxId: string;
  language: Language;
  limits: SandboxLimits;
  stateDir: string;
  contextDir: string;
  runtime?: string;
  startTimeoutMs: number;
  livenessTimeoutMs: number;
  maxLifetimeMs: number;
  onSubcall: SubcallHandler;
  onToolCall: (params: ToolCallParams, options: { signal: AbortSignal }) => Promise<ToolCallResult>;
  signal?: AbortSignal;
}

/** How a container ended, as far as the host can tell. */
interface CrashDiagnosis {
  type: string;
  message: string;
  status: 'error' | 'timeout';
}

/** Why the host gave up on a container that may still be running. */
interface HostVerdict {
  reason: SandboxUnresponsiveError['reason'];
  /** Completes "the sandbox …", e.g. "answered no ping for 21 s". */
  detail: string;
}

/** One container and its control connection. Internal to {@link Sandbox}. */
class ContainerInstance {
  #destroyed: Promise<void> | undefined;
  #exit: Promise<number | undefined>;
  #verdict: HostVerdict | undefined;
  #lifetimeTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly sandboxId: string,
    readonly containerId: string,
    readonly connection: RpcConnection,
    private readonly container: Dockerode.Container,
    private readonly listener: ControlListener,
    exit: Promise<number | undefined>,
    private readonly output: { tail: OutputTail; detach: () => void },
  ) {
    this.#exit = exit;
  }

  static async start(init: InstanceInit): Promise<ContainerInstance> {
    const controlDir = path.join(init.stateDir, 'control');
    const tokenFile = path.join(controlDir, CONTROL_TOKEN_FILE_NAME);
    // Set once the instance exists; the listener only judges liveness after hello, by which time it does.
    let instance: ContainerInstance | undefined;
    const listener = await ControlListener.open({
      endpoint: new UnixSocketEndpoint(controlDir),
      sandboxId: init.sandboxId,
      livenessTimeoutMs: init.livenessTimeoutMs,
      // The start deadline bounds the wait for hello; a Python REPL says hello only once its interpreter is up.
      helloTimeoutMs: init.startTimeoutMs,
      onUnresponsive: ({ silentMs }) =>
        instance?.giveUp({
          reason: 'liveness',
          detail: `answered no ping for ${formatSeconds(silentMs)} (livenessTimeoutMs is ${init.livenessTimeoutMs})`,
        }),
    });
    let container: Dockerode.Container | undefined;
    let creating: Promise<Dockerode.Container> | undefined;
    let output: { tail: OutputTail; detach: () => void } | undefined;
    const timeout = AbortSignal.timeout(init.startTimeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      // The token travels as a file of the control directory, not on the command line, where any
      // process of the container could read it in /proc/1/cmdline. Readable by the container's user
      // (another uid, mapped elsewhere under rootless Docker); removed once the container said hello.
      await rm(tokenFile, { force: true });
      await writeFile(tokenFile, listener.token, { mode: 0o444, flag: 'wx' });
      await chmod(tokenFile, 0o444);
      const heapLimitMb = replHeapLimitMb(init.limits.memoryBytes, init.language);
      const spec = buildContainerSpec({
        image: init.image,
        name: `rlm-sandbox-${init.sandboxId}-${randomBytes(3).toString('hex')}`,
        labels: { ...sandboxOwnerLabels(), 'rlm.sandbox.id': init.sandboxId },
        contextDir: init.contextDir,
        controlDir,
        args: formatReplServerArgs({
          url: listener.containerUrl,
          tokenFile: `${CONTROL_MOUNT_PATH}/${CONTROL_TOKEN_FILE_NAME}`,
          heapLimitMb,
          maxLifetimeMs: init.maxLifetimeMs,
          ...(init.language === 'javascript' ? {} : { language: init.language }),
        }),
        limits: init.limits,
        ...(init.runtime ? { runtime: init.runtime } : {}),
      });
      // The create request itself is never aborted: an aborted request may still have made the
      // container, and its id would then be lost. The wait for it is what the signal cuts short.
      creating = init.docker.createContainer(spec as Dockerode.ContainerCreateOptions);
      container = await untilAborted(creating, signal);
      const created = container;
      // Ask for the exit code before starting: with AutoRemove the container may be gone by the time we ask later.
      // Condition next-exit: Docker 20.10's default (not-running) is already true for a created container.
      const exit = created
        .wait({ condition: 'next-exit' })
        .then((result: { StatusCode?: number }) => result.StatusCode)
        .catch(() => undefined);
      output = await captureContainerOutput(init.docker, created);
      await created.start();
      const tail = output.tail;
      const connection = await Promise.race([
        listener.accept({ signal }),
        exit.then((code) => {
          throw new SandboxError(
            `the sandbox container exited with code ${code ?? 'unknown'} before connecting${tail.text ? `; it printed:\n${tail.text}` : ''}`,
            init.sandboxId,
          );
        }),
      ]);
      await rm(tokenFile, { force: true });
      connection.handle(Subcall, (params, { signal: callSignal }) => init.onSubcall(params, { signal: callSignal }));
      connection.handle(ToolCall, (params, { signal: callSignal }) => init.onToolCall(params, { signal: callSignal }));
      instance = new ContainerInstance(init.sandboxId, created.id, connection, created, listener, exit, output);
      instance.#limitLifetime(init.maxLifetimeMs);
      return instance;
    } catch (error) {
      output?.detach();
      await listener.close();
      await rm(tokenFile, { force: true }).catch(() => undefined);
      if (!container && creating) container = await settledWithin(creating, CREATE_SETTLE_MS);
      if (container) await removeContainer(container, init.sandboxId);
      else if (creating) void creating.then((late) => removeContainer(late, init.sandboxId)).catch(() => undefined);
      if (timeout.aborted && !init.signal?.aborted) {
        throw new SandboxError(
          `sandbox ${init.sandboxId} did not start within startTimeoutMs (${init.startTimeoutMs} ms); raise startTimeoutMs or check the Docker engine`,
          init.sandboxId,
          { cause: error },
        );
      }
      if (RlmError.isInstance(error)) throw error;
      throw new SandboxError(`could not start sandbox ${init.sandboxId}: ${errorMessage(error)}`, init.sandboxId, { cause: error });
    }
  }

  /**
   * Runs one request to the container under a host deadline of `timeoutMs`. When the deadline passes
   * or the container stops answering pings first, the container is removed and the call throws
   * {@link SandboxUnresponsiveError}; when `signal` fires, the call throws what the request threw.
   */
  async guarded<T>(operation: string, timeoutMs: number, signal: AbortSignal, request: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.#verdict) {
      await this.destroy();
      throw this.#unresponsiveError(operation);
    }
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), Math.min(timeoutMs, MAX_TIMER_MS));
    try {
      return await request(AbortSignal.any([signal, deadline.signal]));
    } catch (error) {
      if (signal.aborted) throw error;
      if (deadline.signal.aborted && !this.#verdict) {
        this.giveUp({ reason: 'deadline', detail: `did not answer ${operation} within ${formatSeconds(timeoutMs)}` });
      }
      if (!this.#verdict) throw error;
      await this.destroy();
      throw this.#unresponsiveError(operation, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The host gives up on this container: it is removed now, and every call on it fails with SandboxUnresponsiveError. */
  giveUp(verdict: HostVerdict): void {
    this.#verdict ??= verdict;
    void this.destroy();
  }

  /** Explains a broken channel: the host's verdict when it gave up, else the exit code and whether the kernel killed the container for memory. */
  async diagnose(error: Error, limits: SandboxLimits): Promise<CrashDiagnosis> {
    if (this.#verdict) {
      await this.destroy();
      return {
        type: 'SandboxUnresponsiveError',
        message: `${this.#describeVerdict(this.#verdict)}, so the host removed its container and started a fresh one`,
        status: this.#verdict.reason === 'lifetime' ? 'error' : 'timeout',
      };
    }
    if (error instanceof ProtocolViolationError || (error instanceof ConnectionClosedError && [1002, 1007, 1008, 1009].includes(error.closeCode ?? 0))) {
      await this.destroy();
      return {
        type: 'SandboxProtocolError',
        message: `the sandbox broke the control protocol (${error instanceof ConnectionClosedError ? error.closeReason || `close code ${error.closeCode}` : error.message}); it was replaced by a fresh one`,
        status: 'error',
      };
    }
    const oomKilled = await this.container
      .inspect()
      .then((info) => info.State.OOMKilled)
      .catch(() => false);
    const code = await Promise.race([this.#exit, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000).unref())]);
    if (oomKilled || code === 137) {
      return {
        type: 'OutOfMemoryError',
        message:
          `the sandbox was killed${code === undefined ? '' : ` (exit ${code})`}${oomKilled ? ' by the out-of-memory killer' : ', most likely for exceeding its memory limit'}: ` +
          `the cell needed more than ${Math.round(limits.memoryBytes / (1024 * 1024))} MiB; process the data in smaller pieces, or raise limits.memoryBytes (--memory-mb on the CLI)`,
        status: 'error',
      };
    }
    return {
      type: 'SandboxCrashedError',
      message: `the sandbox stopped unexpectedly (${code === undefined ? 'no exit code' : `exit ${code}`}; ${error.message})${this.output.tail.text ? `; it printed:\n${this.output.tail.text.slice(-1000)}` : ''}`,
      status: 'error',
    };
  }

  /** Closes the channel and removes the container. Never throws; safe to call twice. */
  destroy(): Promise<void> {
    this.#destroyed ??= (async () => {
      clearTimeout(this.#lifetimeTimer);
      this.connection.close(1001, 'sandbox closed');
      await Promise.all([this.listener.close(), removeContainer(this.container, this.containerId)]);
      this.output.detach();
    })();
    return this.#destroyed;
  }

  /**
   * Replaces the container a little before the REPL server's own lifetime limit ends it, so the
   * host says why instead of reporting a crash.
   */
  #limitLifetime(maxLifetimeMs: number): void {
    const early = Math.min(60_000, Math.floor(maxLifetimeMs / 10));
    this.#lifetimeTimer = setTimeout(
      () => this.giveUp({ reason: 'lifetime', detail: `reached its maximum lifetime of ${formatSeconds(maxLifetimeMs)} (maxLifetimeMs)` }),
      Math.min(maxLifetimeMs - early, MAX_TIMER_MS),
    );
    this.#lifetimeTimer.unref();
  }

  #describeVerdict(verdict: HostVerdict): string {
    return `the sandbox ${verdict.reason === 'lifetime' ? 'was retired' : 'stopped answering'}: it ${verdict.detail}`;
  }

  #unresponsiveError(operation: string, cause?: unknown): SandboxUnresponsiveError {
    const verdict = this.#verdict ?? { reason: 'deadline' as const, detail: `did not answer ${operation}` };
    return new SandboxUnresponsiveError(
      `${this.#describeVerdict(verdict)}, so the host removed its container; ` +
        'the next call runs in a fresh one, with every variable lost (contexts are loaded again)',
      this.sandboxId,
      verdict.reason,
      operation,
      cause === undefined ? undefined : { cause },
    );
  }
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/**
 * The cap on the cell worker's memory in MiB: the V8 heap for JavaScript, the interpreter's
 * WebAssembly memory for Python. It stays well under the container's limit so a memory-hungry
 * cell fails inside the REPL (OutOfMemoryError, or Python's MemoryError) before the kernel kills
 * the whole container. Python keeps a fixed reserve besides: Pyodide's own JavaScript heap and the
 * server take ~150 MiB that the WebAssembly cap does not count.
 */
export function replHeapLimitMb(memoryBytes: number, language: Language): number {
  const memoryMb = memoryBytes / (1024 * 1024);
  const share = Math.floor(memoryMb * 0.7);
  const cap = language === 'python' ? Math.min(share, Math.floor(memoryMb - 200)) : share;
  return Math.max(64, cap);
}

/** Removes the container and returns once the engine no longer knows it (so `close()` means gone). */
async function removeContainer(container: Dockerode.Container, sandboxId: string): Promise<void> {
  try {
    // v: the anonymous volume that mounts the context goes with the container.
    await container.remove({ force: true, v: true });
    return;
  } catch (error) {
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 404) return;
    if (status !== 409) {
      warn(`could not remove the container of sandbox ${sandboxId}: ${errorMessage(error)}; \`rlm sandbox prune\` removes leftovers`);
      return;
    }
  }
  // 409: AutoRemove is already removing it; wait for that to finish (a loaded engine takes a while).
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const gone = await container.inspect().then(
      () => false,
      (error: { statusCode?: number }) => error.statusCode === 404,
    );
    if (gone) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  warn(`the container of sandbox ${sandboxId} was still being removed after 15 s; \`rlm sandbox prune\` removes leftovers`);
}

const MIB = 1024 * 1024;

/** Errors of loads and tool definitions whose container broke down (its channel failed): the container is dropped. */
const brokenContainerErrors = new WeakSet<Error>();

/** A file's size for a message, in decimal units as file managers show it (`500 MB`). */
function formatFileSize(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${Math.round(bytes / 1e6)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} bytes`;
}

/** A RemoteError's own words, without the `<method> failed on the other end (<code>): ` and the REPL's `cannot load context variable "x": `. */
function remoteDetail(error: RemoteError): string {
  return error.message.replace(/^[\w.]+ failed on the other end \([\w.]+\): /, '').replace(/^cannot load context variable "[^"]*": /, '');
}

function isChannelFailure(error: unknown): boolean {
  return ChannelError.isInstance(error) && !(error instanceof RemoteError) && !(error instanceof RequestAbortedError);
}

function crashResult(diagnosis: CrashDiagnosis): ExecuteResult {
  return {
    status: diagnosis.status,
    stdout: { text: '', truncatedChars: 0 },
    stderr: { text: '', truncatedChars: 0 },
    error: { type: diagnosis.type, message: `${diagnosis.message}. All variables were lost; contexts were loaded again.`, stack: [] },
    final: null,
    stateLost: true,
    variables: [],
    durationMs: 0,
  };
}

const noSubcalls: SubcallHandler = async (request) => ({
  outcomes: request.prompts.map(() => ({ ok: false as const, error: `${request.kind} is not available: this sandbox has no sub-call handler` })),
});

function validateTimes(options: SandboxOptions): void {
  for (const key of ['cellTimeoutMs', 'startTimeoutMs', 'outputLimitChars', 'hostCallTimeoutMs', 'livenessTimeoutMs', 'maxLifetimeMs'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isInteger(value) || value <= 0)) {
      throw new InvalidOptionError(key, `must be a positive integer, got ${String(value)}`);
    }
  }
  const grace = options.hostGraceMs;
  if (grace !== undefined && (!Number.isInteger(grace) || grace < 0)) {
    throw new InvalidOptionError('hostGraceMs', `must be a whole number of milliseconds, 0 or more, got ${String(grace)}`);
  }
  if (options.maxLifetimeMs !== undefined && options.maxLifetimeMs > MAX_TIMER_MS) {
    throw new InvalidOptionError('maxLifetimeMs', `must be at most ${MAX_TIMER_MS} (about 24.8 days), got ${options.maxLifetimeMs}`);
  }
}

/** How long a failed start waits for a container create it stopped waiting for, to remove what it made. */
const CREATE_SETTLE_MS = 10_000;

/** `promise`'s value, or the signal's abort reason thrown as soon as it fires; `promise` runs on. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `promise`'s value if it fulfils within `ms`, otherwise (or if it rejects) undefined. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
  });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}
