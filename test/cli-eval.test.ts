/**
 * `rlm eval` end to end: the built command, spawned as a user runs it, against a local server that
 * speaks the OpenAI protocol, with real sandboxes. The scripted model really solves the needle
 * task the RLM way (a ```repl cell that searches `context`, then FINAL) and reads its prompt the
 * `direct` way, so a small context window shows the baseline failing where the RLM does not.
 * Also: resuming after kill -9 reruns only what is missing (counted at the provider), a budget
 * stop, a malformed row, and the report in a real headless Chromium through `rlm view DIR`.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EvalSummary, ResultLine } from '../orchestrator/src/eval/eval-types.js';
import { type ChatRequestBody, type FakeOpenAIServer, startFakeOpenAIServer } from '../orchestrator/src/testing/fake-openai-server.js';
import { cleanEnv, runRlm, startRlm } from './support/rlm-process.js';

const KEY = { OPENAI_API_KEY: 'sk-test-eval-key' };
const CHROMIUM = process.env.RLM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const fence = (code: string) => `I will search the context.\n\`\`\`repl\n${code}\n\`\`\``;
/** The needle as the niah generator writes it ("The special magic number for KEY is N."). */
const NEEDLE = /The special magic number for [^.\n]*? is (\d+)\./;

const servers: FakeOpenAIServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-eval-'));
});

/** Whether a request is an RLM run's root model (its system prompt teaches the REPL), not `direct`'s prompt. */
function isRlmRequest(body: ChatRequestBody): boolean {
  return body.messages.some((m) => m.role === 'system' && String(m.content).includes('FINAL_VAR'));
}

/**
 * A model that solves needle tasks: as an RLM's root it answers with a cell that searches the
 * context for the magic number and calls FINAL; given the context in its prompt (`direct`), it
 * finds the needle there if the prompt still holds it.
 */
function needleSolver(body: ChatRequestBody): string {
  if (isRlmRequest(body)) return fence(`const m = context.match(${NEEDLE.toString()});\nFINAL(m ? m[1] : "not found");`);
  const prompt = body.messages.map((m) => String(m.content)).join('\n');
  return NEEDLE.exec(prompt)?.[1] ?? 'The text does not say.';
}

async function fakeProvider(script: Parameters<typeof startFakeOpenAIServer>[0]): Promise<FakeOpenAIServer> {
  const server = await startFakeOpenAIServer(script);
  servers.push(server);
  return server;
}

const provider = (server: FakeOpenAIServer) => ['--backend', 'openai', '--base-url', server.baseURL, '--model', 'gpt-5-mini'];

function rlm(args: string[], options: { cwd?: string; onSpawn?: (child: ChildProcessWithoutNullStreams) => void } = {}) {
  return runRlm(args, { cwd: options.cwd ?? work, env: cleanEnv(KEY), ...(options.onSpawn ? { onSpawn: options.onSpawn } : {}) });
}

async function readLines(dir: string): Promise<ResultLine[]> {
  const text = await readFile(path.join(dir, 'results.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as ResultLine];
      } catch {
        return [];
      }
    });
}

/** A directory with a niah dataset of `n` tasks written by `rlm eval generate`, and a config file giving the root model a small window. */
async function needleSet(name: string, n: number, contextChars: number): Promise<{ dir: string; dataset: string }> {
  const dir = await mkdtemp(path.join(work, `${name}-`));
  const generated = await rlm(['eval', 'generate', 'niah', '--n', String(n), '--context-chars', String(contextChars), '--seed', '1', '--out', 'niah.jsonl'], {
    cwd: dir,
  });
  expect(generated.stderr).toContain(`${n} niah tasks`);
  expect(generated.code).toBe(0);
  // With 4 096 tokens kept for the answer, about 13 000 characters of context fit: a third of a
  // 40 000-character task, its beginning and end; needles in the middle are cut.
  await writeFile(path.join(dir, 'rlm.config.yaml'), 'root:\n  contextWindowTokens: 8000\n');
  return { dir, dataset: path.join(dir, 'niah.jsonl') };
}

