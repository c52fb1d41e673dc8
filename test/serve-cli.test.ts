/**
 * `rlm serve` end to end, as an operator runs it: the built command in a child process with real
 * sandboxes, a local OpenAI-protocol provider, teams and tokens made by the CLI, the API over HTTP.
 * On the embedded database: 20 runs at once under `--max-concurrent-runs 4`; kill -9 mid-run and a
 * restart (nothing accepted lost, nothing left `running`, the dead server's sandboxes reaped);
 * SIGTERM drains (503 for new requests, the running run finishes in its grace, exit 0, no sandbox
 * left) and cancels what outlives the grace. On PostgreSQL: the same runs, and a kill -9 whose run
 * is failed once its lease expires.
 */
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openServiceStore } from '../orchestrator/src/service/store/service-store.js';
import { type ChatRequestBody, type FakeOpenAIServer, startFakeOpenAIServer, type ScriptedReply } from '../orchestrator/src/testing/fake-openai-server.js';
import { startPostgres, type TestPostgres } from './support/postgres.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';
import {
  api,
  createTeamToken,
  PROVIDER_KEY,
  finished,
  type RunJson,
  type ServeProcess,
  startServe,
  waitForNoSandboxes,
  waitForRun,
  writeServeConfig,
} from './support/serve-process.js';

const fence = (code: string) => `Let me look.\n\`\`\`repl\n${code}\n\`\`\``;

/**
 * The provider's script: a root call answers with a cell that counts the context and calls FINAL;
 * a query holding `[block]` gets a cell that never ends; `[slow]` waits for the test to release it.
 */
function script(gate: { release: Promise<void> }) {
  return async (body: ChatRequestBody): Promise<ScriptedReply> => {
    const prompt = body.messages.map((m) => String(m.content)).join('\n');
    if (prompt.includes('[block]')) return fence('await new Promise(() => {});');
    if (prompt.includes('[slow]')) await gate.release;
    if (prompt.includes('[refuse]'))
      return { status: 401, body: { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } } };
    return fence('FINAL("chars=" + String(context).length);');
  };
}

const servers: FakeOpenAIServer[] = [];
const processes: ServeProcess[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      p.child.kill('SIGKILL');
      await p.exited;
    }
  }
  for (const s of servers.splice(0)) await s.close();
});

let work: string;
beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'rlm-serve-cli-'));
});

async function setUp(name: string, serveConfig: Record<string, unknown> = {}) {
  let release!: () => void;
  const gate = { release: new Promise<void>((resolve) => (release = resolve)) };
  const provider = await startFakeOpenAIServer(script(gate));
  servers.push(provider);
  const dir = await mkdtemp(path.join(work, `${name}-`));
  await writeServeConfig(dir, provider, serveConfig);
  return { dir, provider, release };
}

async function serve(dir: string, args: string[] = []): Promise<ServeProcess> {
  const p = await startServe(dir, ['--warm', '1', ...args]);
  processes.push(p);
  return p;
}

/** The most runs whose [started_at, finished_at] intervals overlap at one instant. */
function maxOverlap(runs: RunJson[]): number {
  const points = runs.flatMap((r) => [
    { t: Date.parse(r.started_at as string), d: 1 },
    { t: Date.parse(r.finished_at as string), d: -1 },
  ]);
  // Ends before starts at the same instant: a run that ended as another began does not overlap it.
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let most = 0;
  for (const p of points) {
    now += p.d;
    most = Math.max(most, now);
  }
  return most;
}

