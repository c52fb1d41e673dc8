/**
 * Seeing which packages a process loaded: preload {@link MODULE_LOAD_RECORDER} into it
 * (`node --import`, or `--import` in NODE_OPTIONS) with {@link LOADED_MODULES_ENV} naming a file,
 * then read that file with {@link readLoadedPackages} once the process has exited.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The preload script (see module-load-recorder.ts), as a URL for `--import`. */
export const MODULE_LOAD_RECORDER = new URL('./module-load-recorder.ts', import.meta.url).href;

/** The variable naming the file the recorder writes the loaded modules' URLs to. */
export const LOADED_MODULES_ENV = 'RLM_LOADED_MODULES_FILE';

/**
 * What the process recorded in `file` loaded from outside the directories `own`: an npm package's
 * name for a file under `node_modules`, otherwise the file's path relative to `relativeTo`. Node's
 * built-ins are left out. In order of first load, each once.
 */
export async function readLoadedPackages(file: string, options: { own: readonly string[]; relativeTo: string }): Promise<string[]> {
  const urls = JSON.parse(await readFile(file, 'utf8')) as string[];
  const own = options.own.map((dir) => `${pathToFileURL(dir).href}/`);
  const names = new Set<string>();
  for (const url of urls) {
    if (!url.startsWith('file:') || own.some((prefix) => url.startsWith(prefix))) continue;
    const loaded = fileURLToPath(url);
    const at = loaded.lastIndexOf('/node_modules/');
    const name = at === -1 ? undefined : /^(@[^/]+\/[^/]+|[^/]+)/.exec(loaded.slice(at + '/node_modules/'.length))?.[1];
    names.add(name ?? path.relative(options.relativeTo, loaded));
  }
  return [...names];
}
