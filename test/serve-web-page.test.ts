/**
 * `rlm serve`'s web page in a real headless Chromium (Debian's, driven by playwright-core), against
 * the real service app on a real port over the real embedded store: the test pastes a token, lists
 * the team's runs, submits one with a context file, and acts as the worker (claim, events, finish)
 * while the page shows the status change live; it filters, cancels with the keyboard, opens a run
 * in the viewer and watches its events and then its trajectory. The page's scripts are bundled from
 * their current sources the way the build bundles them. Leaves screenshots in test/.artifacts/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleServeWebScripts } from '../orchestrator/scripts/viewer-bundle.mjs';
import { createServiceApp, type ServiceApp } from '../orchestrator/src/service/http/service-app.js';
import { registerWebPages } from '../orchestrator/src/service/http/web-page.js';
import { createServiceNotices } from '../orchestrator/src/service/service-notices.js';
import { ServiceMetrics } from '../orchestrator/src/service/service-metrics.js';
import type { RunOutcome, RunRecord, ServeSettings, ServiceNotices, TeamRecord } from '../orchestrator/src/service/service-types.js';
import { type OpenedServiceStore, openServiceStore } from '../orchestrator/src/service/store/service-store.js';
import { SAMPLE_ANSWER, SAMPLE_QUERY, writeSampleTrajectory } from '../orchestrator/src/testing/sample-trajectory.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = path.join(root, 'test', '.artifacts');
const CHROMIUM = process.env.RLM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';
const WORKER = 'web-page-test-worker';

const SETTINGS: ServeSettings = {
  host: '127.0.0.1',
  port: 0,
  maxBodyBytes: 1024 * 1024,
  graceSeconds: 1,
  models: [
    { id: 'rlm', name: null, providerModel: 'fake-root' },
    { id: 'rlm:fast', name: 'fast', providerModel: 'fake-fast' },
  ],
  defaultLanguage: 'javascript',
  limits: { maxIterations: 20 },
  maxRunningRuns: 4,
  leaseMs: 60_000,
  retryInterrupted: false,
  maxAttempts: 3,
};

let tmp: string;
let store: OpenedServiceStore;
let notices: ServiceNotices;
let app: ServiceApp;
let url: string;
let context: BrowserContext;
let trajectory: string;
/** Every URL the browser asked for, every dialog it opened, every script error and CSP report. */
const requested: string[] = [];
const dialogs: string[] = [];
const pageErrors: string[] = [];
const cspViolations: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the web page test needs Chromium at ${CHROMIUM}: apt-get install -y chromium (or set RLM_TEST_CHROMIUM)`);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rlm-serve-web-'));
  // The page's scripts as the build bundles them from the current sources.
  const scripts = await bundleServeWebScripts({ write: false });
  trajectory = await readFile(await writeSampleTrajectory(path.join(tmp, 'logs')), 'utf8');
  store = await openServiceStore({ dataDir: path.join(tmp, 'data') });
  notices = createServiceNotices();
  app = await createServiceApp({
    store,
    notices,
    metrics: new ServiceMetrics(),
    settings: SETTINGS,
    logger: pino({ level: 'silent' }),
    readiness: async () => ({ database: true, docker: true }),
    registerPages: (instance) => registerWebPages(instance, { scripts }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('the app is not listening on a TCP port');
  url = `http://127.0.0.1:${address.port}`;
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 1000 },
    colorScheme: 'light',
  });
  context.on('request', (request) => requested.push(request.url()));
}, 120_000);

