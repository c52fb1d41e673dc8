/**
 * Opening a URL in the user's browser, when there is one to open.
 */
import { spawn } from 'node:child_process';

/**
 * Asks the system to open `url` (`open` on macOS, `cmd /c start` on Windows, `xdg-open`
 * elsewhere) and resolves whether a launcher started. Never throws: no launcher, or — on Linux —
 * no graphical session (neither DISPLAY nor WAYLAND_DISPLAY, where xdg-open would start a text
 * browser in this terminal) resolves false.
 */
export function openInBrowser(url: string, options: { platform?: NodeJS.Platform; env?: NodeJS.ProcessEnv } = {}): Promise<boolean> {
  const platform = options.platform ?? process.platform;
  const env = options.env ?? process.env;
  let command: string;
  let args: string[];
  if (platform === 'darwin') {
    command = 'open';
    args = [url];
  } else if (platform === 'win32') {
    command = 'cmd';
    args = ['/c', 'start', '""', url];
  } else {
    if (!env.DISPLAY && !env.WAYLAND_DISPLAY) return Promise.resolve(false);
    command = 'xdg-open';
    args = [url];
  }
  return new Promise((resolve) => {
    try {
      const child = spawn(command, args, { stdio: 'ignore', detached: true, env });
      child.once('error', () => resolve(false));
      child.once('spawn', () => {
        child.unref();
        resolve(true);
      });
    } catch {
      resolve(false);
    }
  });
}
