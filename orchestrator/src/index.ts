/**
 * The public surface of the `rlm` package. Everything not exported here is internal.
 */
export {
  AbortedError,
  DockerUnavailableError,
  InvalidOptionError,
  RlmError,
  SandboxClosedError,
  SandboxError,
  SandboxImageError,
} from './errors.js';
export { setLogSink, type LogSink } from './logging.js';
export { Sandbox, type ExecuteOptions, type SandboxOptions, type SubcallHandler } from './sandbox/sandbox.js';
export type { ContextValue, JsonValue } from './sandbox/context-files.js';
export { DEFAULT_SANDBOX_LIMITS, type SandboxLimits } from './sandbox/container-spec.js';
export { createDockerClient, pingDocker } from './sandbox/docker-client.js';
export { buildSandboxImage, ensureSandboxImage } from './sandbox/image/ensure-sandbox-image.js';
export { listSandboxes, pruneSandboxes, reapOrphanedSandboxes } from './sandbox/reaper.js';
export { checkIsolation, type IsolationFinding } from './sandbox/isolation-check.js';
export type {
  CellError,
  ExecuteResult,
  FinalAnswer,
  Language,
  LoadContextResult,
  SubcallOutcome,
  SubcallParams,
  SubcallResult,
  VariableInfo,
} from '@rlm/shared';
