import { copyFile, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errorMessage } from '../errors.js';
import { SAMPLE_ANSWER, SAMPLE_QUERY, writeSampleTrajectory } from '../testing/sample-trajectory.js';
import { RunDirectory, RunFileError } from './run-directory.js';
import type { RunListResponse, RunResponse } from './viewed-run.js';
import { PortInUseError, startViewerServer, type ViewerServer } from './viewer-server.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

let base: string;
let logs: string;
let ours: string;
let server: ViewerServer | undefined;

beforeEach(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'rlm-viewer-'));
  logs = path.join(base, 'logs');
  await mkdir(logs);
  ours = path.basename(await writeSampleTrajectory(logs, { now: () => new Date('2026-11-20T09:00:00Z') }));
  await copyFile(path.join(fixtures, 'reference-run.jsonl'), path.join(logs, 'reference-run.jsonl'));
  await writeFile(path.join(logs, 'broken.jsonl'), '{"type":"metadata","root_model":"m"}\nnot json at all\n');
  await writeFile(path.join(logs, 'notes.txt'), 'not a trajectory');
  await writeFile(path.join(base, 'secret.jsonl'), '{"type":"metadata","root_model":"SECRET-OUTSIDE-CONTENT"}\n');
  // Newest first: the reference run, then ours, then the broken one.
  await utimes(path.join(logs, 'broken.jsonl'), new Date('2026-01-01'), new Date('2026-01-01'));
  await utimes(path.join(logs, ours), new Date('2026-02-01'), new Date('2026-02-01'));
  await utimes(path.join(logs, 'reference-run.jsonl'), new Date('2026-03-01'), new Date('2026-03-01'));
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  await rm(base, { recursive: true, force: true });
});

/** The page's script does not matter here (viewer-assets.test.ts and test/viewer.test.ts test it). */
const SCRIPT = '/* the viewer script */';

async function start(options: { initialFile?: string; port?: number } = {}) {
  server = await startViewerServer({ directory: await RunDirectory.open(logs), script: SCRIPT, ...options });
  return server;
}

async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('the run list', () => {
  it('lists the .jsonl files of the directory, newest first, with what each run did', async () => {
    const { url } = await start();
    const response = await get(`${url}api/runs`);
    expect(response.status).toBe(200);
    const body = JSON.parse(response.text) as RunListResponse;
    expect(body.directory).toBe(logs);
    expect(body.initial).toBeNull();
    expect(body.runs.map((r) => r.file)).toEqual(['reference-run.jsonl', ours, 'broken.jsonl']);
    const [reference, sample, broken] = body.runs;
    expect(reference).toMatchObject({
      rootModel: 'gpt-5',
      query: 'How many ships did the keeper count?',
      iterations: 3,
      finalAnswer: '12 ships',
      totalTokens: 12_075,
      errorCount: 2,
      problemCount: 0,
      error: null,
    });
    expect(sample).toMatchObject({
      rootModel: 'claude-sonnet-4-5',
      query: SAMPLE_QUERY,
      iterations: 2,
      finalAnswer: SAMPLE_ANSWER,
      errorCount: 2,
      started: '2026-11-20T09:00:00.000Z',
    });
    expect(sample?.costUsd).toBeGreaterThan(0);
    expect(broken).toMatchObject({ rootModel: 'm', iterations: 0, finalAnswer: null, problemCount: 1 });
  });

  it('names the run to open first', async () => {
    const { url } = await start({ initialFile: ours });
    expect((JSON.parse((await get(`${url}api/runs`)).text) as RunListResponse).initial).toBe(ours);
  });
});

