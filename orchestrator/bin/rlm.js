#!/usr/bin/env node
// Committed launcher, so pnpm can link the `rlm` bin before the first build. The entry point is a
// variable so that typechecking a fresh clone does not depend on a build having made it.
const entry = '../dist/cli/main.js';
try {
  await import(entry);
} catch (error) {
  const { code, message } = /** @type {{ code?: unknown, message?: unknown }} */ (error ?? {});
  if (code === 'ERR_MODULE_NOT_FOUND' && String(message).includes('dist/cli/main.js')) {
    process.stderr.write('rlm: the package is not built yet; run `pnpm build` in the repository root\n');
    process.exit(1);
  }
  throw error;
}
