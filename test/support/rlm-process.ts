/**
 * Runs the built `rlm` command as a user would: a child process of `orchestrator/bin/rlm.js`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const RLM_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'orchestrator', 'bin', 'rlm.js');

export interface RlmProcessOptions {
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Default: the system temp directory, so no config file of the repository is picked up. */
  cwd?: string;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
}

export interface RlmExit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `rlm args…`; the caller reads its streams. */
export function startRlm(args: string[], options: RlmProcessOptions = {}): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [RLM_BIN, ...args], { env: options.env ?? process.env, cwd: options.cwd ?? os.tmpdir(), stdio: 'pipe' });
  child.stdin.end(options.stdin ?? '');
  return child;
}

/** Runs `rlm args…` to its exit and collects what it printed. `onSpawn` can signal it mid-run. */
export function runRlm(args: string[], options: RlmProcessOptions & { onSpawn?: (child: ChildProcessWithoutNullStreams) => void } = {}): Promise<RlmExit> {
  return new Promise((resolve, reject) => {
    const child = startRlm(args, options);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    options.onSpawn?.(child);
  });
}

/**
 * This process's environment as a user's would be for `rlm`: without provider keys (`*_API_KEY`,
 * `HF_TOKEN`), `RLM_*` settings and colour settings of the machine running the tests, plus `extra`.
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!/_API_KEY$|^HF_TOKEN$|^RLM_|COLOR/.test(key)) env[key] = value;
  return { ...env, ...extra };
}
