/**
 * `rlm serve`'s web pages, registered on the service's Fastify app (http/service-app.ts takes this
 * as its `registerPages`):
 *
 * GET /                 the team page: paste a token, the team's runs live, submit, cancel
 * GET /runs/:id         a run: its status and live events, then its trajectory in the viewer
 * GET /web/serve-team.js, /web/serve-run.js   their scripts (bundled from http/web/browser/ at
 *                       build time, scripts/viewer-bundle.mjs → dist/web-assets/)
 * GET /web/serve.css    their stylesheet
 *
 * The pages hold no data and need no token: their scripts call the `/v1` API with the token the
 * user pasted (kept in the tab's sessionStorage, sent as `Authorization: Bearer`). Every page
 * answers under a Content-Security-Policy that allows only the service's own script, styles and
 * API (no inline script, style or handler; no other origin; no framing; no form submission), and
 * with no-referrer, nosniff and same-origin isolation headers.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorCode, errorMessage, RlmError } from '../../errors.js';
import { findPackageRoot } from '../../sandbox/image/assets.js';
import { runPageHtml, SERVE_CSS, teamPageHtml, WEB_ASSET_PATHS } from './web-page-html.js';

/** The policy of every page: the service's own script, styles and API; nothing inline, nothing else. */
export const WEB_PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'x-frame-options': 'DENY',
} as const;

/** The pages' scripts as text: the team page's and a run page's. */
export interface WebPageScripts {
  team: string;
  run: string;
}

export interface WebPagesOptions {
  /** The scripts; by default read from the package's dist/web-assets/ on first use (tests pass ones bundled from source). */
  scripts?: WebPageScripts;
}

/** The built scripts' files, relative to the `rlm` package's root (scripts/viewer-bundle.mjs writes them). */
const SCRIPT_FILES: Record<keyof WebPageScripts, string> = { team: 'dist/web-assets/serve-team.js', run: 'dist/web-assets/serve-run.js' };

interface Asset {
  body: string;
  etag: string;
  type: string;
}

function asset(body: string, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/**
 * Adds the pages' routes to `app`. Synchronous (the scripts are read when first asked for); safe
 * with any other routes the app has, as long as none claims `/`, `/runs/:id` or `/web/`.
 */
export function registerWebPages(app: FastifyInstance, options: WebPagesOptions = {}): void {
  const teamPage = teamPageHtml();
  const css = asset(SERVE_CSS, 'text/css; charset=utf-8');
  let scripts: Promise<Record<keyof WebPageScripts, Asset>> | undefined;
  const loadScripts = () => {
    if (scripts === undefined) {
      const loading = (options.scripts ? Promise.resolve(options.scripts) : readBuiltScripts()).then((s) => ({
        team: asset(s.team, 'text/javascript; charset=utf-8'),
        run: asset(s.run, 'text/javascript; charset=utf-8'),
      }));
      // A failed read is tried again at the next request (a build may have finished meanwhile).
      loading.catch(() => {
        if (scripts === loading) scripts = undefined;
      });
      scripts = loading;
    }
    return scripts;
  };

  app.get('/', (_request, reply) => sendPage(reply, teamPage));
  app.get<{ Params: { id: string } }>('/runs/:id', (request, reply) => sendPage(reply, runPageHtml(request.params.id)));
  app.get(WEB_ASSET_PATHS.css, (request, reply) => sendAsset(request, reply, css));
  app.get(WEB_ASSET_PATHS.teamScript, async (request, reply) => sendAsset(request, reply, (await loadScripts()).team));
  app.get(WEB_ASSET_PATHS.runScript, async (request, reply) => sendAsset(request, reply, (await loadScripts()).run));
}

function sendPage(reply: FastifyReply, html: string): FastifyReply {
  return reply
    .headers({ ...SECURITY_HEADERS, 'content-security-policy': WEB_PAGE_CSP, 'cache-control': 'no-store' })
    .type('text/html; charset=utf-8')
    .send(html);
}

/** Scripts and styles: revalidated on each load (cheap: an ETag), so a new build is picked up at once. */
function sendAsset(request: FastifyRequest, reply: FastifyReply, item: Asset): FastifyReply {
  reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache', etag: item.etag });
  if (request.headers['if-none-match'] === item.etag) return reply.code(304).send();
  return reply.type(item.type).send(item.body);
}

/** @throws {RlmError} a script is missing (not built): the message says to build. */
async function readBuiltScripts(): Promise<WebPageScripts> {
  const root = findPackageRoot(fileURLToPath(import.meta.url));
  const read = async (file: string) => {
    const full = root === undefined ? file : path.join(root, file);
    try {
      return await readFile(full, 'utf8');
    } catch (error) {
      throw new RlmError(
        `the web page's script ${full} cannot be read (${errorCode(error) ?? errorMessage(error)}): run \`pnpm build\` in the rlm repository, or reinstall the rlm package`,
        { cause: error },
      );
    }
  };
  const [team, run] = await Promise.all([read(SCRIPT_FILES.team), read(SCRIPT_FILES.run)]);
  return { team, run };
}
