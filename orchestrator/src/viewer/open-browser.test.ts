import { describe, expect, it } from 'vitest';
import { openInBrowser } from './open-browser.js';

describe('opening a browser', () => {
  it('skips Linux without a graphical session, where xdg-open would take over the terminal', async () => {
    expect(await openInBrowser('http://127.0.0.1:1/', { platform: 'linux', env: { PATH: process.env.PATH } })).toBe(false);
  });

  it('resolves false, without throwing, when no launcher is installed', async () => {
    expect(await openInBrowser('http://127.0.0.1:1/', { platform: 'linux', env: { DISPLAY: ':99', PATH: '/nonexistent' } })).toBe(false);
  });
});
