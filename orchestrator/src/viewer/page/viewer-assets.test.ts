import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { VIEWER_CSS, VIEWER_HTML } from './viewer-page.js';
import { VIEWER_SCRIPT } from './viewer-script.js';

describe('the viewer page', () => {
  it('has a script that compiles', () => {
    expect(() => new Script(VIEWER_SCRIPT, { filename: 'viewer.js' })).not.toThrow();
  });

  it('never hands text to the HTML parser', () => {
    expect(VIEWER_SCRIPT).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
  });

  it('loads nothing from another origin (no CDN, no web fonts, no remote images)', () => {
    for (const asset of [VIEWER_HTML, VIEWER_CSS, VIEWER_SCRIPT]) {
      expect(asset).not.toMatch(/https?:\/\/|\/\/[a-z0-9.-]+\.[a-z]{2,}\//i);
      expect(asset).not.toMatch(/@import|@font-face|url\(/);
    }
  });
});
