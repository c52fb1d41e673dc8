/**
 * Bounds on the shape of one control-channel frame, checked by the pre-parse scan
 * ({@link scanFrame}) before `JSON.parse` sees the frame. Per-method size limits live on the method
 * descriptors (`maxRequestBytes`, `maxResultBytes` in `protocol/methods.ts`).
 *
 * Sizes are in bytes of UTF-8.
 */
import { MAX_JSON_DEPTH } from '../limits.js';

/**
 * Deepest nesting of arrays and objects in a frame, the envelope object counted as level 1.
 *
 * The deepest legitimate value is a custom tool's argument: envelope → `params` → `args` → the
 * argument, which may itself nest {@link MAX_JSON_DEPTH} levels (see `isJsonValue`). So three
 * levels of envelope on top of that; anything deeper could never pass the schemas anyway.
 */
export const MAX_FRAME_DEPTH = MAX_JSON_DEPTH + 3;

/**
 * Most values (array elements plus object members, counted over the whole frame) one frame may hold.
 *
 * What it bounds is memory amplification: `[{},{},…]` costs 3 bytes a value on the wire but tens of
 * bytes each once parsed, so a frame within its size limit could still cost the receiver twenty
 * times its size. At a million values the worst case stays near 64 MiB of parsed objects. The
 * largest legitimate frames hold a few tens of thousands (10,000 prompts or listed variables); a
 * custom tool's arguments or result are the only place a caller could come near it.
 */
export const MAX_FRAME_ELEMENTS = 1_000_000;

/**
 * Largest `protocol_error` frame: one message of at most 64 Ki characters, at most 6 bytes each once
 * JSON-escaped (384 KiB), plus the envelope.
 */
export const MAX_PROTOCOL_ERROR_BYTES = 512 * 1024;

/**
 * Largest request for a method this end does not serve, when the connection answers such requests
 * (`unknownMethods: 'answer'`) instead of closing. Such a frame is parsed only to read its id.
 */
export const MAX_UNKNOWN_METHOD_REQUEST_BYTES = 64 * 1024;

/** Largest `cancel` frame: `{"type":"cancel","id":N}` with an id of at most 16 digits takes under 50 bytes. */
export const MAX_CANCEL_BYTES = 256;
