/**
 * The error hierarchy of the `rlm` package. Every error a user can meet is an {@link RlmError}
 * whose message says what went wrong and what to change, whose `kind` says it in one stable word
 * for programs, and whose `cause` holds what went wrong underneath; context rides on typed fields.
 */

/** Where an error keeps the brands of its class and of every class above it (see `isInstance`). */
const BRANDS = Symbol.for('rlm.error.brands');

/** What every rlm error's constructor accepts besides its message. */
export interface RlmErrorOptions extends ErrorOptions {
  /** A stable machine-readable word for what happened; each class documents its own and has a default. */
  kind?: string;
}

/** The base class of every error the package throws. `kind` is a stable machine-readable word; `RlmError.isInstance(value)` (and each subclass's) recognises errors from another copy of the package, where `instanceof` does not. */
export class RlmError extends Error {
  /**
   * Names this class across duplicated installs of the package (two copies of `rlm` in one
   * `node_modules` make two `RlmError` classes, so `instanceof` fails between them). Every
   * subclass declares its own.
   */
  static readonly brand: string = 'rlm.RlmError';
  /** The class's name as stack traces and `String(error)` show it: `'RlmError'`, and each subclass's own. */
  override name = 'RlmError';
  /** A stable machine-readable word for what happened; see each class for its values. */
  readonly kind: string;
  /** The brands of this error's class and of every class above it, read by `isInstance`; not enumerable, not for use. */
  declare readonly [BRANDS]: readonly string[];

  constructor(message: string, options: RlmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = options.kind ?? 'error';
    Object.defineProperty(this, BRANDS, { value: brandsOf(new.target), enumerable: false });
  }

  /**
   * True when `value` is an error of this class or of one of its subclasses — across duplicated
   * installs of this package, unlike `instanceof`. `SandboxError.isInstance(new ModelCallError(…))`
   * is false; `RlmError.isInstance(…)` is true for every rlm error.
   */
  static isInstance<R>(this: { readonly brand: string; readonly prototype: R }, value: unknown): value is R {
    if (typeof value !== 'object' || value === null) return false;
    const brands = (value as { [BRANDS]?: unknown })[BRANDS];
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class isInstance was called on, a subclass included.
    return Array.isArray(brands) && brands.includes(this.brand);
  }
}

/** The brands of `errorClass` and of every class it extends, up to `RlmError`. */
function brandsOf(errorClass: unknown): readonly string[] {
  const brands: string[] = [];
  for (let current = errorClass; typeof current === 'function' && current !== Error; current = Object.getPrototypeOf(current)) {
    if (Object.hasOwn(current, 'brand')) brands.push(String((current as unknown as { brand: unknown }).brand));
  }
  return Object.freeze(brands);
}

/**
 * `value` as an `Error`, for `catch (error)` blocks: an `Error` is returned as it is; anything else
 * thrown (a string, an object, `undefined`) becomes an `Error` whose message shows it and whose
 * `cause` is the value. Use it instead of `(error as Error)`.
 */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  let shown: string;
  try {
    shown = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    shown = String(value);
  }
  return new Error(shown.length > 1000 ? `${shown.slice(0, 1000)}…` : shown, { cause: value });
}

/** The message of whatever was thrown (see {@link toError}). */
export function errorMessage(value: unknown): string {
  return toError(value).message;
}

