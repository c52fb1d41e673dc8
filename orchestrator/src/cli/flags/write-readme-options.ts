/**
 * `pnpm docs:cli`: rewrites the README's option table from cli-flags.ts. Runs from the TypeScript
 * sources, without a build (`node --experimental-transform-types`): the sources import `./x.js`
 * for `x.ts`, as tsc wants, so a relative `.js` import from a `.ts` file that finds nothing is
 * retried as `.ts` before the table's modules load.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

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
});

const { withOptionTable } = await import('./readme-options.js');
const readme = new URL('../../../../README.md', import.meta.url);
const before = readFileSync(readme, 'utf8');
const after = withOptionTable(before);
if (after === before) {
  console.log('README.md: the option table is up to date');
} else {
  writeFileSync(readme, after);
  console.log('README.md: rewrote the option table from orchestrator/src/cli/flags/cli-flags.ts');
}
