// The types use Node's (AbortSignal, NodeJS.ProcessEnv…): a consumer whose tsconfig lists no `types` still gets them.
/// <reference types="node" preserve="true" />
/**
 * The public surface of the `rlm` package: what a program needs to run Recursive Language Models
 * with the REPL in a Docker sandbox. Everything not exported here is internal and may change in any
 * release; the API report (`orchestrator/rlm.api.md`, rewritten by `pnpm --filter rlm api:update`)
 * is this surface as text, and a CI build fails when the two differ. Test doubles live in the
 * `rlm/testing` entry point.
 *
 * @packageDocumentation
 */

// Errors: every error the library throws is an RlmError with a `kind`; `X.isInstance(e)` works
// across duplicated installs where `instanceof` does not.
export {
  AbortedError,
  DockerUnavailableError,
  InvalidOptionError,
  RlmError,
  SandboxClosedError,
  SandboxError,
  SandboxImageError,
  SandboxPoolExhaustedError,
  SandboxUnresponsiveError,
  type RlmErrorOptions,
  type SandboxErrorKind,
} from './errors.js';
export { setLogSink, type LogSink } from './logging.js';

// The RLM engine
export { RLM, RlmSession, type CompletionInput, type RlmResult, type RlmRun } from './engine/rlm.js';
export type { DataTool, FunctionTool, ModelRole, RlmOptions, RlmTool } from './engine/rlm-options.js';
export { DEFAULT_LIMITS, RunLimitError, type LimitName, type RlmLimits } from './engine/run-budget.js';
export type { CallUsage, RunEvent, RunEventType, RunWarningCode } from './engine/run-events.js';
export type { BlockRecord, ChildRunRecord, SubcallRecord, TurnRecord } from './engine/run-records.js';
export type { ModelPrice, PriceOverrides } from './usage/pricing.js';
export type { ModelUsage, UsageByModel } from './usage/usage-ledger.js';

// Trajectories: the JSONL log of a run, as `rlm run --log` and `RlmOptions.trajectoryDir` write it
export {
  parseTrajectory,
  readTrajectory,
  type CodeBlockLine,
  type IterationLine,
  type MessageLine,
  type MetadataLine,
  type ModelUsageSummaryLine,
  type ParsedTrajectory,
  type ReplResultLine,
  type RlmCallLine,
  type TrajectoryLine,
  type UsageSummaryLine,
} from './trajectory/trajectory-schema.js';

// Model backends
export {
  ModelCallError,
  type ChatMessage,
  type ChatRole,
  type CompleteOptions,
  type CompletionRequest,
  type CompletionResponse,
  type ModelBackend,
  type ModelCallErrorKind,
  type TokenUsage,
} from './models/model-backend.js';
export type { ResilienceOptions } from './models/resilience.js';
export { createAnthropicBackend, type AnthropicBackendOptions } from './models/anthropic-backend.js';
export { createClaudeCliBackend, type ClaudeCliOptions } from './models/claude-cli-backend.js';
export {
  createOpenAICompatibleBackend,
  type ChatDialect,
  type FetchFunction,
  type GenerationSettings,
  type OpenAICompatibleOptions,
  type ReasoningEffort,
  type ReasoningEffortParameter,
  type TokenLimitParameter,
} from './models/openai-compatible-backend.js';
export { createPresetBackend, PRESET_NAMES, type PresetBackendOptions, type PresetName } from './models/openai-presets.js';
export { BACKEND_NAMES, DEFAULT_MODELS, createBackend, type BackendName, type BackendSpec, type CreatedBackend } from './models/create-backend.js';

// The sandbox
export {
  DEFAULT_SANDBOX_CALL_CAPS,
  Sandbox,
  type ExecuteOptions,
  type SandboxCallCaps,
  type SandboxOptions,
  type SubcallHandler,
} from './sandbox/sandbox.js';
export type { SandboxTool, SandboxTools } from './sandbox/tools.js';
export {
  createSandboxPool,
  DEFAULT_POOL_HEALTH_CHECK_TIMEOUT_MS,
  DEFAULT_POOL_MAX_SANDBOXES,
  SandboxPool,
  type PooledSandbox,
  type SandboxPoolAcquireOptions,
  type SandboxPoolOptions,
  type SandboxPoolStats,
} from './sandbox/pool/sandbox-pool.js';
export { ContextFile, contextFromFile, type ContextFileFormat, type ContextValue, type JsonValue } from './sandbox/context-files.js';
export { DEFAULT_SANDBOX_LIMITS, type SandboxLimits } from './sandbox/container-spec.js';
export { createDockerClient, pingDocker, type DockerClientOptions } from './sandbox/docker-client.js';
export {
  buildSandboxImage,
  ensureSandboxImage,
  type EnsureSandboxImageOptions,
  type SandboxImage,
  type SandboxImageBuildEvent,
} from './sandbox/image/ensure-sandbox-image.js';
export {
  listSandboxes,
  pruneSandboxes,
  reapOrphanedSandboxes,
  type PruneOptions,
  type PruneResult,
  type SandboxContainer,
  type SandboxListOptions,
} from './sandbox/reaper.js';
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
  ToolCallParams,
  ToolCallResult,
  ToolDefinition,
  VariableInfo,
} from './protocol-types.js';
