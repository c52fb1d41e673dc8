/**
 * Limits and fixed paths both ends of the control channel agree on.
 *
 * Sizes are in bytes unless the name says otherwise; times in milliseconds.
 */

/** Bumped on any incompatible change to a message schema. The host refuses a sandbox that speaks another version. */
export const PROTOCOL_VERSION = 1;

/**
 * Largest WebSocket message either end accepts (64 MiB). Large payloads (the context) never travel
 * over the socket; this bounds prompts and cell output. A larger frame closes the connection.
 */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

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
