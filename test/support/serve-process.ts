/**
 * Drives `rlm serve` as an operator runs it: the built command in a child process, its teams and
 * tokens made with `rlm serve teams|tokens create`, and its API called over real HTTP.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FakeOpenAIServer } from '../../orchestrator/src/testing/fake-openai-server.js';
import { listSandboxes } from '../../orchestrator/src/sandbox/reaper.js';
import { testDocker } from './docker.js';
import { cleanEnv, runRlm, startRlm } from './rlm-process.js';

export const PROVIDER_KEY = { OPENAI_API_KEY: 'sk-test-serve-key-7f3a' };

/** Writes `rlm.config.yaml` into `dir`: the fake provider as the root model, and `serve:` settings. */
export async function writeServeConfig(dir: string, provider: FakeOpenAIServer, serve: Record<string, unknown> = {}): Promise<string> {
  const file = path.join(dir, 'rlm.config.yaml');
  const lines = [
    'root:',
    '  backend: openai',
    `  baseURL: ${provider.baseURL}`,
    '  model: gpt-5-mini',
    'limits:',
    '  maxIterations: 4',
    '  timeoutSeconds: 600',
    ...(Object.keys(serve).length > 0 ? ['serve:'] : []),
    ...Object.entries(serve).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`),
  ];
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}

export interface ServeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  /** Everything it wrote to stderr / stdout so far. */
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (null when killed by a signal) once it exited. */
  readonly exited: Promise<number | null>;
}

/** Starts `rlm serve --port 0 …` in `cwd` and resolves once it listens (its stderr line names the URL). */
export async function startServe(cwd: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = startRlm(['serve', '--port', '0', ...args], { cwd, env: cleanEnv({ ...PROVIDER_KEY, ...env }) });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const url = await listeningUrl(child, exited, () => `${stderr}\n${stdout}`);
  return { child, url, exited, stderr: () => stderr, stdout: () => stdout };
}

/**
 * The URL a starting `rlm serve` names on stderr (`listening on http://…`), once it has. Rejects
 * when the process exits first, with `printed()` (what it wrote) in the message.
 */
export function listeningUrl(child: ChildProcessWithoutNullStreams, exited: Promise<number | null>, printed: () => string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      const match = /listening on (http:\/\/\S+)/.exec(stderr);
      if (match?.[1]) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`rlm serve exited (${code}) before listening:\n${printed()}`)));
  });
}

/** `rlm serve teams create NAME …` then `rlm serve tokens create --team NAME`: the token. */
export async function createTeamToken(cwd: string, team: string, teamArgs: string[] = [], databaseArgs: string[] = []): Promise<string> {
  const created = await runRlm(['serve', 'teams', 'create', team, ...teamArgs, ...databaseArgs], { cwd, env: cleanEnv() });
  if (created.code !== 0) throw new Error(`teams create failed (${created.code}): ${created.stderr}`);
  const token = await runRlm(['serve', 'tokens', 'create', '--team', team, ...databaseArgs], { cwd, env: cleanEnv() });
  if (token.code !== 0) throw new Error(`tokens create failed (${token.code}): ${token.stderr}`);
  return token.stdout.trim();
}

export interface RunJson {
  id: string;
  status: string;
  query: string;
  answer: string | null;
  error: string | null;
  usage: Record<string, unknown>;
  cost_usd: number | null;
  iterations: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/** A JSON call to the API with the token. */
export async function api<T = unknown>(
  url: string,
  token: string,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: T; headers: Headers }> {
  const response = await fetch(`${url}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, body: parsed as T, headers: response.headers };
}

/** Polls `GET /v1/runs/:id` until `done(run)` holds, up to `timeoutMs` (generous: a loaded machine). */
export async function waitForRun(url: string, token: string, id: string, done: (run: RunJson) => boolean, timeoutMs = 180_000): Promise<RunJson> {
  const deadline = Date.now() + timeoutMs;
  let last: RunJson | undefined;
  while (Date.now() < deadline) {
    const { status, body } = await api<RunJson>(url, token, 'GET', `/v1/runs/${id}`);
    if (status === 200) {
      last = body;
      if (done(body)) return body;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`run ${id} never reached the expected state; last: ${JSON.stringify(last)}`);
}

export const finished = (run: RunJson) => ['succeeded', 'failed', 'cancelled'].includes(run.status);

/** The sandbox containers the process `pid` owns on this engine. */
export async function sandboxesOf(pid: number): Promise<string[]> {
  const containers = await listSandboxes({ docker: testDocker() });
  return containers.filter((c) => c.owner.split(':')[1] === String(pid)).map((c) => c.id);
}

/** Polls until the process `pid` owns no sandbox container, up to `timeoutMs`; the ids left otherwise. */
export async function waitForNoSandboxes(pid: number, timeoutMs = 120_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let left = await sandboxesOf(pid);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    left = await sandboxesOf(pid);
  }
  return left;
}
