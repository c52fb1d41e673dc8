// JsonValue (schema and type) comes from messages.ts.
export { isJsonValue, toJsonValue, type JsonConversion } from './json/json-value.js';
export * from './limits.js';
export * from './protocol/messages.js';
export * from './protocol/methods.js';
export * from './protocol/tool-names.js';
export * from './rpc/errors.js';
export * from './rpc/frame-limits.js';
export * from './rpc/frame-scan.js';
export * from './rpc/rpc-connection.js';
export * from './rpc/websocket-transport.js';
export * from './launch/repl-server-args.js';
