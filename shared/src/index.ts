export * from './limits.js';
export * from './protocol/messages.js';
export * from './protocol/methods.js';
export * from './rpc/errors.js';
export * from './rpc/rpc-connection.js';
export * from './rpc/websocket-transport.js';