describe('one run', () => {
  it('returns the parsed trajectory of a run', async () => {
    const { url } = await start();
    const response = await get(`${url}api/run?file=${encodeURIComponent(ours)}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const body = JSON.parse(response.text) as RunResponse;
    expect(body.file).toBe(ours);
    expect(body.run.turns).toHaveLength(2);
    expect(body.run.turns[1]?.blocks[0]?.calls[0]?.child?.turns[0]?.response).toContain('The child counts the Fastnet entries.');
  });

  it('reports a malformed line in the run instead of failing', async () => {
    const { url } = await start();
    const body = JSON.parse((await get(`${url}api/run?file=broken.jsonl`)).text) as RunResponse;
    expect(body.run.problems).toEqual([{ where: 'line 2', message: expect.stringMatching(/^not JSON .*: not json at all$/) }]);
  });
});

describe('path confinement', () => {
  it.each([
    ['../secret.jsonl', 400, /\.\./],
    ['sub/../../secret.jsonl', 400, /\.\./],
    ['<absolute path of a file outside>', 400, /absolute/],
    ['/etc/passwd', 400, /absolute/],
    ['notes.txt', 400, /only \.jsonl/],
    ['missing.jsonl', 404, /no such run/],
    ['', 400, /no file/],
  ])('refuses %j with %i', async (name, status, message) => {
    const file = name.startsWith('<') ? path.join(base, 'secret.jsonl') : name;
    const { url } = await start();
    const response = await get(`${url}api/run?file=${encodeURIComponent(file)}`);
    expect(response.status).toBe(status);
    expect(JSON.parse(response.text).error).toMatch(message);
  });

  it('refuses a symlink that leads out of the directory, and leaves it out of the list', async () => {
    await symlink(path.join(base, 'secret.jsonl'), path.join(logs, 'escape.jsonl'));
    const { url } = await start();
    const response = await get(`${url}api/run?file=escape.jsonl`);
    expect(response.status).toBe(403);
    expect(response.text).not.toContain('SECRET-OUTSIDE-CONTENT');
    const list = JSON.parse((await get(`${url}api/runs`)).text) as RunListResponse;
    expect(list.runs.map((r) => r.file)).not.toContain('escape.jsonl');
  });

  it('follows a symlink that stays inside the directory', async () => {
    await symlink(path.join(logs, ours), path.join(logs, 'latest.jsonl'));
    const directory = await RunDirectory.open(logs);
    expect((await directory.read('latest.jsonl')).finalAnswer).toBe(SAMPLE_ANSWER);
  });

  it('refuses a symlinked directory that leads out', async () => {
    await symlink(base, path.join(logs, 'up'));
    const directory = await RunDirectory.open(logs);
    await expect(directory.read('up/secret.jsonl')).rejects.toThrow(RunFileError);
    await expect(directory.read('up/secret.jsonl')).rejects.toMatchObject({ statusCode: 403 });
  });
});

describe('the server', () => {
  it('listens on 127.0.0.1 and serves the page with a CSP that allows only its own resources', async () => {
    const { url, port } = await start();
    expect(url).toBe(`http://127.0.0.1:${port}/`);
    const page = await get(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'; style-src 'self'/);
    expect(page.text).toContain('<script src="/viewer.js" defer></script>');
    expect(page.text).not.toMatch(/https?:\/\//);
    const script = await get(`${url}viewer.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.text).toBe(SCRIPT);
    expect((await get(`${url}viewer.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await get(`${url}nothing`)).status).toBe(404);
    expect((await get(`${url}api/runs`, { method: 'POST' })).status).toBe(405);
  });

  it('refuses requests for another host name (DNS rebinding)', async () => {
    const { port } = await start();
    const { request } = await import('node:http');
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/runs', headers: { host: `attacker.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
  });

  it('says which port is in use and how to pick another', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await start({ port }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PortInUseError);
      expect(errorMessage(error)).toBe(`port ${port} is in use; pick another with --port`);
    } finally {
      blocker.close();
    }
  });

  it('closes twice without error', async () => {
    const s = await start();
    await s.close();
    await s.close();
    await expect(fetch(s.url)).rejects.toThrow();
  });
});
