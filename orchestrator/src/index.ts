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
  SandboxUnresponsiveError,
  SandboxImageError,
} from './errors.js';
export { setLogSink, type LogSink } from './logging.js';

// The RLM engine
export { RLM, RlmSession, type CompletionInput, type RlmResult, type RlmRun } from './engine/rlm.js';
export type { DataTool, FunctionTool, ModelRole, RlmOptions, RlmTool } from './engine/rlm-options.js';
export { DEFAULT_LIMITS, RunLimitError, type LimitName, type RlmLimits } from './engine/run-budget.js';
export type { RunEvent, RunEventType, RunWarningCode } from './engine/run-events.js';
export { MAX_RECORDED_SUBCALLS_PER_CELL, RECORDED_TEXT_LIMIT_CHARS, REFUSED_PROMPT_PREFIX_CHARS } from './engine/recorded-text.js';
export type { BlockRecord, ChildRunRecord, SubcallRecord, TurnRecord } from './engine/run-records.js';
export { readTrajectory, parseTrajectory, TRAJECTORY_TEXT_LIMIT_CHARS } from './trajectory/trajectory-writer.js';
export { costOf, priceOf, PRICES_AS_OF, type ModelPrice, type PriceOverrides } from './usage/pricing.js';
export type { ModelUsage, UsageByModel } from './usage/usage-ledger.js';

// Model backends
export {
  ModelCallError,
  type ChatMessage,
  type CompletionRequest,
  type CompletionResponse,
  type ModelBackend,
  type TokenUsage,
} from './models/model-backend.js';
export {
  createOpenAICompatibleBackend,
  isReasoningModel,
  type ChatDialect,
  type OpenAICompatibleOptions,
  type ReasoningEffort,
  type ReasoningEffortParameter,
  type TokenLimitParameter,
} from './models/openai-compatible-backend.js';
export {
  createPresetBackend,
  DEFAULT_AZURE_API_VERSION,
  isPresetName,
  OPENAI_COMPATIBLE_PRESETS,
  PRESET_NAMES,
  resolvePreset,
  type OpenAICompatiblePreset,
  type PresetBackendOptions,
  type PresetName,
  type ResolvedPreset,
} from './models/openai-presets.js';
export { ScriptedBackend, type ScriptedReply, type ScriptFunction } from './models/scripted-backend.js';
export { BACKEND_NAMES, DEFAULT_MODELS, createBackend, type BackendName, type BackendSpec, type CreatedBackend } from './models/create-backend.js';
export { contextWindowOf, estimateTokens } from './models/context-windows.js';

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
export { CONTEXT_FILE_SAMPLE_BYTES, ContextFile, contextFromFile, type ContextFileFormat, type ContextValue, type JsonValue } from './sandbox/context-files.js';
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
  ToolCallParams,
  ToolCallResult,
  ToolDefinition,
  VariableInfo,
} from '@rlm/shared';
