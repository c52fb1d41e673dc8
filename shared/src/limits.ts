/**
 * Limits and fixed paths both ends of the control channel agree on.
 *
 * Sizes are in bytes unless the name says otherwise; times in milliseconds.
 */

/** Bumped on any incompatible change to a message schema. The host refuses a sandbox that speaks another version. */
export const PROTOCOL_VERSION = 2;

/** Largest cell source accepted by `execute` (1 MiB of UTF-16 code units). */
export const MAX_CODE_CHARS = 1024 * 1024;

/** Default per-stream cap on captured cell output, in characters; the rest is cut with a marker. */
export const DEFAULT_OUTPUT_LIMIT_CHARS = 20_000;

/** Upper bound for a caller-chosen output limit, so one cell cannot make the sandbox hold unbounded text. */
export const MAX_OUTPUT_LIMIT_CHARS = 4 * 1024 * 1024;

/** Default wall-clock limit of one cell. */
export const DEFAULT_CELL_TIMEOUT_MS = 120_000;

/** How many prompts one `llm_query_batched` / `rlm_query_batched` call may carry. */
export const MAX_BATCH_PROMPTS = 10_000;

/** Where the read-only context directory is mounted inside the container. */
export const CONTEXT_MOUNT_PATH = '/context';

/** Where the per-sandbox control directory (holding the Unix socket) is mounted inside the container. */
export const CONTROL_MOUNT_PATH = '/run/rlm';

/** File name of the control socket inside the control directory. */
export const CONTROL_SOCKET_NAME = 'control.sock';

/**
 * Names the REPL owns. A cell that overwrites one gets it back after the cell; tools and variables
 * loaded by the host may not use them.
 */
export const RESERVED_NAMES = [
  'context',
  'llm_query',
  'llm_query_batched',
  'rlm_query',
  'rlm_query_batched',
  'FINAL',
  'FINAL_VAR',
  'SHOW_VARS',
  'print',
] as const;

export type ReservedName = (typeof RESERVED_NAMES)[number];

/** How many custom tools one `define_tools` request may define. */
export const MAX_TOOLS = 256;

/** Longest description of one custom tool, in characters. */
export const MAX_TOOL_DESCRIPTION_CHARS = 8 * 1024;

/** How many arguments one tool call may pass. */
export const MAX_TOOL_ARGS = 64;

/** Deepest nesting of arrays and objects a JSON value crossing the channel may have (tool arguments and results). */
export const MAX_JSON_DEPTH = 512;

/**
 * File in the control directory (mounted at {@link CONTROL_MOUNT_PATH}) holding the per-sandbox
 * token. The REPL server reads it at start, so the token is never on a command line (`/proc/1/cmdline`).
 */
export const CONTROL_TOKEN_FILE_NAME = 'token';

/** Longest final answer, in characters. A longer `FINAL`/`FINAL_VAR` value is an error result the model sees, not an answer. */
export const MAX_FINAL_CHARS = 1024 * 1024;

/** Most variables one execute result lists (`SHOW_VARS` and the result's `variables`); the host cuts longer lists. */
export const MAX_LISTED_VARIABLES = 1000;

/**
 * Default longest life of one sandbox container, in milliseconds (24 h). The REPL server (PID 1)
 * exits past it whatever the host or the cells do, so a container outlives no host for long.
 */
export const DEFAULT_MAX_SANDBOX_LIFETIME_MS = 24 * 60 * 60 * 1000;
