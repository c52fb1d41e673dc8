// What the viewer's trajectory reader imports from Node, as the bundle's stubs provide it
// (scripts/viewer-bundle.mjs): never called in the browser, declared so the page type-checks
// against the DOM alone.
declare module 'node:fs/promises' {
  export function readFile(path: string, encoding: 'utf8'): Promise<string>;
}
declare module 'node:module' {
  export function createRequire(url: string): (id: string) => unknown;
}
