export * from './repl/javascript-repl.js';
export * from './repl/python/python-repl.js';
export { makePythonSnapshot, PYTHON_SNAPSHOT_FILE } from './repl/python/pyodide-loader.js';
export * from './server/repl-server.js';
export { CellProcessClient, type CellProcessClientOptions, type CellProcessExit } from './server/cell-process-client.js';
