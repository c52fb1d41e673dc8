/**
 * Lets a benchmark import the test fakes from their TypeScript sources (`orchestrator/src/testing/`)
 * with Node's type stripping. Two module-resolution fixes make that work:
 * - The fakes' imports say `./per-request.js` for `per-request.ts`, as tsc wants. Node does not map
 *   them, so a relative `.js` import from a `.ts` file that finds nothing is retried as `.ts`.
 * - What the fakes import from the library itself (`../errors.js`…) comes from the build in
 *   `orchestrator/dist/`, the same build the benchmark measures: the library's sources use
 *   TypeScript that type stripping cannot run (parameter properties).
 */
import { registerHooks } from 'node:module';

const SOURCES = '/orchestrator/src/';

export function registerSourceHooks(): void {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      let resolved: ReturnType<typeof nextResolve>;
      try {
        resolved = nextResolve(specifier, context);
      } catch (error) {
        const fromTypeScript = context.parentURL?.endsWith('.ts') && specifier.startsWith('.') && specifier.endsWith('.js');
        const notFound = typeof error === 'object' && error !== null && 'code' in error && error.code === 'ERR_MODULE_NOT_FOUND';
        if (!fromTypeScript || !notFound) throw error;
        resolved = nextResolve(`${specifier.slice(0, -'.js'.length)}.ts`, context);
      }
      const at = resolved.url.indexOf(SOURCES);
      if (at === -1 || resolved.url.includes(`${SOURCES}testing/`) || !resolved.url.endsWith('.ts')) return resolved;
      const built = `${resolved.url.slice(0, at)}/orchestrator/dist/${resolved.url.slice(at + SOURCES.length, -'.ts'.length)}.js`;
      return nextResolve(built, context);
    },
  });
}
