/**
 * A 500 MB context through the built `rlm` command, as a user would run it, with real sandboxes and
 * a local fake model whose one cell answers with the context's length: at the default memory the
 * sandbox says it ran out of memory (its limit, and `--memory-mb` to raise it); with more memory
 * it works; and the host streams the file instead of holding it, so its peak RSS stays far below
 * the file's size.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { cleanEnv, RLM_BIN } from './support/rlm-process.js';

const FILE_BYTES = 500_000_000;
/**
 * The host's peak RSS must stay under this while it hands a 500 MB file to the sandbox: a bound
 * that proves the file is never held whole (the host reached 1.6 GB when it was), generous enough
 * for Node, the provider SDKs and Docker's client on a loaded machine.
 */
const HOST_RSS_BOUND_BYTES = 300 * 1024 * 1024;
const MIB = 1024 * 1024;

let dir: string;
let bigFile: string;
let wrapper: string;
const servers: FakeOpenAIServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-large-context-'));
  // The file, and the sandbox's copy of it in its state directory.
  const free = await statfs(dir);
  const freeBytes = free.bavail * free.bsize;
  if (freeBytes < 3 * FILE_BYTES) {
    throw new Error(
      `this test needs ${Math.ceil((3 * FILE_BYTES) / 1e9)} GB free in ${os.tmpdir()} (TMPDIR) for a 500 MB context and its copies; it has ${(freeBytes / 1e9).toFixed(1)} GB`,
    );
  }
  bigFile = path.join(dir, 'big.txt');
  await writeText(bigFile, FILE_BYTES);
  // Runs the CLI in this process and records its peak RSS on the way out, whatever the exit code.
  wrapper = path.join(dir, 'rlm-with-peak-rss.mjs');
  await writeFile(
    wrapper,
    [
      "import { writeFileSync } from 'node:fs';",
      "process.on('exit', () => writeFileSync(process.env.RLM_TEST_PEAK_RSS_FILE, String(process.resourceUsage().maxRSS * 1024)));",
      `await import(${JSON.stringify(RLM_BIN)});`,
    ].join('\n'),
  );
}, 300_000);

afterAll(async () => {
  for (const server of servers.splice(0)) await server.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Writes `bytes` of ASCII lines through a stream, a megabyte at a time. */
async function writeText(file: string, bytes: number): Promise<void> {
  const line = 'The quick brown fox jumps over the lazy dog; the vault code is not on this line. 0123456789\n';
  const chunk = line.repeat(Math.ceil(MIB / line.length));
  const out = createWriteStream(file);
  for (let written = 0; written < bytes; written += chunk.length) {
    if (!out.write(chunk.slice(0, Math.min(chunk.length, bytes - written)))) await once(out, 'drain');
  }
  out.end();
  await finished(out);
}

/** A root model whose every reply is one cell running `code`. */
async function model(code: string): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(() => `Let me measure it.\n\`\`\`repl\n${code}\n\`\`\``);
  servers.push(server);
  return server;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The CLI process's peak resident set size, in bytes. */
  peakRssBytes: number;
  wallMs: number;
}

/** Runs `rlm args…` in a child process, its standard input from `stdinFile` (else empty). */
async function rlm(args: string[], server: FakeOpenAIServer, stdinFile?: string): Promise<Run> {
  const rssFile = path.join(dir, `peak-rss-${Math.random().toString(36).slice(2)}`);
  const started = performance.now();
  const child = spawn(process.execPath, [wrapper, ...args, '--backend', 'openai', '--base-url', server.baseURL, '--model', 'fake-model'], {
    cwd: dir,
    env: cleanEnv({ OPENAI_API_KEY: 'sk-test-large-context', RLM_TEST_PEAK_RSS_FILE: rssFile }),
    stdio: 'pipe',
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
  else child.stdin.end();
  const [code] = (await once(child, 'exit')) as [number | null];
  const wallMs = performance.now() - started;
  const peakRssBytes = Number(await readFile(rssFile, 'utf8'));
  return { code, stdout, stderr, peakRssBytes, wallMs };
}

function report(label: string, run: Run): void {
  process.stderr.write(
    `[large-context] ${label}: exit ${run.code}, host peak RSS ${Math.round(run.peakRssBytes / MIB)} MiB, ${(run.wallMs / 1000).toFixed(1)} s\n`,
  );
}

describe('a 500 MB context file', () => {
  it('at the default memory, fails at once saying the sandbox ran out of memory, its limit and --memory-mb; the host never holds the file', async () => {
    const server = await model('FINAL(String(context.length))');
    const run = await rlm(['How long is the context?', '--context-file', 'big.txt', '--json'], server);
    report('default memory', run);
    const result = JSON.parse(run.stdout) as { success: boolean; error: string | null; answer: string | null };
    expect(result.success).toBe(false);
    expect(result.error).toMatch(/ran out of memory loading context "context" \(a 500 MB file\) at its memory limit of 1024 MiB/);
    expect(result.error).toContain('--memory-mb');
    expect(run.stderr).toContain('ran out of memory loading context');
    expect(run.code).toBe(4);
    // The run ended at loading: no cell ever ran (the model may have been asked once meanwhile).
    expect(server.requests.length).toBeLessThanOrEqual(1);
    expect(run.peakRssBytes).toBeLessThan(HOST_RSS_BOUND_BYTES);
  }, 300_000);

  it('with --memory-mb 2048, loads whole and answers its length; the host never holds the file', async () => {
    const server = await model('FINAL(String(context.length))');
    const run = await rlm(['How long is the context?', '--context-file', 'big.txt', '--memory-mb', '2048'], server);
    report('--memory-mb 2048', run);
    expect(run.stdout).toBe(`${FILE_BYTES}\n`);
    expect(run.code).toBe(0);
    // The model was told the context's size, estimated from the file, never its content.
    const firstMessage = JSON.stringify(server.requests[0]?.messages);
    expect(firstMessage).toContain('a string with about 500,000,000 total characters');
    expect(firstMessage).not.toContain('vault code');
    expect(run.peakRssBytes).toBeLessThan(HOST_RSS_BOUND_BYTES);
  }, 300_000);

  it('from standard input beside a literal, streams both into a map; the temporary copy is removed', async () => {
    const stdinCopies = async () => new Set((await readdir(os.tmpdir())).filter((name) => name.startsWith('rlm-stdin-')));
    const before = await stdinCopies();
    const server = await model('FINAL(context["<stdin>"].length + " " + context["<context>"])');
    const run = await rlm(['How long is it?', '-', '--context', 'and a note', '--memory-mb', '3072'], server, bigFile);
    report('standard input, --memory-mb 3072', run);
    expect(run.stdout).toBe(`${FILE_BYTES} and a note\n`);
    expect(run.code).toBe(0);
    expect(run.peakRssBytes).toBeLessThan(HOST_RSS_BOUND_BYTES);
    const left = [...(await stdinCopies())].filter((name) => !before.has(name));
    expect(left).toEqual([]);
  }, 300_000);
});