describe('rlm serve on the embedded database', () => {
  it('runs 20 runs submitted at once, never more than the team’s 4 at a time, and every one succeeds', async () => {
    const { dir } = await setUp('twenty');
    const token = await createTeamToken(dir, 'research', ['--max-concurrent-runs', '4']);
    const server = await serve(dir, ['--max-sandboxes', '8']);
    const submitted = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        api<{ id: string; status: string }>(server.url, token, 'POST', '/v1/runs', { query: `count ${i}`, context: 'x'.repeat(i + 1) }),
      ),
    );
    for (const s of submitted) expect(s).toMatchObject({ status: 202, body: { status: 'queued' } });
    const runs = await Promise.all(submitted.map((s) => waitForRun(server.url, token, s.body.id, finished, 300_000)));
    for (const [i, run] of runs.entries()) expect(run).toMatchObject({ status: 'succeeded', answer: `chars=${i + 1}`, error: null });
    expect(maxOverlap(runs)).toBeLessThanOrEqual(4);
    const list = await api<{ data: RunJson[] }>(server.url, token, 'GET', '/v1/runs?limit=100');
    expect(list.body.data.map((r) => r.id).sort()).toEqual(submitted.map((s) => s.body.id).sort());
  });

  it('refuses a second server on the same data directory, while teams and tokens are managed beside the running one', async () => {
    const { dir } = await setUp('lock');
    const first = await serve(dir);
    // Made while the server runs: the embedded database is shared with the management commands.
    const token = await createTeamToken(dir, 'late');
    const run = await api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: 'count', context: 'abc' });
    expect(await waitForRun(first.url, token, run.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=3' });
    const second = await runRlm(['serve', '--port', '0'], { cwd: dir, env: cleanEnv({ ...PROVIDER_KEY }) });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toMatch(/in use by another rlm serve/);
  });

  it('loses nothing to kill -9: the running run ends failed "interrupted", the queued ones run after a restart, the dead server’s sandboxes are reaped', async () => {
    const { dir } = await setUp('kill9');
    const token = await createTeamToken(dir, 'ops', ['--max-concurrent-runs', '1']);
    const first = await serve(dir);
    const blocked = await api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: 'wait forever [block]', context: 'abc' });
    const queued = await Promise.all([0, 1].map((i) => api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: `then ${i}`, context: 'abcd' })));
    await waitForRun(first.url, token, blocked.body.id, (run) => run.status === 'running');
    const pid = first.child.pid as number;
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(dir);
    const interrupted = await waitForRun(second.url, token, blocked.body.id, finished);
    expect(interrupted).toMatchObject({ status: 'failed', error: 'interrupted' });
    for (const q of queued) expect(await waitForRun(second.url, token, q.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=4' });
    // The dead server's sandboxes: removed by the reaper of the new one.
    expect(await waitForNoSandboxes(pid)).toEqual([]);
  });

  it('drains on SIGTERM: new requests get 503, the running run finishes within its grace, the process exits 0 with no sandbox left', async () => {
    const { dir, release } = await setUp('drain');
    const token = await createTeamToken(dir, 'drain');
    const server = await serve(dir, ['--grace-seconds', '120']);
    const run = await api<{ id: string }>(server.url, token, 'POST', '/v1/runs', { query: 'take your time [slow]', context: 'hello' });
    await waitForRun(server.url, token, run.body.id, (r) => r.status === 'running');
    server.child.kill('SIGTERM');
    // Draining: a new request is refused while the run still runs (the provider holds its answer).
    const deadline = Date.now() + 60_000;
    let refused: Awaited<ReturnType<typeof api<{ error: { code: string } }>>> | undefined;
    while (Date.now() < deadline) {
      refused = await api<{ error: { code: string } }>(server.url, token, 'POST', '/v1/runs', { query: 'too late' });
      if (refused.status === 503) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(refused).toMatchObject({ status: 503, body: { error: { code: 'shutting_down' } } });
    expect(refused?.headers.get('retry-after')).toBeTruthy();
    release();
    expect(await server.exited).toBe(0);
    expect(await waitForNoSandboxes(server.child.pid as number, 10_000)).toEqual([]);
    await using store = await openServiceStore({ dataDir: path.join(dir, 'rlm-data') });
    expect(await store.getRun(null, run.body.id)).toMatchObject({ status: 'succeeded', answer: 'chars=5' });
  });

  it('cancels on SIGTERM what outlives the grace, with error "shutdown"', async () => {
    const { dir } = await setUp('grace');
    const token = await createTeamToken(dir, 'grace');
    const server = await serve(dir, ['--grace-seconds', '1']);
    const run = await api<{ id: string }>(server.url, token, 'POST', '/v1/runs', { query: 'never ends [block]' });
    await waitForRun(server.url, token, run.body.id, (r) => r.status === 'running');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(await waitForNoSandboxes(server.child.pid as number, 10_000)).toEqual([]);
    await using store = await openServiceStore({ dataDir: path.join(dir, 'rlm-data') });
    expect(await store.getRun(null, run.body.id)).toMatchObject({ status: 'cancelled', error: 'shutdown' });
  });
});

