import { Script } from 'node:vm';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundleServeWebScripts } from '../../../scripts/viewer-bundle.mjs';
import { escapeHtml, runPageHtml, SERVE_CSS, teamPageHtml } from './web-page-html.js';
import { registerWebPages, WEB_PAGE_CSP, type WebPageScripts } from './web-page.js';

/** The scripts as the build bundles them from the current sources. */
let scripts: WebPageScripts;
let app: FastifyInstance;

beforeAll(async () => {
  scripts = await bundleServeWebScripts({ write: false });
  app = Fastify();
  registerWebPages(app, { scripts });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
});

describe('the web pages’ routes', () => {
  it('serve the team page under a policy that allows only the service’s own script, styles and API', async () => {
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(response.headers['content-security-policy']).toBe(WEB_PAGE_CSP);
    expect(WEB_PAGE_CSP).toContain("script-src 'self'");
    expect(WEB_PAGE_CSP).not.toMatch(/unsafe|\*|https?:/);
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
    expect(response.headers['cache-control']).toBe('no-store');
    expect(response.body).toContain('<script src="/web/serve-team.js" defer></script>');
  });

  it('show a run page’s id escaped, whatever the address holds', async () => {
    const response = await app.inject({ method: 'GET', url: `/runs/${encodeURIComponent('<img src=x onerror=alert(1)>')}` });
    expect(response.statusCode).toBe(200);
    expect(response.body).not.toContain('<img');
    expect(response.body).toContain('Run &lt;img src=x onerror=alert(1)&gt;');
    expect(response.headers['content-security-policy']).toBe(WEB_PAGE_CSP);
  });

  it('serve the scripts and the stylesheet with an ETag, answering 304 to a browser that has them', async () => {
    for (const [url, body, type] of [
      ['/web/serve-team.js', scripts.team, 'text/javascript; charset=utf-8'],
      ['/web/serve-run.js', scripts.run, 'text/javascript; charset=utf-8'],
      ['/web/serve.css', SERVE_CSS, 'text/css; charset=utf-8'],
    ] as const) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toBe(type);
      expect(response.body).toBe(body);
      const etag = response.headers.etag;
      expect(etag).toMatch(/^"[\w-]+"$/);
      const again = await app.inject({ method: 'GET', url, headers: { 'if-none-match': String(etag) } });
      expect(again.statusCode).toBe(304);
      expect(again.body).toBe('');
    }
  });
});

describe('the web pages’ HTML', () => {
  it('has no inline script, style or event handler, and loads nothing from another origin', () => {
    for (const html of [teamPageHtml(), runPageHtml('run_abc')]) {
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\son[a-z]+=/i);
      expect(html).not.toMatch(/<style|\sstyle=/i);
      expect(html).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}\//i);
    }
    expect(SERVE_CSS).not.toMatch(/@import|@font-face|url\(|https?:\/\//);
  });

  it('labels every form control', () => {
    for (const html of [teamPageHtml(), runPageHtml('run_abc')]) {
      for (const match of html.matchAll(/<(?:input|select|textarea)\b[^>]*\bid="([^"]+)"/g)) {
        const id = match[1];
        const labelled = html.includes(`for="${id}"`) || /aria-label=/.test(match[0]);
        expect(labelled, `#${id} has a label`).toBe(true);
      }
    }
  });

  it('escapes every character HTML gives a meaning to', () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
  });
});

describe('the web pages’ scripts', () => {
  it('bundle into classic scripts that compile', () => {
    for (const script of [scripts.team, scripts.run]) {
      expect(() => new Script(script)).not.toThrow();
      expect(script).not.toMatch(/^\s*(import|export)\s/m);
    }
  });

  it('never hand text to the HTML parser, nor set a loading attribute but a checked run link', () => {
    for (const script of [scripts.team, scripts.run]) {
      expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|createContextualFragment|DOMParser/);
      expect(script).not.toMatch(/\beval\(|new Function\(/);
      expect(script).not.toMatch(/\.(src|href|action|formAction|srcdoc)\s*=[^=]/);
    }
    // The one attribute set by name that the browser would load: a run link's href (page-dom.ts, a path from runPagePath).
    const loading = (script: string) => [...script.matchAll(/setAttribute\(\s*["'`](href|src|style|on\w*)["'`]/g)].map((m) => m[1]);
    expect(loading(scripts.team)).toEqual(['href']);
    expect(loading(scripts.run)).toEqual([]);
  });

  it('keep the token out of URLs: no EventSource, no token in a query string', () => {
    for (const script of [scripts.team, scripts.run]) {
      expect(script).not.toMatch(/EventSource/);
      expect(script).not.toMatch(/[?&](token|access_token|authorization)=/i);
    }
  });

  it('tell zod not to compile parsers with new Function, which the policy forbids', () => {
    // The run page reads trajectories with zod's classic schemas; `jitless` must be set before they are built.
    expect(scripts.run).toMatch(/jitless:\s*!0|jitless:\s*true/);
  });
});
