/**
 * `rlm view` as a user runs it: the built command, spawned.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleViewerScript } from '../orchestrator/scripts/viewer-bundle.mjs';
import { SAMPLE_QUERY, writeSampleTrajectory } from '../orchestrator/src/testing/sample-trajectory.js';
import { runRlm, startRlm } from './support/rlm-process.js';

let tmp: string;
let logs: string;
let sample: string;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-view-'));
  logs = path.join(tmp, 'logs');
  sample = await writeSampleTrajectory(logs);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** No RLM_LOG_DIR or config from the developer's environment; no display, so no browser. */
function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { RLM_LOG_DIR: _dir, RLM_CONFIG: _config, DISPLAY: _display, WAYLAND_DISPLAY: _wayland, ...rest } = process.env;
  return { ...rest, ...extra };
}

const start = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): ChildProcessWithoutNullStreams => startRlm(args, { cwd: tmp, env: env(extraEnv) });
const rlm = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runRlm(args, { cwd: tmp, env: env(extraEnv) });

/** Starts `rlm view …` and resolves with the URL it prints, and a way to stop it with Ctrl-C. */
function serve(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ url: string; stop: () => Promise<{ code: number | null; stderr: string }> }> {
  return new Promise((resolve, reject) => {
    const child = start(args, extraEnv);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<{ code: number | null; stderr: string }>((done) => child.on('exit', (code) => done({ code, stderr })));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      const url = /at (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(stdout)?.[1];
      if (url) {
        resolve({
          url,
          stop: () => {
            child.kill('SIGINT');
            return exited;
          },
        });
      }
    });
    void exited.then(({ code }) => reject(new Error(`rlm view exited ${code} before printing its URL: ${stderr}`)));
  });
}

describe('rlm view', () => {
  it('prints its help', async () => {
    const result = await rlm(['view', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Usage: rlm view \[DIR \| FILE\] \[--port N\] \[--no-open\]\n/);
    expect(result.stdout).toContain('./rlm-logs');
  });

  it('exits 1 with one line naming a path that does not exist', async () => {
    const result = await rlm(['view', path.join(tmp, 'nowhere')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `rlm: cannot open ${path.join(tmp, 'nowhere')}: no such file or directory; give a directory of .jsonl trajectories or one .jsonl file\n`,
    );
  });

  it('says how to get trajectories when the default directory is missing', async () => {
    const result = await rlm(['view']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/^rlm: no trajectories: \.\/rlm-logs \(the default\) does not exist; write some with `rlm --log-dir \.\/rlm-logs …`/);
  });

  it('exits 2 on a bad flag or port, with a hint to its help', async () => {
    const results = await Promise.all(
      [
        ['view', '--bogus'],
        ['view', logs, '--port', 'http'],
      ].map((args) => rlm(args)),
    );
    for (const result of results) {
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/^rlm: .*\nRun `rlm view --help` for usage\.\n$/);
    }
  });

  it('says which port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await rlm(['view', logs, '--no-open', '--port', String(port)]);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`rlm: port ${port} is in use; pick another with --port\n`);
    } finally {
      blocker.close();
    }
  });

  it('serves the directory named by RLM_LOG_DIR until Ctrl-C', async () => {
    const server = await serve(['view', '--no-open'], { RLM_LOG_DIR: logs });
    const body = (await (await fetch(new URL('/api/runs', server.url))).json()) as { directory: string; runs: Array<{ query: string }> };
    expect(body.directory).toBe(logs);
    expect(body.runs.map((r) => r.query)).toEqual([SAMPLE_QUERY]);
    // The page's script, as the build bundled it into the package: the current sources' bundle.
    const script = await fetch(new URL('/viewer.js', server.url));
    expect(script.status).toBe(200);
    expect((await script.text()) === (await bundleViewerScript({ write: false })), 'dist/viewer-assets/viewer.js is stale: run `pnpm build`').toBe(true);
    expect((await server.stop()).code).toBe(0);
  });

  it('opens one file directly: its URL names the run', async () => {
    const server = await serve(['view', sample, '--no-open']);
    expect(server.url).toMatch(new RegExp(`#run=${path.basename(sample).replace(/\./g, '\\.')}$`));
    const list = (await (await fetch(new URL('/api/runs', server.url))).json()) as { initial: string };
    expect(list.initial).toBe(path.basename(sample));
    const { code } = await server.stop();
    expect(code).toBe(0);
  });
});
