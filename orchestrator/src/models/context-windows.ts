/**
 * Context windows of known models, in tokens, and a cheap token estimate, so a prompt that cannot
 * fit is refused with a clear message before any provider sees it.
 */

/** Context windows by model-id prefix (longest prefix wins), in tokens. */
const CONTEXT_WINDOWS: ReadonlyArray<readonly [prefix: string, tokens: number]> = [
  ['claude-', 200_000],
  ['claude-opus-4', 200_000],
  ['claude-sonnet-4', 200_000],
  ['claude-haiku-4', 200_000],
  ['claude-3-7-sonnet', 200_000],
  ['claude-3-5', 200_000],
  ['gpt-5', 400_000],
  ['gpt-4.1', 1_047_576],
  ['gpt-4o', 128_000],
  ['o3', 200_000],
  ['o4-mini', 200_000],
  ['o1', 200_000],
  ['gemini-2.5', 1_048_576],
  ['gemini-2.0', 1_048_576],
  ['deepseek', 128_000],
  ['qwen3', 131_072],
  ['llama-3', 128_000],
];

/** Assumed for a model not in the table; override per role with `contextWindowTokens`. */
export const DEFAULT_CONTEXT_WINDOW_TOKENS = 128_000;

/** The context window of `model` in tokens (provider prefixes like `openai/` are ignored). */
export function contextWindowOf(model: string): number {
  const id = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
  let best: readonly [string, number] | undefined;
  for (const entry of CONTEXT_WINDOWS) {
    if (id.startsWith(entry[0]) && (!best || entry[0].length > best[0].length)) best = entry;
  }
  return best?.[1] ?? DEFAULT_CONTEXT_WINDOW_TOKENS;
}

/**
 * Tokens `text` will take, estimated at 3.5 characters a token (English prose runs ~4, code and
 * other scripts fewer), erring on the side of refusing a prompt that might not fit.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3.5);
}
