export {
  SANDBOX_BUNDLE_DIR_ENV,
  SANDBOX_BUNDLE_FILES,
  locateSandboxAssets,
  type LocateSandboxAssetsOptions,
  type SandboxAssets,
} from './assets.js';
export { BASE_IMAGE_NODE_PATH, SANDBOX_UID, SANDBOX_USER, SCRATCH } from './build-context.js';
export {
  IMAGE_INPUTS_LABEL,
  SANDBOX_BASE_IMAGE_ENV,
  SANDBOX_IMAGE_REPOSITORY,
  buildSandboxImage,
  ensureSandboxImage,
  sandboxImageTag,
  type EnsureSandboxImageOptions,
  type SandboxImage,
  type SandboxImageBuildEvent,
} from './ensure-sandbox-image.js';
export { IMAGE_NODE_PATH, SANDBOX_NODE_ENV, inspectNodeRuntime, type NodeRuntime } from './node-runtime.js';
