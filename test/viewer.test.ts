/**
 * The trajectory viewer in a real headless Chromium (Debian's, driven by playwright-core): a run
 * written by TrajectoryWriter is listed, opened, and clicked through down to a child run's turn.
 * The page's script is bundled from its current sources the way the build bundles it, so an edit
 * is tested without a build. Leaves a screenshot at test/.artifacts/viewer.png.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleViewerScript } from '../orchestrator/scripts/viewer-bundle.mjs';
import { SAMPLE_ANSWER, SAMPLE_QUERY, writeSampleTrajectory } from '../orchestrator/src/testing/sample-trajectory.js';
import { RunDirectory } from '../orchestrator/src/viewer/run-directory.js';
import { startViewerServer, type ViewerServer } from '../orchestrator/src/viewer/viewer-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const artifacts = path.join(root, 'test', '.artifacts');
const CHROMIUM = process.env.RLM_TEST_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = '<img src=x onerror=alert(1)>';

let tmp: string;
let server: ViewerServer;
let context: BrowserContext;
let sampleFile: string;
let hostileFile: string;
let longFile: string;
/** A response of 300 numbered lines: longer than the 80 lines a text shows before "show all". */
const LONG_RESPONSE = Array.from({ length: 300 }, (_, i) => `line ${i + 1}`).join('\n');
/** Every URL the browser asked for, and every dialog it opened. */
const requested: string[] = [];
const dialogs: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`the viewer test needs Chromium at ${CHROMIUM}: apt-get install -y chromium (or set RLM_TEST_CHROMIUM)`);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'rlm-viewer-browser-'));
  const logs = path.join(tmp, 'logs');
  sampleFile = path.basename(await writeSampleTrajectory(logs, { now: () => new Date('2026-11-21T10:15:00Z') }));
  hostileFile = path.basename(await writeSampleTrajectory(logs, { fileNamePrefix: 'hostile', firstResponse: `Look: ${HOSTILE} <script>alert(2)</script>` }));
  longFile = path.basename(await writeSampleTrajectory(logs, { fileNamePrefix: 'long', firstResponse: LONG_RESPONSE }));
  server = await startViewerServer({ directory: await RunDirectory.open(logs), script: await bundleViewerScript({ write: false }) });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1400, height: 1000 },
    colorScheme: 'light',
  });
  context.on('request', (request) => requested.push(request.url()));
  context.on('page', (page) =>
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    }),
  );
}, 60_000);

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function openPage(): Promise<Page> {
  const page = await context.newPage();
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(server.url);
  return page;
}

/** A page opened on one run (by its URL), once the run is drawn. */
async function openRunPage(file: string): Promise<Page> {
  const page = await openPage();
  await page.goto(`${server.url}#run=${encodeURIComponent(file)}`);
  await page.locator('h1.run-title').waitFor();
  return page;
}

