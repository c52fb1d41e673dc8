import type { BuildOptions } from 'esbuild';

/** The esbuild settings every sandbox bundle is built with. */
export declare const sandboxBundleOptions: BuildOptions;

/** Pyodide's files the Python REPL loads at run time. */
export declare const PYODIDE_RUNTIME_FILES: readonly string[];