describe('rlm eval', () => {
  let needleEval: string;

  it('scores the RLM 1.0 on a needle set where `direct` with a small window misses; --json prints summary.json alone', async () => {
    const { dir } = await needleSet('needle', 4, 40_000);
    const server = await fakeProvider(needleSolver);
    const result = await rlm(['eval', 'niah.jsonl', '--methods', 'rlm,direct', '--out', 'out', '--json', '--concurrency', '4', ...provider(server)], {
      cwd: dir,
    });
    expect(result.stderr).not.toContain('unexpected error');
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as EvalSummary;
    needleEval = path.join(dir, 'out');
    expect(JSON.parse(await readFile(path.join(needleEval, 'summary.json'), 'utf8'))).toEqual(summary);
    expect(summary.planned).toBe(8);
    expect(summary.finished).toBe(8);
    expect(summary.methods.rlm).toMatchObject({ n: 4, scored: 4, errors: 0, accuracy: 1 });
    expect(summary.methods.direct?.scored).toBe(4);
    expect(summary.methods.direct?.accuracy).toBeLessThan(1);
    expect(summary.pairs).toEqual([expect.objectContaining({ a: 'rlm', b: 'direct', tasks: 4 })]);
    expect(summary.pairs[0]?.difference).toBeGreaterThan(0);

    const lines = await readLines(needleEval);
    expect(lines).toHaveLength(8);
    const direct = lines.filter((line) => line.method === 'direct');
    expect(direct.every((line) => line.truncated === true)).toBe(true);
    for (const line of lines.filter((l) => l.method === 'rlm')) {
      expect(line.trajectory_file).toEqual(expect.any(String));
      expect(existsSync(path.join(needleEval, line.trajectory_file as string))).toBe(true);
    }
    // The RLM's root model never saw the context; each RLM task was one request.
    expect(server.requests.filter(isRlmRequest)).toHaveLength(4);
    expect(existsSync(path.join(needleEval, 'report.html'))).toBe(true);
    expect(existsSync(path.join(needleEval, 'eval.json'))).toBe(true);
  });

  it('resumes after kill -9: the same command runs only the tasks without a result', async () => {
    const { dir } = await needleSet('resume', 6, 5_000);
    // The third task's request is held until the first process is killed, so exactly two results
    // are written before the kill.
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const server = await fakeProvider(async (body, index) => {
      if (index === 2) await held;
      return needleSolver(body);
    });
    const args = ['eval', 'niah.jsonl', '--out', 'out', '--concurrency', '1', '--quiet', ...provider(server)];
    const first = await rlm(args, {
      cwd: dir,
      onSpawn: (child) => {
        void server.whenReceived(2).then(() => child.kill('SIGKILL'));
      },
    });
    expect(first.code).toBe(null); // killed
    release();
    const out = path.join(dir, 'out');
    const before = await readLines(out);
    expect(before.map((line) => line.task_id)).toEqual(['niah-1', 'niah-2']);
    const requestsBefore = server.requests.length;

    const second = await rlm(args, { cwd: dir });
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    // Four tasks were missing: four requests, one per task, none for the two already done.
    expect(server.requests.length - requestsBefore).toBe(4);
    const after = await readLines(out);
    expect(new Set(after.map((line) => line.task_id))).toEqual(new Set(['niah-1', 'niah-2', 'niah-3', 'niah-4', 'niah-5', 'niah-6']));
    expect(after.every((line) => line.score === 1)).toBe(true);

    // Resuming with another option that changes results is refused, naming it.
    const changed = await rlm([...args, '--epochs', '2'], { cwd: dir });
    expect(changed.code).toBe(2);
    expect(changed.stderr).toContain('epochs');
  });

  it('runs each task in a fresh sandbox: a global or a file one task leaves is invisible to the next', async () => {
    const dir = await mkdtemp(path.join(work, 'isolation-'));
    const rows = [1, 2, 3].map((i) => JSON.stringify({ id: `t${i}`, query: 'What did you find?', context: `task ${i}`, answer: 'undefined,false' }));
    await writeFile(path.join(dir, 'tasks.jsonl'), `${rows.join('\n')}\n`);
    const cell = [
      'const fs = process.getBuiltinModule("fs");',
      'const found = String(typeof globalThis.leftBehind) + "," + String(fs.existsSync("/tmp/left-behind"));',
      'globalThis.leftBehind = context;',
      'fs.writeFileSync("/tmp/left-behind", context);',
      'FINAL(found);',
    ].join('\n');
    const server = await fakeProvider(() => fence(cell));
    const result = await rlm(['eval', 'tasks.jsonl', '--out', 'out', '--concurrency', '1', '--scorer', 'exact', '--json', ...provider(server)], { cwd: dir });
    expect(result.code).toBe(0);
    const lines = await readLines(path.join(dir, 'out'));
    expect(lines.map((line) => [line.task_id, line.answer, line.score])).toEqual([
      ['t1', 'undefined,false', 1],
      ['t2', 'undefined,false', 1],
      ['t3', 'undefined,false', 1],
    ]);
  });

  it('stops at the budget: exit 1, the results so far kept and summarized', async () => {
    const { dir } = await needleSet('budget', 5, 5_000);
    // Each task: one call of 1 000 input and 100 output tokens of gpt-5-mini ($0.25 / $2 per
    // million): $0.00045. A budget of $0.001 pays for two, and the third's call passes it.
    const server = await fakeProvider((body) => ({ text: needleSolver(body), promptTokens: 1_000, completionTokens: 100 }));
    const result = await rlm(['eval', 'niah.jsonl', '--out', 'out', '--concurrency', '1', '--budget', '0.001', '--json', ...provider(server)], { cwd: dir });
    expect(result.code).toBe(1);
    const summary = JSON.parse(result.stdout) as EvalSummary;
    expect(summary.planned).toBe(5);
    expect(summary.finished).toBeGreaterThanOrEqual(1);
    expect(summary.finished).toBeLessThan(5);
    expect((await readLines(path.join(dir, 'out'))).length).toBe(summary.finished);
    expect(result.stderr).toContain('no result');
  });

  it('refuses a malformed row before anything runs: exit 2 naming the file, row and field', async () => {
    const dir = await mkdtemp(path.join(work, 'bad-'));
    await writeFile(path.join(dir, 'bad.jsonl'), `${JSON.stringify({ query: 'q1', answer: 'a' })}\n${JSON.stringify({ question: 'q2', answer: 'b' })}\n`);
    const server = await fakeProvider(needleSolver);
    const result = await rlm(['eval', 'bad.jsonl', '--out', 'out', ...provider(server)], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/bad\.jsonl/);
    expect(result.stderr).toMatch(/row 2/);
    expect(result.stderr).toContain('query');
    expect(server.requests).toHaveLength(0);
    expect(existsSync(path.join(dir, 'out', 'results.jsonl'))).toBe(false);
  });

  describe('the report in a browser', () => {
    let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
    afterAll(async () => {
      await context?.close();
    });

    it('`rlm view DIR` opens report.html: the table of results, the charts, sorting, and links to trajectories that open in the viewer', async () => {
      expect(needleEval, 'the needle evaluation ran first').toBeDefined();
      if (!existsSync(CHROMIUM)) throw new Error(`this test needs Chromium at ${CHROMIUM}: apt-get install -y chromium (or set RLM_TEST_CHROMIUM)`);
      const viewer = startRlm(['view', needleEval, '--no-open'], { env: cleanEnv(), cwd: work });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let stdout = '';
          viewer.stdout.on('data', (d: Buffer) => {
            stdout += d;
            const found = /at (http:\/\/127\.0\.0\.1:\d+\/\S*)/.exec(stdout)?.[1];
            if (found) resolve(found);
          });
          viewer.on('exit', (code) => reject(new Error(`rlm view exited with ${code} before serving`)));
        });
        expect(url).toMatch(/\/report\.html$/);
        context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
          executablePath: CHROMIUM,
          headless: true,
          args: [
            '--headless',
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
          ],
        });
        const requested: string[] = [];
        const errors: string[] = [];
        context.on('request', (request) => requested.push(request.url()));
        const page = await context.newPage();
        page.on('console', (message) => {
          if (message.type() === 'error') errors.push(message.text());
        });
        await page.goto(url);
        await expect.poll(() => page.locator('#results tbody tr').count()).toBe(8);
        expect(await page.locator('#svg-accuracy rect.bar').count()).toBe(2);
        expect(await page.locator('#svg-length circle.point').count()).toBe(8);
        // Sorting by score (the inline script runs under the report's policy).
        const scoreHeader = page.locator('#results thead th', { hasText: 'score' }).locator('button');
        await scoreHeader.click();
        await expect.poll(() => page.locator('#results thead th', { hasText: 'score' }).getAttribute('aria-sort')).toBe('ascending');
        const firstScore = await page.locator('#results tbody tr').first().locator('td').nth(3).textContent();
        expect(Number(firstScore)).toBe(0);
        // A trajectory link opens the viewer on that run.
        await page.locator('#results a', { hasText: 'trajectory' }).first().click();
        await page.locator('h1.run-title').waitFor({ timeout: 30_000 });
        expect(errors.filter((text) => /Content Security Policy/i.test(text))).toEqual([]);
        // Nothing left the machine.
        const origin = url.replace(/report\.html$/, '');
        expect(requested.filter((address) => !address.startsWith('data:') && !address.startsWith(origin))).toEqual([]);
      } finally {
        viewer.kill('SIGINT');
      }
    });
  });
});
