/**
 * The worker's side of `llm_query` and friends: synchronous functions that ask the host through
 * the {@link HostCaller} (which blocks on `Atomics.wait` until the answer comes), so a cell can call
 * them without `await`.
 */
import { Buffer } from 'node:buffer';
import { MAX_BATCH_PROMPTS, Subcall, formatBytes, type SubcallKind, type SubcallParams } from '@rlm/shared';

/** The host refuses a sub-call request frame larger than this before parsing it. */
const MAX_REQUEST_BYTES = Subcall.maxRequestBytes;
import type { HostCaller } from './host-calls.js';

export interface SubcallFunctions {
  llm_query(prompt: unknown, options?: unknown): string;
  llm_query_batched(prompts: unknown, options?: unknown): string[];
  rlm_query(prompt: unknown, options?: unknown): string;
  rlm_query_batched(prompts: unknown, options?: unknown): string[];
}

// Room for the envelope and the other fields of a request.
const ENVELOPE_BYTES = 4096;

export function createSubcallFunctions(callHost: HostCaller): SubcallFunctions {
  const call = (name: string, params: SubcallParams): string[] => {
    checkSize(name, params.prompts);
    const reply = callHost('subcall', params);
    if ('error' in reply) return params.prompts.map(() => `Error: ${reply.error}`);
    const { outcomes } = reply.result;
    return params.prompts.map((_, index) => {
      const outcome = outcomes[index];
      if (!outcome) return 'Error: the host sent no answer for this prompt';
      return outcome.ok ? outcome.text : `Error: ${outcome.error}`;
    });
  };

  const single =
    (kind: SubcallKind) =>
    (prompt: unknown, options?: unknown): string => {
      if (typeof prompt !== 'string') {
        throw new TypeError(`${kind}: the prompt must be a string, got ${describe(prompt)}`);
      }
      const model = readModel(kind, options);
      const [answer] = call(kind, { kind, prompts: [prompt], batched: false, ...(model ? { model } : {}) });
      return answer ?? 'Error: the host sent no answer';
    };

  const batched =
    (kind: SubcallKind) =>
    (prompts: unknown, options?: unknown): string[] => {
      const name = `${kind}_batched`;
      if (!Array.isArray(prompts)) {
        throw new TypeError(`${name}: the prompts must be an array of strings, got ${describe(prompts)}`);
      }
      const list: string[] = [];
      for (const [index, prompt] of prompts.entries()) {
        if (typeof prompt !== 'string') {
          throw new TypeError(`${name}: prompts[${index}] must be a string, got ${describe(prompt)}`);
        }
        list.push(prompt);
      }
      const model = readModel(name, options);
      if (list.length === 0) return [];
      if (list.length > MAX_BATCH_PROMPTS) {
        throw new RangeError(`${name}: ${list.length} prompts is more than the ${MAX_BATCH_PROMPTS} one call may carry; split the batch`);
      }
      return call(name, { kind, prompts: list, batched: true, ...(model ? { model } : {}) });
    };

  return {
    llm_query: single('llm_query'),
    llm_query_batched: batched('llm_query'),
    rlm_query: single('rlm_query'),
    rlm_query_batched: batched('rlm_query'),
  };
}

/** Accepts `{ model }` (or, leniently, the model name itself). */
function readModel(name: string, options: unknown): string | undefined {
  if (options === undefined || options === null) return undefined;
  const model = typeof options === 'string' ? options : typeof options === 'object' ? (options as { model?: unknown }).model : options;
  if (model === undefined) return undefined;
  if (typeof model !== 'string' || model.length === 0 || model.length > 256) {
    throw new TypeError(`${name}: the model option must be a non-empty string of at most 256 characters, got ${describe(model)}`);
  }
  return model;
}

function checkSize(name: string, prompts: readonly string[]): void {
  let chars = 0;
  for (const prompt of prompts) chars += prompt.length;
  // JSON escaping can take a UTF-16 unit to 6 bytes; below that bound no exact count is needed.
  if (chars * 6 + prompts.length * 8 + ENVELOPE_BYTES <= MAX_REQUEST_BYTES) return;
  let bytes = ENVELOPE_BYTES;
  for (const prompt of prompts) {
    bytes += Buffer.byteLength(JSON.stringify(prompt)) + 1;
    if (bytes > MAX_REQUEST_BYTES) break;
  }
  if (bytes > MAX_REQUEST_BYTES) {
    throw new RangeError(
      `${name}: the request would be over ${formatBytes(MAX_REQUEST_BYTES)}, the control channel's limit; ` +
        (prompts.length > 1 ? 'split the batch into smaller ones or shorten the prompts' : 'shorten the prompt'),
    );
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
