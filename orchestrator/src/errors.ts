/**
 * The error hierarchy of the `rlm` package. Every error a user can meet is an {@link RlmError}
 * whose message says what went wrong and what to change; context rides on typed fields.
 */

const MARKER = Symbol.for('rlm.error');

export class RlmError extends Error {
  readonly [MARKER] = true;
  override name = 'RlmError';

  /** True across duplicated installs of this package, unlike `instanceof`. */
  static isInstance(value: unknown): value is RlmError {
    return typeof value === 'object' && value !== null && MARKER in value;
  }
}

/** The Docker engine is unreachable or refused a call. */
export class DockerUnavailableError extends RlmError {
  override name = 'DockerUnavailableError';
  constructor(
    message: string,
    readonly dockerHost: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Building the sandbox image failed; `buildLog` holds the tail of the build output. */
export class SandboxImageError extends RlmError {
  override name = 'SandboxImageError';
  constructor(
    message: string,
    readonly buildLog: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A sandbox failed to start, or its container or control channel failed while in use. */
export class SandboxError extends RlmError {
  override name = 'SandboxError';
  constructor(
    message: string,
    readonly sandboxId: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** An operation on a sandbox that was already closed. */
export class SandboxClosedError extends SandboxError {
  override name = 'SandboxClosedError';
}

/** A value the caller passed does not fit; the message names the option and what to change. */
export class InvalidOptionError extends RlmError {
  override name = 'InvalidOptionError';
  constructor(
    readonly option: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${option}: ${message}`, options);
  }
}

/** The operation was cancelled through its AbortSignal. */
export class AbortedError extends RlmError {
  override name = 'AbortedError';
}

/**
 * The sandbox stopped answering: a call passed its host deadline, or the container stopped answering
 * the host's pings, or it reached its maximum lifetime. The host removed that container; the sandbox
 * starts a fresh one for its next call, with the contexts loaded and the tools defined again, and
 * every variable of the old one is lost.
 */
export class SandboxUnresponsiveError extends SandboxError {
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
    super(message, sandboxId, options);
  }
}
