// Makes the published form of the `rlm` package in dist/bundle/ (run by `pnpm build` after tsc and
// copy-sandbox-assets.mjs):
// - index.js (the library) and cli.js (the `rlm` command), bundled with esbuild. The workspace
//   packages (@rlm/shared, the protocol) are inlined, so the tarball needs no private package; every
//   real dependency in package.json stays an `import` npm resolves. Code splitting keeps the CLI's
//   lazily imported commands in chunks of their own, loaded only when a command needs them.
// - index.d.ts, the public types rolled into one file by API Extractor, @rlm/shared's included.
// - dist/viewer-assets/viewer.js, the viewer page's script, bundled for the browser from
//   src/viewer/page/browser/, and dist/web-assets/serve-{team,run}.js, the `rlm serve` web page's
//   scripts, from src/service/http/web/browser/ (viewer-bundle.mjs).
// - The API report, rlm.api.md at the package root: the public surface as a reviewable text. A local
//   build rewrites it when the surface changed (and says so); under CI=true a build whose surface
//   differs from the committed report fails. `pnpm --filter rlm api:update` (this script with
//   --update-api-report) rewrites it on purpose, CI or not.
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig, ExtractorLogLevel } from '@microsoft/api-extractor';
import { build } from 'esbuild';
import { bundleServeWebScripts, bundleViewerScript, SERVE_WEB_SCRIPT_FILES, VIEWER_SCRIPT_FILE } from './viewer-bundle.mjs';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outdir = path.join(packageRoot, 'dist', 'bundle');
/** @type {{ dependencies: Record<string, string> }} */
const manifest = JSON.parse(readFileSync(path.join(packageRoot, 'package.json'), 'utf8'));
const dependencies = new Set(Object.keys(manifest.dependencies));

await rm(outdir, { recursive: true, force: true });
const started = performance.now();
await build({
  absWorkingDir: packageRoot,
  entryPoints: [
    { in: 'src/index.ts', out: 'index' },
    { in: 'src/testing-entry.ts', out: 'testing' },
    { in: 'src/cli/main.ts', out: 'cli' },
  ],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  // The workspace packages resolve to their TypeScript sources, as in development.
  conditions: ['rlm-source'],
  // The chunks sit next to the entries: code finding package.json by a relative URL
  // (`../../package.json` from dist/cli/run-cli.js) finds it the same way from dist/bundle/.
  chunkNames: '[name]-[hash]',
  sourcemap: false,
  legalComments: 'none',
  logLevel: ExtractorLogLevel.Warning,
  plugins: [
    {
      name: 'external-dependencies',
      setup(pluginBuild) {
        // A bare import of a package.json dependency (or a subpath of one) stays external.
        pluginBuild.onResolve({ filter: /^[^./]/ }, (args) => {
          const parts = args.path.split('/');
          const name = args.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
          return name !== undefined && dependencies.has(name) ? { path: args.path, external: true } : undefined;
        });
      },
    },
  ],
});
await bundleViewerScript({ write: true });
await bundleServeWebScripts({ write: true });
const bundledMs = performance.now() - started;

const updateReport = process.argv.includes('--update-api-report');
const changed = [];
for (const entry of [
  { declarations: 'dist/index.d.ts', rollup: 'dist/bundle/index.d.ts', report: 'rlm.api.md' },
  { declarations: 'dist/testing-entry.d.ts', rollup: 'dist/bundle/testing.d.ts', report: 'rlm-testing.api.md' },
]) {
  const result = extract(entry);
  if (!result.succeeded) {
    console.error(
      `bundle: API Extractor failed on ${entry.declarations} (${result.errorCount} errors, ${result.warningCount} warnings)` +
        (result.apiReportChanged ? `; the public API differs from ${entry.report}: run \`pnpm --filter rlm api:update\` and commit ${entry.report}` : ''),
    );
    process.exit(1);
  }
  if (result.apiReportChanged) changed.push(entry.report);
}
if (changed.length > 0) console.log(`bundle: the public API changed; ${changed.join(' and ')} updated; commit the change`);
console.log(
  `bundle: dist/bundle/{index,testing,cli}.js, ${VIEWER_SCRIPT_FILE}, ${SERVE_WEB_SCRIPT_FILES.team} and ${SERVE_WEB_SCRIPT_FILES.run} in ${bundledMs.toFixed(0)} ms; index.d.ts, testing.d.ts and the API reports by API Extractor`,
);

/**
 * Rolls the declarations reachable from one entry point into one file and compares its API report.
 * @param {{ declarations: string, rollup: string, report: string }} entry
 */
function extract(entry) {
  const config = ExtractorConfig.prepare({
    configObjectFullPath: path.join(packageRoot, 'api-extractor.json'),
    packageJsonFullPath: path.join(packageRoot, 'package.json'),
    configObject: {
      projectFolder: packageRoot,
      mainEntryPointFilePath: `<projectFolder>/${entry.declarations}`,
      bundledPackages: ['@rlm/shared'],
      compiler: {
        // The declarations tsc wrote to dist/, resolved the way a consumer resolves them: no
        // `rlm-source` condition, so @rlm/shared is its dist/ declarations.
        overrideTsconfig: {
          compilerOptions: {
            target: 'ES2023',
            lib: ['ES2023'],
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            types: ['node'],
            skipLibCheck: true,
          },
          files: [entry.declarations],
        },
      },
      apiReport: {
        enabled: true,
        reportFileName: entry.report,
        reportFolder: '<projectFolder>/',
        reportTempFolder: '<projectFolder>/dist/api-report/',
      },
      docModel: { enabled: false },
      dtsRollup: { enabled: true, untrimmedFilePath: `<projectFolder>/${entry.rollup}` },
      tsdocMetadata: { enabled: false },
      messages: {
        compilerMessageReporting: { default: { logLevel: ExtractorLogLevel.Warning } },
        extractorMessageReporting: {
          // Nothing goes into the reports but the API itself: a message's location there would be
          // an absolute path for bundled packages, different in every checkout.
          default: { logLevel: ExtractorLogLevel.Warning, addToApiReportFile: false },
          // Release tags (@public/@beta) are not used: everything exported is public.
          'ae-missing-release-tag': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          // Undocumented items are marked `// (undocumented)` in the report instead.
          'ae-undocumented': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          // A type reachable from the API but not exported by name is part of the report all the same.
          'ae-forgotten-export': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
          // Doc links to internals read as plain text to a user; not worth failing over.
          'ae-unresolved-link': { logLevel: ExtractorLogLevel.None, addToApiReportFile: false },
        },
        tsdocMessageReporting: { default: { logLevel: ExtractorLogLevel.None } },
      },
    },
  });
  return Extractor.invoke(config, {
    localBuild: updateReport || process.env.CI !== 'true',
    showVerboseMessages: false,
  });
}
