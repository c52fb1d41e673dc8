import type { BuildOptions } from 'esbuild';

/** The esbuild settings every sandbox bundle is built with. */
export declare const sandboxBundleOptions: BuildOptions;
