/**
 * Which names a custom tool may take. A tool becomes a global function of the REPL, so its name
 * must be an identifier that shadows nothing a cell or the REPL itself relies on: not a reserved
 * name, not a keyword, not a global of JavaScript or Node.js, not the REPL's private namespace.
 * Both ends check with {@link toolNameProblem}; the sandbox also refuses any other global its
 * runtime happens to have.
 */
import { RESERVED_NAMES } from '../limits.js';

/** Keywords and literals of JavaScript and Python: no function can be called by these names. */
const KEYWORDS = [
  // JavaScript (reserved words, strict-mode reserved words, contextual ones cells rely on)
  'arguments', 'async', 'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default',
  'delete', 'do', 'else', 'enum', 'eval', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if',
  'implements', 'import', 'in', 'instanceof', 'interface', 'let', 'new', 'null', 'package', 'private',
  'protected', 'public', 'return', 'static', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var',
  'void', 'while', 'with', 'yield',
  // Python
  'False', 'None', 'True', 'and', 'as', 'assert', 'def', 'del', 'elif', 'except', 'from', 'global', 'is',
  'lambda', 'nonlocal', 'not', 'or', 'pass', 'raise',
] as const;

/**
 * Globals of JavaScript and Node.js (as a Node 24 worker thread has them), the REPL's own
 * (`require`, `console`…), and the modules Python cells get pre-imported.
 */
export const CORE_GLOBAL_NAMES: readonly string[] = [
  // ECMAScript
  'AggregateError', 'Array', 'ArrayBuffer', 'AsyncDisposableStack', 'Atomics', 'BigInt', 'BigInt64Array',
  'BigUint64Array', 'Boolean', 'DataView', 'Date', 'DisposableStack', 'Error', 'EvalError',
  'FinalizationRegistry', 'Float16Array', 'Float32Array', 'Float64Array', 'Function', 'Infinity',
  'Int16Array', 'Int32Array', 'Int8Array', 'Intl', 'Iterator', 'JSON', 'Map', 'Math', 'NaN', 'Number',
  'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'Reflect', 'RegExp', 'Set',
  'SharedArrayBuffer', 'String', 'SuppressedError', 'Symbol', 'SyntaxError', 'TypeError', 'URIError',
  'Uint16Array', 'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap', 'WeakRef', 'WeakSet',
  'WebAssembly', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'escape',
  'globalThis', 'isFinite', 'isNaN', 'parseFloat', 'parseInt', 'undefined', 'unescape',
  // Node.js and the web platform
  'AbortController', 'AbortSignal', 'Blob', 'BroadcastChannel', 'Buffer', 'ByteLengthQueuingStrategy',
  'CloseEvent', 'CompressionStream', 'CountQueuingStrategy', 'Crypto', 'CryptoKey', 'CustomEvent',
  'DOMException', 'DecompressionStream', 'Event', 'EventTarget', 'File', 'FormData', 'Headers',
  'MessageChannel', 'MessageEvent', 'MessagePort', 'Navigator', 'Performance', 'PerformanceEntry',
  'PerformanceMark', 'PerformanceMeasure', 'PerformanceObserver', 'PerformanceObserverEntryList',
  'PerformanceResourceTiming', 'ReadableByteStreamController', 'ReadableStream', 'ReadableStreamBYOBReader',
  'ReadableStreamBYOBRequest', 'ReadableStreamDefaultController', 'ReadableStreamDefaultReader', 'Request',
  'Response', 'SubtleCrypto', 'TextDecoder', 'TextDecoderStream', 'TextEncoder', 'TextEncoderStream',
  'TransformStream', 'TransformStreamDefaultController', 'URL', 'URLPattern', 'URLSearchParams', 'WebSocket',
  'WritableStream', 'WritableStreamDefaultController', 'WritableStreamDefaultWriter', 'atob', 'btoa',
  'clearImmediate', 'clearInterval', 'clearTimeout', 'crypto', 'fetch', 'global', 'navigator', 'performance',
  'process', 'queueMicrotask', 'setImmediate', 'setInterval', 'setTimeout', 'structuredClone',
  // CommonJS and the REPL's own
  'require', 'module', 'exports', '__dirname', '__filename', 'console',
  // Object.prototype's members, which every global object inherits
  '__proto__', '__defineGetter__', '__defineSetter__', '__lookupGetter__', '__lookupSetter__', 'constructor',
  'hasOwnProperty', 'isPrototypeOf', 'propertyIsEnumerable', 'toLocaleString', 'toString', 'valueOf',
  // Python cells' pre-imported modules
  're', 'json', 'math', 'collections', 'itertools', 'sys',
];

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** Later contexts and earlier conversations of a session are bound as `context_1`…, `history`, `history_0`…. */
const CONTEXT_OR_HISTORY = /^(?:context_\d+|history|history_\d+)$/;
const RESERVED = new Set<string>(RESERVED_NAMES);
const KEYWORD_SET = new Set<string>(KEYWORDS);
const CORE = new Set<string>(CORE_GLOBAL_NAMES);

/** Longest tool name, in characters. */
export const MAX_TOOL_NAME_CHARS = 128;

/**
 * Why `name` cannot name a custom tool, as a predicate (`is a reserved name of the REPL…`), or
 * undefined when it can.
 */
export function toolNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_TOOL_NAME_CHARS) return `is longer than ${MAX_TOOL_NAME_CHARS} characters`;
  if (!IDENTIFIER.test(name)) return 'is not an identifier (letters, digits, _ or $, not starting with a digit)';
  if (RESERVED.has(name)) return `is a reserved name of the REPL (${RESERVED_NAMES.join(', ')})`;
  if (KEYWORD_SET.has(name)) return 'is a keyword of JavaScript or Python';
  if (CORE.has(name)) return 'is a built-in global of the REPL (JavaScript, Node.js or the REPL itself)';
  if (CONTEXT_OR_HISTORY.test(name)) return 'is a name the REPL keeps for contexts and conversation history (context_N, history, history_N)';
  if (name.startsWith('__rlm')) return 'starts with __rlm, which the REPL keeps for itself';
  return undefined;
}
