#!/usr/bin/env node
import module from 'node:module';

// Node keeps the compiled code of the modules a command loads (in the system temp directory, or
// NODE_COMPILE_CACHE; NODE_DISABLE_COMPILE_CACHE=1 turns it off). A command that loads the engine,
// the provider SDKs and dockerode starts 10–20% sooner from the second run on; `--version` and the
// help pages load too little for it to show. Node < 22.1 has no compile cache.
module.enableCompileCache?.();

// Committed launcher, so pnpm can link the `rlm` bin before the first build. The entry point is a
// variable so that typechecking a fresh clone does not depend on a build having made it.
const entry = '../dist/bundle/cli.js';
try {
  await import(entry);
} catch (error) {
  const { code, message } = /** @type {{ code?: unknown, message?: unknown }} */ (error ?? {});
  if (code === 'ERR_MODULE_NOT_FOUND' && String(message).includes('dist/bundle/cli.js')) {
    process.stderr.write('rlm: the package is not built yet; run `pnpm build` in the repository root\n');
    process.exit(1);
  }
  throw error;
}
