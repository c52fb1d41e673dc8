/**
 * Preloaded with `node --import` (type stripping runs it): lets a process run the orchestrator's
 * TypeScript sources unbuilt, and writes the URL of every module it loaded — ES modules and
 * `require`d CommonJS alike, Node's built-ins included — to the file named by
 * `RLM_LOADED_MODULES_FILE` as a JSON array when the process exits. The start-up tests use it to
 * see what a command loads (loaded-modules.ts reads the file).
 *
 * The sources import `./x.js` for `x.ts`, as tsc wants; Node does not map that, so a relative `.js`
 * import from a `.ts` file that finds nothing is retried as `.ts`.
 */
import { writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

// LOADED_MODULES_ENV of loaded-modules.ts, which reads the file.
const output = process.env.RLM_LOADED_MODULES_FILE;
if (!output) throw new Error('module-load-recorder: set RLM_LOADED_MODULES_FILE to the file the loaded modules go to');

const loaded: string[] = [];
registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      const fromTypeScript = context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js');
      const notFound = typeof error === 'object' && error !== null && 'code' in error && error.code === 'ERR_MODULE_NOT_FOUND';
      if (!fromTypeScript || !notFound) throw error;
      return nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
    }
  },
  load(url, context, nextLoad) {
    loaded.push(url);
    return nextLoad(url, context);
  },
});
process.on('exit', () => writeFileSync(output, JSON.stringify(loaded)));