afterAll(async () => {
  await context?.close();
  await app?.close();
  await store?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Acting as the worker and the team's admin

let teams = 0;

/** A new team and a token of it. */
async function newTeam(): Promise<{ team: TeamRecord; token: string }> {
  const team = await store.createTeam({ name: `team-${++teams}` });
  const { token } = await store.createToken(team.name);
  return { team, token };
}

/** A queued run of the team, as `POST /v1/runs` stores it. */
function queue(team: TeamRecord, query: string): Promise<RunRecord> {
  return store.submitRun({ teamId: team.id, input: { query }, model: null, language: 'javascript', limits: {}, source: 'runs' });
}

/** Tells the event streams that the run has new events, as the worker does. */
async function publishEvents(runId: string): Promise<void> {
  const events = await store.readEvents(runId, 0);
  const last = events.at(-1);
  if (last) notices.publish({ kind: 'run_events', runId, lastSeq: last.seq });
}

/** Claims the one queued run, which must be `runId` (the tests keep one queued at a time). */
async function claim(runId: string): Promise<void> {
  const claimed = await store.claimRun(WORKER, SETTINGS.leaseMs);
  expect(claimed?.id).toBe(runId);
  await publishEvents(runId);
}

async function emit(runId: string, events: { type: string; data: Record<string, unknown> }[]): Promise<void> {
  await store.appendEvents(runId, events);
  await publishEvents(runId);
}

async function finish(runId: string, outcome: Partial<RunOutcome> & Pick<RunOutcome, 'status'>): Promise<void> {
  const held = await store.finishRun(WORKER, runId, { answer: null, error: null, usage: {}, costUsd: null, iterations: 0, trajectory: null, ...outcome });
  expect(held).toBe(true);
  await publishEvents(runId);
}

/** A run that ran and ended with `outcome`. */
async function finishedRun(team: TeamRecord, query: string, outcome: Partial<RunOutcome> & Pick<RunOutcome, 'status'>): Promise<RunRecord> {
  const run = await queue(team, query);
  await claim(run.id);
  await finish(run.id, outcome);
  return run;
}

const SUCCEEDED: Partial<RunOutcome> & Pick<RunOutcome, 'status'> = {
  status: 'succeeded',
  answer: SAMPLE_ANSWER,
  iterations: 2,
  costUsd: 0.0123,
  usage: { 'fake-root': { calls: 2, inputTokens: 100, outputTokens: 20, cacheReadTokens: 0, cacheWriteTokens: 0, costUsd: 0.0123 } },
};

// ---------------------------------------------------------------------------------------------
// The browser

async function openPage(pathname = '/', before?: (page: Page) => Promise<unknown>): Promise<Page> {
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) cspViolations.push(message.text());
  });
  // Every violation of the page's policy, even one whose exception the script caught (zod's probe
  // for `new Function`, say), fires this event; the console shows only some.
  await page.addInitScript(`
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
  `);
  await before?.(page);
  await page.goto(`${url}${pathname}`);
  return page;
}

/** Closes the page, keeping the policy violations it saw. */
async function closePage(page: Page): Promise<void> {
  const seen = await page.evaluate('window.__violations');
  if (Array.isArray(seen)) cspViolations.push(...seen.map(String));
  await page.close();
}

/** Pastes `token` into the token form and waits for the page behind it. */
async function pasteToken(page: Page, token: string): Promise<void> {
  await page.locator('#token-input').fill(token);
  await page.getByRole('button', { name: 'Use this token' }).click();
  await page.locator('#app').waitFor();
}

function row(page: Page, runId: string): Locator {
  return page.locator(`#runs-body tr[data-run-id="${runId}"]`);
}

/** Waits until the run's row shows `status`. */
async function rowStatus(page: Page, runId: string, status: string): Promise<void> {
  await page.locator(`#runs-body tr[data-run-id="${runId}"][data-status="${status}"]`).waitFor();
}

async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, name), fullPage: true });
}

