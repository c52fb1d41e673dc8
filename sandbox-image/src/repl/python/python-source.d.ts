// Python sources are bundled as text (esbuild's `text` loader, see bundle-options.mjs).
declare module '*.py' {
  const source: string;
  export default source;
}