describe('rlm view in a browser', () => {
  it('lists the runs, opens one, and reveals a turn, a sub-call and the child run inside it', async () => {
    const page = await openPage();
    const item = page.locator('.run-item', { hasText: sampleFile });
    await expect.poll(() => page.locator('.run-item').count()).toBe(3);
    await expect.poll(() => item.innerText()).toContain(SAMPLE_QUERY);
    await item.click();

    // The run's header: query, final answer, usage per model.
    await page.locator('h1.run-title', { hasText: SAMPLE_QUERY }).waitFor();
    expect(await page.locator('#final-answer').innerText()).toContain(SAMPLE_ANSWER);
    const usageRows = await page.locator('.usage-section table.usage tbody tr').allInnerTexts();
    // The root model's two turns (recorded on each iteration line) and the child run's call.
    expect(usageRows.map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      expect.stringMatching(/^claude-sonnet-4-5 3 4,800 220 \$0\.\d{4}$/),
      expect.stringMatching(/^claude-haiku-4-5 3 1,400 9 \$0\.\d{4}$/),
    ]);
    expect(await page.locator('.usage-section .usage-note').count()).toBe(0);
    expect(await page.locator('.error-note').innerText()).toContain('2 errors');

    // Turn 1: the response, both code blocks, the output and the failed cell in red.
    const turn1 = page.locator('details.turn[data-depth="0"][data-turn="1"]');
    await turn1.locator('> summary').click();
    const body1 = turn1.locator('> .details-body');
    expect(await body1.locator('.text.response').first().innerText()).toContain('First I look at which logs the context holds.');
    expect(await body1.locator('.text.code').allInnerTexts()).toEqual(['print(Object.keys(context).join("\\n"))', 'undefinedHelper()']);
    expect(await body1.locator('.text.stdout').first().innerText()).toBe('fastnet.log\nskerries.log\ntuskar.log\n');
    const failed = body1.locator('.block.has-error');
    expect(await failed.count()).toBe(1);
    expect(await failed.locator('.text.stderr.failed').innerText()).toContain('ReferenceError: undefinedHelper is not defined');

    // Turn 2: three sub-calls; the failed one is marked; the rlm_query opens onto the child run.
    const turn2 = page.locator('details.turn[data-depth="0"][data-turn="2"]');
    await turn2.locator('> summary').click();
    const calls = turn2.locator('details.call');
    // A turn's body is built when it opens; count() does not wait for it, so wait for the first call.
    await calls.first().waitFor();
    expect(await calls.count()).toBe(3);
    expect(await turn2.locator('details.call.has-error > summary').innerText()).toMatch(/llm_query\s+claude-haiku-4-5\s+Tuskar ships\?\s+failed/);
    const childCall = turn2.locator('details.call.has-child');
    await childCall.locator('> summary').click();
    const childBody = childCall.locator('> .details-body');
    expect(await childBody.locator('> .section').first().innerText()).toContain('Count the ships in the Fastnet log');
    const childUsage = await childBody.locator('table.usage tbody tr').allInnerTexts();
    expect(childUsage.map((row) => row.replace(/\s+/g, ' ').trim())).toEqual([
      expect.stringMatching(/^claude-sonnet-4-5 1 2,400 60 \$/),
      expect.stringMatching(/^claude-haiku-4-5 1 800 4 \$/),
    ]);
    const childRun = childBody.locator('section.child-run');
    expect(await childRun.locator('.child-head').innerText()).toMatch(/^child run\s+depth 1\s+claude-sonnet-4-5\s+1 turn\s+child-7f3a$/i);
    const childTurn = childRun.locator('details.turn[data-depth="1"][data-turn="1"]');
    await childTurn.locator('> summary').click();
    const childTurnBody = childTurn.locator('> .details-body');
    expect(await childTurnBody.locator('.text.response').first().innerText()).toContain('The child counts the Fastnet entries.');
    expect(await childTurnBody.locator('.text.code').innerText()).toBe('const n = llm_query("How many ships in: " + context)\nFINAL(n)');
    const grandCall = childTurnBody.locator('details.call');
    await grandCall.locator('> summary').click();
    expect(await grandCall.locator('> .details-body').innerText()).toContain('How many ships in: Fastnet log, March');
    expect(await childRun.locator('> .final-card').innerText()).toContain('41');

    await mkdir(artifacts, { recursive: true });
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: path.join(artifacts, 'viewer.png'), fullPage: true });
    await page.close();
  });

  it('moves through the runs and the turns with the keyboard', async () => {
    const page = await openPage();
    await page.locator('.run-item').first().waitFor();
    await page.keyboard.press(']');
    await page.locator('h1.run-title').waitFor();
    await page.keyboard.press('j');
    await page.keyboard.press('j');
    expect(await page.locator('details.turn[data-depth="0"][data-turn="2"] > summary:focus').count()).toBe(1);
    await page.keyboard.press('Enter');
    await page.locator('details.turn[data-depth="0"][data-turn="2"][open]').waitFor();
    await page.keyboard.press('/');
    expect(await page.locator('#filter:focus').count()).toBe(1);
    await page.keyboard.type('hostile');
    expect(await page.locator('.run-item').count()).toBe(1);
    await page.close();
  });

  it('shows model output that looks like HTML as text, and runs none of it', async () => {
    const page = await openRunPage(hostileFile);
    const turn1 = page.locator('details.turn[data-depth="0"][data-turn="1"]');
    expect(await turn1.locator('> summary').innerText()).toContain(HOSTILE);
    await turn1.locator('> summary').click();
    expect(await turn1.locator('.text.response').first().innerText()).toBe(`Look: ${HOSTILE} <script>alert(2)</script>`);
    expect(await page.locator('#main img, #main script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('builds a turn when it is first opened, and shows a long text by its start until "show all"', async () => {
    const page = await openRunPage(longFile);
    const turn1 = page.locator('details.turn[data-depth="0"][data-turn="1"]');
    expect(await turn1.locator('.details-body').count()).toBe(0);
    await turn1.locator('> summary').click();
    const response = turn1.locator('.text.response').first();
    const shown = await response.locator('pre').innerText();
    expect(shown.startsWith('line 1\nline 2\n')).toBe(true);
    expect(shown).not.toContain('line 300');
    expect(await response.locator('pre.truncated').count()).toBe(1);
    const toggle = response.locator('button.show-all');
    expect(await toggle.innerText()).toMatch(/^Show all \([\d,]+ more characters, [\d.]+ KB in all\)$/);
    await toggle.click();
    expect(await response.locator('pre').innerText()).toBe(LONG_RESPONSE);
    expect(await toggle.innerText()).toBe('Show less');
    await toggle.click();
    expect(await response.locator('pre').innerText()).toBe(shown);
    await page.close();
  });

  it('loads nothing but the viewer itself', () => {
    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => !url.startsWith(server.url) && !url.startsWith('data:'))).toEqual([]);
  });
});