describe('rlm serve’s web page in a browser', () => {
  it('says clearly that a bad token was refused, and keeps none of it', async () => {
    const page = await openPage();
    await page.locator('#token-section').waitFor();
    expect(await page.locator('#app').isHidden()).toBe(true);
    await page.locator('#token-input').fill('rlm_not-a-token-of-this-server');
    await page.locator('#token-input').press('Enter');
    await page.locator('#token-error', { hasText: 'refused' }).waitFor();
    expect(await page.locator('#token-error').innerText()).toMatch(/The server refused this token \(invalid or revoked token\)\. Paste a valid one/);
    expect(await page.locator('#app').isHidden()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await closePage(page);
  });

  it('lists the team’s runs (another team’s not) once a token is pasted, keeps it across reloads, forgets it on demand', async () => {
    const { team, token } = await newTeam();
    const other = await newTeam();
    const hostile = await finishedRun(team, `Look: ${HOSTILE} <script>alert(2)</script>`, { ...SUCCEEDED, answer: HOSTILE });
    const failed = await finishedRun(team, 'Count the ships', { status: 'failed', error: 'the model provider answered 500' });
    const theirs = await finishedRun(other.team, 'Not yours', SUCCEEDED);

    const page = await openPage();
    await pasteToken(page, token);
    await rowStatus(page, hostile.id, 'succeeded');
    await rowStatus(page, failed.id, 'failed');
    expect(await page.locator('#runs-body tr').count()).toBe(2);
    expect(await row(page, theirs.id).count()).toBe(0);
    // Newest first; model output and queries that look like HTML are shown as text.
    expect(await page.locator('#runs-body tr').first().getAttribute('data-run-id')).toBe(failed.id);
    expect(await row(page, hostile.id).locator('.query-cell').innerText()).toBe(`Look: ${HOSTILE} <script>alert(2)</script>`);
    expect(await row(page, failed.id).innerText()).toContain('the model provider answered 500');
    expect(await row(page, hostile.id).innerText()).toContain('$0.0123');
    expect(await page.locator('#runs-body img, #runs-body script').count()).toBe(0);
    expect(await page.locator('#token-state').innerText()).toBe(`token ${token.slice(0, 12)}…`);

    // Kept in this tab's session storage: a reload needs no new paste.
    await page.reload();
    await rowStatus(page, failed.id, 'failed');
    expect(await page.locator('#token-section').isHidden()).toBe(true);

    await page.getByRole('button', { name: 'Forget token' }).click();
    await page.locator('#token-section').waitFor();
    expect(await page.locator('#token-error').innerText()).toContain('Token forgotten');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.reload();
    await page.locator('#token-section').waitFor();
    expect(await page.locator('#app').isHidden()).toBe(true);
    await closePage(page);
  });

  it('submits a run with a context file read in the browser, and shows its status live: queued, running, succeeded', async () => {
    const { token } = await newTeam();
    const page = await openPage();
    await pasteToken(page, token);
    await page.locator('#runs-message', { hasText: 'No runs yet' }).waitFor();
    // The models the server serves, as GET /v1/models lists them.
    await page.locator('#model option[value="rlm:fast"]').waitFor({ state: 'attached' });

    const contextText = `ship log\n${'Fastnet Rock, 41 ships\n'.repeat(200)}é ✓ <b>not html</b>\n`;
    await page.locator('#query').fill('Which lighthouse logged the most ships?');
    await page.locator('#context-file').setInputFiles({ name: 'ships.txt', mimeType: 'text/plain', buffer: Buffer.from(contextText, 'utf8') });
    await page.locator('#language').selectOption('python');
    await page.locator('#model').selectOption('rlm:fast');
    await page.getByRole('button', { name: 'Submit run' }).click();
    const submitted = page.locator('#submit-status a');
    await submitted.waitFor();
    const runId = await submitted.innerText();
    expect(runId).toMatch(/^run_[a-z0-9]+$/);
    expect(await page.locator('#submit-status').innerText()).toBe(`Submitted ${runId} (queued).`);
    // The form is ready for the next one.
    expect(await page.locator('#query').inputValue()).toBe('');

    // Stored as sent: the file's text as the context, the language and the model.
    expect(await store.getRunInput(runId)).toEqual({ query: 'Which lighthouse logged the most ships?', context: contextText });
    const record = await store.getRun(null, runId);
    expect(record).toMatchObject({ status: 'queued', language: 'python', model: 'fast' });

    await rowStatus(page, runId, 'queued');
    expect(
      await row(page, runId)
        .getByRole('button', { name: `Cancel run ${runId}` })
        .isVisible(),
    ).toBe(true);
    await claim(runId);
    await rowStatus(page, runId, 'running');
    await emit(runId, [{ type: 'turn_start', data: { runId, depth: 0, time: Date.now(), turn: 1 } }]);
    await finish(runId, { ...SUCCEEDED, trajectory });
    await rowStatus(page, runId, 'succeeded');
    // The final record, read once the stream said it finished: its cost, and no Cancel button.
    await row(page, runId).locator('td', { hasText: '$0.0123' }).waitFor();
    expect(await row(page, runId).getByRole('button').count()).toBe(0);
    expect(await page.locator('#announcer').innerText()).toBe(`Run ${runId} succeeded.`);
    await screenshot(page, 'serve-team-page.png');
    await closePage(page);
  });

  it('says why a run was refused: a context file above the server’s body limit', async () => {
    const { team, token } = await newTeam();
    const page = await openPage();
    await pasteToken(page, token);
    await page.locator('#query').fill('Too much context');
    await page.locator('#context-file').setInputFiles({ name: 'big.txt', mimeType: 'text/plain', buffer: Buffer.alloc(SETTINGS.maxBodyBytes + 1, 'a') });
    await page.getByRole('button', { name: 'Submit run' }).click();
    await page.locator('#submit-status.error-text').waitFor();
    expect(await page.locator('#submit-status').innerText()).toMatch(/^Not submitted: the request body is larger than \d+ bytes/);
    // Nothing stored, and the form keeps what was typed.
    expect((await store.listRuns(team.id, {})).runs).toEqual([]);
    expect(await page.locator('#query').inputValue()).toBe('Too much context');
    await closePage(page);
  });

  it('filters the runs by status', async () => {
    const { team, token } = await newTeam();
    const ok = await finishedRun(team, 'one that worked', SUCCEEDED);
    const bad = await finishedRun(team, 'one that failed', { status: 'failed', error: 'boom' });
    const stopped = await queue(team, 'one cancelled while it waited');
    await store.requestCancel(team.id, stopped.id);

    const page = await openPage();
    await pasteToken(page, token);
    await rowStatus(page, stopped.id, 'cancelled');
    expect(await page.locator('#runs-body tr').count()).toBe(3);

    await page.locator('#status-filter').selectOption('failed');
    await expect.poll(() => page.locator('#runs-body tr').count()).toBe(1);
    await rowStatus(page, bad.id, 'failed');
    expect(await page.locator('#runs-message').innerText()).toBe('1 failed run.');

    await page.locator('#status-filter').selectOption('succeeded');
    await rowStatus(page, ok.id, 'succeeded');
    await expect.poll(() => page.locator('#runs-body tr').count()).toBe(1);

    await page.locator('#status-filter').selectOption('running');
    await page.locator('#runs-message', { hasText: 'No running runs yet.' }).waitFor();
    expect(await page.locator('#runs-body tr').count()).toBe(0);

    await page.locator('#status-filter').selectOption('');
    await expect.poll(() => page.locator('#runs-body tr').count()).toBe(3);
    await closePage(page);
  });

  it('shows a long list a page at a time', async () => {
    const { team, token } = await newTeam();
    const ids: string[] = [];
    for (let i = 0; i < 27; i++) {
      const run = await queue(team, `run number ${i}`);
      await store.requestCancel(team.id, run.id);
      ids.push(run.id);
    }
    const page = await openPage();
    await pasteToken(page, token);
    await rowStatus(page, ids[26]!, 'cancelled');
    expect(await page.locator('#runs-body tr').count()).toBe(25);
    expect(await page.locator('#runs-message').innerText()).toBe('25 runs shown.');
    await page.getByRole('button', { name: 'Load more' }).click();
    await rowStatus(page, ids[0]!, 'cancelled');
    expect(await page.locator('#runs-body tr').count()).toBe(27);
    expect(await page.locator('#runs-message').innerText()).toBe('27 runs.');
    expect(await page.locator('#more').isHidden()).toBe(true);
    // Newest first, across the pages.
    const shown = await page.locator('#runs-body tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-run-id')));
    expect(shown).toEqual([...ids].reverse());
    await closePage(page);
  });

  it('cancels a queued run from the keyboard', async () => {
    const { team, token } = await newTeam();
    const run = await queue(team, 'a run nobody needs any more');
    const page = await openPage();
    await pasteToken(page, token);
    await rowStatus(page, run.id, 'queued');

    // Tab from the run's link to its Cancel button, and press it.
    await row(page, run.id).locator('a').focus();
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').getAttribute('aria-label')).toBe(`Cancel run ${run.id}`);
    await page.keyboard.press('Enter');
    await rowStatus(page, run.id, 'cancelled');
    expect((await store.getRun(team.id, run.id))?.status).toBe('cancelled');
    // The focus stays in the row (on its link) after the button went away.
    expect(await row(page, run.id).locator('a:focus').count()).toBe(1);
    await closePage(page);
  });

  it('opens a run in the viewer: its events live while it runs, then its trajectory', async () => {
    const { team, token } = await newTeam();
    const run = await queue(team, SAMPLE_QUERY);
    await claim(run.id);

    const page = await openPage();
    await pasteToken(page, token);
    await rowStatus(page, run.id, 'running');
    await row(page, run.id).getByRole('link', { name: run.id }).click();
    await page.waitForURL(`${url}/runs/${run.id}`);
    // The token came along (same tab): no paste needed.
    await page.locator('#run-status[data-status="running"]').waitFor();
    expect(await page.locator('#run-title').innerText()).toBe(`Run ${run.id}`);
    expect(await page.locator('#run-query').innerText()).toBe(SAMPLE_QUERY);
    await page.locator('#event-log li[data-type="started"]').waitFor();
    expect(await page.locator('#main').innerText()).toContain('The trajectory is shown when the run has ended');

    await emit(run.id, [
      { type: 'turn_start', data: { runId: run.id, depth: 0, time: Date.now(), turn: 1 } },
      {
        type: 'model_response',
        data: {
          runId: run.id,
          depth: 0,
          time: Date.now(),
          turn: 1,
          model: 'fake-root',
          text: `Looking. ${HOSTILE}`,
          inputTokens: 10,
          outputTokens: 5,
          durationMs: 40,
        },
      },
    ]);
    await page.locator('#event-log li', { hasText: 'Turn 1 started' }).waitFor();
    expect(await page.locator('#event-log li[data-type="model_response"]').innerText()).toContain(`Looking. ${HOSTILE}`);
    expect(await page.locator('#event-log img').count()).toBe(0);

    await finish(run.id, { ...SUCCEEDED, trajectory });
    await page.locator('#run-status[data-status="succeeded"]').waitFor();
    // The trajectory, drawn by the viewer's code: its title, its answer, its turns.
    await page.locator('#main h1.run-title', { hasText: SAMPLE_QUERY }).waitFor();
    expect(await page.locator('#main #final-answer').innerText()).toContain(SAMPLE_ANSWER);
    expect(await page.locator('#main .facts').innerText()).toContain(run.id);
    expect(await page.locator('#run-answer').innerText()).toContain(SAMPLE_ANSWER);
    expect(await page.locator('#event-log li').last().innerText()).toContain('Finished: succeeded');
    expect(await page.locator('#cancel-run').isHidden()).toBe(true);
    // The viewer's keys: j moves to a turn, e expands them all.
    await page.keyboard.press('j');
    expect(await page.locator('details.turn[data-depth="0"][data-turn="1"] > summary:focus').count()).toBe(1);
    await page.keyboard.press('e');
    await page.locator('details.turn[data-depth="0"][data-turn="2"][open]').waitFor();
    await page.evaluate('window.scrollTo(0, 0)');
    await screenshot(page, 'serve-run-page.png');
    await closePage(page);
  });

  it('resumes an event stream that dropped where it left off (Last-Event-ID), showing no event twice', async () => {
    const { team, token } = await newTeam();
    const run = await queue(team, 'a run whose stream drops');
    await claim(run.id);
    const eventRequests: Array<Record<string, string>> = [];
    // The first stream ends after the first event, as when a proxy cuts it; the page must reconnect.
    const page = await openPage(`/runs/${run.id}`, (page) =>
      page.route(`${url}/v1/runs/${run.id}/events`, async (route) => {
        eventRequests.push(await route.request().allHeaders());
        if (eventRequests.length === 1)
          await route.fulfill({ status: 200, contentType: 'text/event-stream', body: 'retry: 50\n\nid: 1\nevent: queued\ndata: {}\n\n' });
        else await route.continue();
      }),
    );
    await pasteToken(page, token);
    await page.locator('#event-log li[data-type="started"]').waitFor();
    expect(eventRequests.length).toBe(2);
    expect(eventRequests[0]?.['last-event-id']).toBeUndefined();
    expect(eventRequests[1]?.['last-event-id']).toBe('1');
    // The token went in the header, never in the address.
    expect(eventRequests.every((headers) => headers.authorization === `Bearer ${token}`)).toBe(true);
    await finish(run.id, { status: 'failed', error: 'the model provider answered 500' });
    await page.locator('#run-status[data-status="failed"]').waitFor();
    expect(await page.locator('#event-log li').evaluateAll((items) => items.map((item) => item.getAttribute('data-type')))).toEqual([
      'queued',
      'started',
      'finished',
    ]);
    expect(await page.locator('#run-error').innerText()).toContain('the model provider answered 500');
    await closePage(page);
  });

  it('says a run of another team is not found, and a run without a trajectory has none', async () => {
    const { token } = await newTeam();
    const other = await newTeam();
    const theirs = await finishedRun(other.team, 'theirs', { ...SUCCEEDED, trajectory });
    const page = await openPage(`/runs/${theirs.id}`);
    await pasteToken(page, token);
    await page.locator('#run-message', { hasText: 'not found' }).waitFor();
    expect(await page.locator('#run-message').innerText()).toMatch(new RegExp(`^Cannot show run ${theirs.id}: .*not found`));
    expect(await page.locator('#main h1.run-title').count()).toBe(0);

    const { team: mine } = await newTeam();
    const cancelled = await queue(mine, 'cancelled before it ran');
    await store.requestCancel(mine.id, cancelled.id);
    const { token: mineToken } = await store.createToken(mine.name);
    const second = await openPage(`/runs/${cancelled.id}`);
    await pasteToken(second, mineToken);
    await second.locator('#run-status[data-status="cancelled"]').waitFor();
    await second.locator('#main h1', { hasText: 'No trajectory' }).waitFor();
    expect(await second.locator('#main').innerText()).toContain('has no trajectory');
    await closePage(page);
    await closePage(second);
  });

  it('loads nothing but the service itself, runs no injected script, and breaks no rule of its policy', () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((u) => !u.startsWith(`${url}/`) && !u.startsWith('data:'))).toEqual([]);
    // The token never travels in an address.
    expect(requested.filter((u) => /rlm_/.test(u))).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(pageErrors).toEqual([]);
    expect(cspViolations).toEqual([]);
  });
});