describe('rlm serve teams update', () => {
  interface TeamJson {
    name: string;
    budgetUsd: number | null;
    spentUsd: number;
    maxConcurrentRuns: number;
    maxQueued: number;
    models: string[] | null;
  }
  const rlm = (dir: string, args: string[]) => runRlm(['serve', 'teams', ...args], { cwd: dir, env: cleanEnv() });
  const teams = async (dir: string): Promise<TeamJson[]> => {
    const listed = await rlm(dir, ['list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    return JSON.parse(listed.stdout) as TeamJson[];
  };

  it('changes only the given limits of a team, says what changed, and teams list shows them', async () => {
    const dir = await mkdtemp(path.join(work, 'update-'));
    expect((await rlm(dir, ['create', 'research', '--budget-usd', '5'])).code).toBe(0);
    expect((await rlm(dir, ['create', 'other', '--max-queued', '3'])).code).toBe(0);

    const updated = await rlm(dir, ['update', 'research', '--budget-usd', '10', '--max-concurrent-runs', '2', '--models', 'fast,rlm:smart']);
    expect(updated).toMatchObject({ code: 0, stderr: '' });
    expect(updated.stdout).toBe('updated team research: budget $5.00 → $10.00, max-concurrent-runs 4 → 2, models every model → rlm + rlm:fast + rlm:smart\n');
    expect(await teams(dir)).toMatchObject([
      { name: 'other', budgetUsd: null, maxConcurrentRuns: 4, maxQueued: 3, models: null },
      { name: 'research', budgetUsd: 10, spentUsd: 0, maxConcurrentRuns: 2, maxQueued: 100, models: ['fast', 'smart'] },
    ]);

    const json = await rlm(dir, ['update', 'research', '--no-budget', '--all-models', '--max-queued', '100', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const listed = (await teams(dir)).find((team) => team.name === 'research');
    expect(JSON.parse(json.stdout)).toEqual(listed);
    expect(listed).toMatchObject({ budgetUsd: null, maxConcurrentRuns: 2, maxQueued: 100, models: null });
    const text = await rlm(dir, ['update', 'research', '--max-queued', '100', '--budget-usd', '2.5']);
    expect(text.stdout).toBe('updated team research: budget no limit → $2.50, max-queued 100 (unchanged)\n');
  });

  it('refuses bad usage with exit code 2, saying what to write, and an unknown team with exit code 1, changing nothing', async () => {
    const dir = await mkdtemp(path.join(work, 'update-usage-'));
    expect((await rlm(dir, ['create', 'research', '--budget-usd', '5'])).code).toBe(0);
    const before = await teams(dir);
    const hint = 'Run `rlm serve teams update --help` for usage.';
    const usage: [string[], string][] = [
      [['update', '--budget-usd', '10'], 'no team name: rlm serve teams update NAME'],
      [
        ['update', 'research'],
        'nothing to change in team research: give --budget-usd USD or --no-budget, --max-concurrent-runs N, --max-queued N, --models LIST or --all-models',
      ],
      [['update', 'research', '--budget-usd', '10', '--no-budget'], '--budget-usd and --no-budget contradict each other'],
      [['update', 'research', '--models', 'fast', '--all-models'], '--models and --all-models contradict each other'],
      [['update', 'research', '--max-concurrent-runs', '0'], '--max-concurrent-runs must be a whole number of at least 1 (got 0)'],
      [['update', 'research', '--budget-usd', 'lots'], '--budget-usd must be a number above 0 (got "lots")'],
      [['update', 'research', 'other', '--max-queued', '3'], 'give one team name, got 2: research other'],
    ];
    for (const [args, message] of usage) {
      const refused = await rlm(dir, args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain(`rlm: ${message}`);
      expect(refused.stderr).toContain(hint);
      expect(refused.stdout).toBe('');
    }
    const unknown = await rlm(dir, ['update', 'nobody', '--max-queued', '3']);
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: 'rlm: no team named nobody (rlm serve teams list shows them)\n' });
    expect(await teams(dir)).toEqual(before);
  });

  it('raises the budget of a team that spent it beside the running server, whose next submit is accepted', async () => {
    const { dir } = await setUp('update-budget');
    // A budget the first run overspends: its maxCostUsd is capped to it, and one model call costs more.
    const token = await createTeamToken(dir, 'spender', ['--budget-usd', '0.000001']);
    const server = await serve(dir);
    const first = await api<{ id: string }>(server.url, token, 'POST', '/v1/runs', { query: 'count', context: 'abc' });
    expect(first.status).toBe(202);
    await waitForRun(server.url, token, first.body.id, finished);
    const [spent] = await teams(dir);
    expect(spent?.spentUsd).toBeGreaterThanOrEqual(0.000001);
    const refused = await api<{ error: { code: string } }>(server.url, token, 'POST', '/v1/runs', { query: 'count', context: 'abc' });
    expect(refused).toMatchObject({ status: 429, body: { error: { code: 'budget_exhausted' } } });

    const raised = await rlm(dir, ['update', 'spender', '--budget-usd', '100']);
    expect(raised.code, raised.stderr).toBe(0);
    expect(raised.stdout).toBe('updated team spender: budget $0.0000 → $100.00\n');
    const again = await api<{ id: string }>(server.url, token, 'POST', '/v1/runs', { query: 'count', context: 'abcd' });
    expect(again.status).toBe(202);
    expect(await waitForRun(server.url, token, again.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=4' });
  });
});

describe('rlm serve runs prune and --retain-days', () => {
  const DAY_MS = 24 * 60 * 60 * 1000;
  const prune = (dir: string, args: string[]) => runRlm(['serve', 'runs', 'prune', ...args], { cwd: dir, env: cleanEnv() });

  /**
   * `count` runs of the team that finished `daysAgo` days ago (succeeded, with a trajectory; three
   * events each: queued, started, finished), written through the store with its clock set back.
   * Before the server starts: its worker would claim them first.
   */
  async function finishedRunsAgo(dir: string, teamName: string, daysAgo: number, count: number): Promise<string[]> {
    await using store = await openServiceStore({ dataDir: path.join(dir, 'rlm-data'), access: 'admin', now: () => Date.now() - daysAgo * DAY_MS });
    const team = await store.teamByName(teamName);
    if (!team) throw new Error(`no team ${teamName}`);
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const run = await store.submitRun({ teamId: team.id, input: { query: `old ${i}` }, model: null, language: 'javascript', limits: {}, source: 'runs' });
      await store.claimRun('seed', 60_000);
      const outcome = {
        status: 'succeeded',
        answer: 'old',
        error: null,
        usage: {},
        costUsd: 0.01,
        iterations: 1,
        trajectory: '{"type":"run_start"}\n',
      } as const;
      if (!(await store.finishRun('seed', run.id, outcome))) throw new Error('the seeded run was not finished');
      ids.push(run.id);
    }
    return ids;
  }

  /** Polls `check` until it holds, up to `timeoutMs` (generous: a loaded machine). */
  async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('prunes runs finished before --older-than beside a running embedded server, after a dry run that counts the same; --team keeps to one team', async () => {
    const { dir } = await setUp('prune');
    const research = await createTeamToken(dir, 'research');
    const ops = await createTeamToken(dir, 'ops');
    const oldResearch = await finishedRunsAgo(dir, 'research', 10, 2);
    const [oldOps] = await finishedRunsAgo(dir, 'ops', 10, 1);
    const [twoDays] = await finishedRunsAgo(dir, 'research', 2, 1);
    const server = await serve(dir);
    const fresh = await api<{ id: string }>(server.url, research, 'POST', '/v1/runs', { query: 'count', context: 'abc' });
    expect(await waitForRun(server.url, research, fresh.body.id, finished)).toMatchObject({ status: 'succeeded' });
    const spentBefore = (await runRlm(['serve', 'teams', 'list', '--json'], { cwd: dir, env: cleanEnv() })).stdout;

    const dry = await prune(dir, ['--older-than', '7', '--dry-run']);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    expect(dry.stdout).toMatch(/^would prune 3 runs \(9 events\) finished before \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\n$/);
    expect((await api(server.url, ops, 'GET', `/v1/runs/${oldOps}`)).status).toBe(200);

    const team = await prune(dir, ['--older-than', '7', '--team', 'ops', '--json']);
    expect(team.code, team.stderr).toBe(0);
    const json = JSON.parse(team.stdout) as { runs: number; events: number; finishedBefore: string };
    expect(json).toEqual({ runs: 1, events: 3, finishedBefore: expect.any(String) });
    expect(Math.abs(Date.parse(json.finishedBefore) - (Date.now() - 7 * DAY_MS))).toBeLessThan(60_000);
    expect((await api(server.url, ops, 'GET', `/v1/runs/${oldOps}`)).status).toBe(404);
    for (const id of oldResearch) expect((await api(server.url, research, 'GET', `/v1/runs/${id}`)).status).toBe(200);

    const all = await prune(dir, ['--older-than', '7']);
    expect(all.code, all.stderr).toBe(0);
    expect(all.stdout).toMatch(/^pruned 2 runs \(6 events\) finished before /);
    for (const id of oldResearch) {
      expect((await api(server.url, research, 'GET', `/v1/runs/${id}`)).status).toBe(404);
      expect((await api(server.url, research, 'GET', `/v1/runs/${id}/trajectory`)).status).toBe(404);
    }
    // Fractions of a day: 1.5 days takes the two-day-old run and leaves the one that just ran.
    expect((await prune(dir, ['--older-than', '1.5'])).stdout).toMatch(/^pruned 1 runs \(3 events\)/);
    expect((await api(server.url, research, 'GET', `/v1/runs/${twoDays}`)).status).toBe(404);
    expect((await api(server.url, research, 'GET', `/v1/runs/${fresh.body.id}`)).status).toBe(200);
    // The server kept serving, and the teams' spend is what it was.
    const after = await api<{ id: string }>(server.url, research, 'POST', '/v1/runs', { query: 'count', context: 'abcd' });
    expect(await waitForRun(server.url, research, after.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=4' });
    const spent = (list: string) => (JSON.parse(list) as { name: string; spentUsd: number }[]).find((t) => t.name === 'ops')?.spentUsd;
    expect(spent((await runRlm(['serve', 'teams', 'list', '--json'], { cwd: dir, env: cleanEnv() })).stdout)).toBe(spent(spentBefore));
  });

  it('refuses bad usage with exit code 2, saying what to write, and an unknown team with exit code 1 naming it', async () => {
    const dir = await mkdtemp(path.join(work, 'prune-usage-'));
    expect((await runRlm(['serve', 'teams', 'create', 'research'], { cwd: dir, env: cleanEnv() })).code).toBe(0);
    const hint = 'Run `rlm serve runs prune --help` for usage.';
    const usage: [string[], string][] = [
      [[], 'how old? rlm serve runs prune --older-than DAYS'],
      [['--dry-run'], 'how old? rlm serve runs prune --older-than DAYS'],
      [['--older-than', 'week'], '--older-than must be a number above 0 (got "week")'],
      [['--older-than', '0'], '--older-than must be a number above 0'],
      [['--older-than', '-2'], '--older-than must be a number above 0'],
      [['--older-than', '7', 'research'], 'unexpected argument: research'],
    ];
    for (const [args, message] of usage) {
      const refused = await prune(dir, args);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.stderr).toContain(`rlm: ${message}`);
      expect(refused.stderr).toContain(hint);
      expect(refused.stdout).toBe('');
    }
    const unknown = await prune(dir, ['--older-than', '7', '--team', 'nobody']);
    expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: 'rlm: no team named nobody (rlm serve teams list shows them)\n' });
    const group = await runRlm(['serve', 'runs'], { cwd: dir, env: cleanEnv() });
    expect(group.code).toBe(2);
    expect(group.stderr).toContain('prune');
  });

  it('with --retain-days prunes, at start, the runs that finished longer ago, logs it, and still drains and exits 0', async () => {
    const { dir } = await setUp('retain');
    const token = await createTeamToken(dir, 'research');
    const [old] = await finishedRunsAgo(dir, 'research', 10, 1);
    const [recent] = await finishedRunsAgo(dir, 'research', 2, 1);
    const server = await serve(dir, ['--retain-days', '7']);
    await until(() => /pruned 1 runs \(3 events\) finished before/.test(server.stdout()), 'the prune at start');
    const line = server
      .stdout()
      .split('\n')
      .find((l) => l.includes('pruned 1 runs'));
    expect(JSON.parse(line as string)).toMatchObject({ level: 30, component: 'retention', runs: 1, events: 3 });
    expect((await api(server.url, token, 'GET', `/v1/runs/${old}`)).status).toBe(404);
    expect((await api(server.url, token, 'GET', `/v1/runs/${recent}`)).status).toBe(200);
    // Its hourly timer does not hold the drain up.
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});

describe('rlm serve for OpenAI-compatible clients', () => {
  it('answers the official openai SDK with and without streaming, and the provider key appears in no response, event, trajectory or log line', async () => {
    const { dir } = await setUp('sdk');
    const token = await createTeamToken(dir, 'sdk');
    const server = await serve(dir);
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: token, maxRetries: 0 });

    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['rlm']);
    const completion = await client.chat.completions.create({
      model: 'rlm',
      messages: [
        { role: 'user', content: 'The report is 24 characters long.' },
        { role: 'user', content: 'How long is the context?' },
      ],
    });
    expect(completion.choices[0]?.message.content).toMatch(/^chars=\d+$/);
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({
      model: 'rlm',
      messages: [{ role: 'user', content: 'count it' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toMatch(/^chars=\d+$/);
    expect(usage?.total_tokens).toBeGreaterThan(0);

    // A run the provider refuses: its error travels through the API, its key never does.
    const refused = await api<{ id: string }>(server.url, token, 'POST', '/v1/runs', { query: 'please [refuse]' });
    expect(await waitForRun(server.url, token, refused.body.id, finished)).toMatchObject({ status: 'failed' });
    const seen: string[] = [server.stdout(), server.stderr()];
    const runs = await api<{ data: RunJson[] }>(server.url, token, 'GET', '/v1/runs?limit=100');
    seen.push(JSON.stringify(runs.body));
    for (const run of runs.body.data) {
      const events = await fetch(`${server.url}/v1/runs/${run.id}/events`, { headers: { authorization: `Bearer ${token}` } });
      seen.push(await events.text());
      seen.push((await api(server.url, token, 'GET', `/v1/runs/${run.id}/trajectory`)).body as string);
    }
    seen.push(await (await fetch(`${server.url}/metrics`)).text());
    expect(seen.join('\n').length).toBeGreaterThan(1000);
    for (const text of seen) expect(text).not.toContain(PROVIDER_KEY.OPENAI_API_KEY);
  });
});

describe('rlm serve on PostgreSQL', () => {
  let pg: TestPostgres;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.close();
  });

  it('runs runs, and after kill -9 fails the running one with "interrupted" once its lease expires while the queued one runs', async () => {
    const { dir } = await setUp('pg', { leaseSeconds: 2 });
    const db = ['--database', pg.url];
    const token = await createTeamToken(dir, 'pg-team', ['--max-concurrent-runs', '1'], db);
    const first = await serve(dir, db);
    const ok = await api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: 'count', context: 'abcdef' });
    expect(await waitForRun(first.url, token, ok.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=6' });
    const blocked = await api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: 'wait [block]' });
    const queued = await api<{ id: string }>(first.url, token, 'POST', '/v1/runs', { query: 'after', context: 'ab' });
    await waitForRun(first.url, token, blocked.body.id, (r) => r.status === 'running');
    const pid = first.child.pid as number;
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(dir, db);
    expect(await waitForRun(second.url, token, blocked.body.id, finished)).toMatchObject({ status: 'failed', error: 'interrupted' });
    expect(await waitForRun(second.url, token, queued.body.id, finished)).toMatchObject({ status: 'succeeded', answer: 'chars=2' });
    expect(await waitForNoSandboxes(pid)).toEqual([]);
  });
});
