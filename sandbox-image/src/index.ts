export * from './repl/javascript-repl.js';
export * from './server/repl-server.js';