/** The `code` of a Node system error (`ENOENT`, `EACCES`…), or undefined. */
export function errorCode(value: unknown): string | undefined {
  const code = typeof value === 'object' && value !== null ? (value as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The Docker engine is unreachable or refused a call. `kind`: `docker_unavailable`. */
export class DockerUnavailableError extends RlmError {
  /** The marker by which `DockerUnavailableError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.DockerUnavailableError';
  /** `'DockerUnavailableError'`, as stack traces and `String(error)` show it. */
  override name = 'DockerUnavailableError';
  constructor(
    message: string,
    /** The engine that was tried, as a URL: `unix:///var/run/docker.sock`, `tcp://host:2375`, `ssh://…`, `npipe://…`. */
    readonly dockerHost: string,
    options?: RlmErrorOptions,
  ) {
    super(message, { kind: 'docker_unavailable', ...options });
  }
}

/** Building the sandbox image failed; `buildLog` holds the tail of the build output. `kind`: `image_build_failed`. */
export class SandboxImageError extends RlmError {
  /** The marker by which `SandboxImageError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.SandboxImageError';
  /** `'SandboxImageError'`, as stack traces and `String(error)` show it. */
  override name = 'SandboxImageError';
  constructor(
    message: string,
    /** The last 8,000 characters of the build's output (empty when the build did not start, e.g. the engine refused it). */
    readonly buildLog: string,
    options?: RlmErrorOptions,
  ) {
    super(message, { kind: 'image_build_failed', ...options });
  }
}

/** What went wrong with a sandbox, as {@link SandboxError.kind}. */
export type SandboxErrorKind =
  /** The container failed to start or its channel failed while in use (the default). */
  | 'sandbox_failed'
  /** The container (or its cell process) was killed at its memory limit; raise `memoryMb` (`--memory-mb`). */
  | 'out_of_memory'
  /** The sandbox was closed before or during the call. */
  | 'sandbox_closed'
  /** The sandbox stopped answering (see {@link SandboxUnresponsiveError}). */
  | 'unresponsive'
  /** A sandbox pool had none to give in time (see {@link SandboxPoolExhaustedError}). */
  | 'pool_exhausted';

/** A sandbox failed to start, or its container or control channel failed while in use. */
export class SandboxError extends RlmError {
  /** The marker by which `SandboxError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.SandboxError';
  /** `'SandboxError'`, as stack traces and `String(error)` show it. */
  override name = 'SandboxError';
  /** What went wrong: `sandbox_failed` (the default), `out_of_memory`, `sandbox_closed`, `unresponsive` or `pool_exhausted` (see {@link SandboxErrorKind}). */
  declare readonly kind: SandboxErrorKind;
  constructor(
    message: string,
    /** The id of the sandbox concerned (its containers are labelled with it); undefined when none had one yet, as for a pool with nothing to give. */
    readonly sandboxId: string | undefined,
    options?: RlmErrorOptions & { kind?: SandboxErrorKind },
  ) {
    super(message, { kind: 'sandbox_failed', ...options });
  }
}

/** An operation on a sandbox that was already closed. `kind`: `sandbox_closed`. */
export class SandboxClosedError extends SandboxError {
  /** The marker by which `SandboxClosedError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.SandboxClosedError';
  /** `'SandboxClosedError'`, as stack traces and `String(error)` show it. */
  override name = 'SandboxClosedError';
  constructor(message: string, sandboxId: string | undefined, options?: ErrorOptions) {
    super(message, sandboxId, { ...options, kind: 'sandbox_closed' });
  }
}

/** A value the caller passed does not fit; the message names the option and what to change. `kind`: `invalid_option`. */
export class InvalidOptionError extends RlmError {
  /** The marker by which `InvalidOptionError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.InvalidOptionError';
  /** `'InvalidOptionError'`, as stack traces and `String(error)` show it. */
  override name = 'InvalidOptionError';
  constructor(
    /** The option or argument at fault, as the caller wrote it (`context`, `limits.maxDepth`, `maxSandboxes`…); the message starts with it. */
    readonly option: string,
    message: string,
    options?: RlmErrorOptions,
  ) {
    super(`${option}: ${message}`, { kind: 'invalid_option', ...options });
  }
}

/** The operation was cancelled through its AbortSignal. `kind`: `aborted`. */
export class AbortedError extends RlmError {
  /** The marker by which `AbortedError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.AbortedError';
  /** `'AbortedError'`, as stack traces and `String(error)` show it. */
  override name = 'AbortedError';
  constructor(message: string, options?: RlmErrorOptions) {
    super(message, { kind: 'aborted', ...options });
  }
}

/**
 * The sandbox stopped answering: a call passed its host deadline, or the container stopped answering
 * the host's pings, or it reached its maximum lifetime. The host removed that container; the sandbox
 * starts a fresh one for its next call, with the contexts loaded and the tools defined again, and
 * every variable of the old one is lost. `kind`: `unresponsive`.
 */
export class SandboxUnresponsiveError extends SandboxError {
  /** The marker by which `SandboxUnresponsiveError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.SandboxUnresponsiveError';
  /** `'SandboxUnresponsiveError'`, as stack traces and `String(error)` show it. */
  override name = 'SandboxUnresponsiveError';
  constructor(
    message: string,
    sandboxId: string | undefined,
    /** Which host limit fired: a call's deadline, the ping liveness check, or the container's lifetime. */
    readonly reason: 'deadline' | 'liveness' | 'lifetime',
    /** The call that was waiting (`execute`, `load_context`, `define_tools`), or `idle` when none was. */
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(message, sandboxId, { ...options, kind: 'unresponsive' });
  }
}

/**
 * A sandbox pool (`createSandboxPool`) had no sandbox to give: all of its `maxSandboxes` stayed in
 * use for the whole `timeoutMs` of an acquire (`reason: 'timeout'`), or — for a child RLM of a run
 * on the pool — waiting could never end, because every sandbox of the pool was held by a run that
 * was itself waiting for a child (`reason: 'deadlock'`; the engine then answers the `rlm_query` as
 * a plain `llm_query`). Nothing was started. `kind`: `pool_exhausted`.
 */
export class SandboxPoolExhaustedError extends SandboxError {
  /** The marker by which `SandboxPoolExhaustedError.isInstance` recognises this class across duplicated installs of the package. */
  static override readonly brand: string = 'rlm.SandboxPoolExhaustedError';
  /** `'SandboxPoolExhaustedError'`, as stack traces and `String(error)` show it. */
  override name = 'SandboxPoolExhaustedError';
  constructor(
    message: string,
    /** Why the wait ended: its time ran out, or it could never end. */
    readonly reason: 'timeout' | 'deadlock',
    /** How long the acquire waited, in milliseconds. */
    readonly waitedMs: number,
    options?: ErrorOptions,
  ) {
    super(message, undefined, { ...options, kind: 'pool_exhausted' });
  }
}
