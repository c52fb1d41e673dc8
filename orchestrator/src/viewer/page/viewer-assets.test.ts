import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { beforeAll, describe, expect, it } from 'vitest';
import { bundleViewerScript, VIEWER_SCRIPT_FILE } from '../../../scripts/viewer-bundle.mjs';
import { VIEWER_SCRIPT_PATH } from '../viewer-server.js';
import { VIEWER_CSS, VIEWER_HTML } from './viewer-page.js';

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** The script as the build bundles it from the current sources (everything they run, without their comments). */
let script: string;
beforeAll(async () => {
  script = await bundleViewerScript({ write: false });
});

describe('the viewer page', () => {
  it('bundles into one classic script that compiles', () => {
    expect(() => new Script(script, { filename: 'viewer.js' })).not.toThrow();
    expect(script).not.toMatch(/^\s*(import|export)\s/m);
  });

  it('is served from where the build writes it', () => {
    expect(VIEWER_SCRIPT_PATH).toBe(path.join(packageRoot, VIEWER_SCRIPT_FILE));
  });

  it('never hands text to the HTML parser, nor sets an attribute the browser would load or run', () => {
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|createContextualFragment|DOMParser/);
    expect(script).not.toMatch(/\.(src|href|action|formAction|srcdoc)\s*=|\.style\.|setAttribute\(\s*['"](src|href|style|on)/);
  });

  it('loads nothing from another origin (no CDN, no web fonts, no remote images)', () => {
    for (const asset of [VIEWER_HTML, VIEWER_CSS, script]) {
      expect(asset).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}\//i);
      expect(asset).not.toMatch(/@import|@font-face|url\(/);
    }
  });
});
