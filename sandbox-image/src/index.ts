export * from './repl/javascript-repl.js';
