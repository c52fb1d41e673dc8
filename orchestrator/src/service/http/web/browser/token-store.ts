/**
 * The API token, kept in this tab's `sessionStorage`: pasted once, sent as `Authorization: Bearer`
 * by the page's script, gone when the tab closes or "Forget token" is pressed. Never put in a URL,
 * a cookie or the page. A browser that refuses storage (a privacy mode) keeps it in memory only.
 */
const KEY = 'rlm.serve.token';
let memory: string | null = null;

export function readToken(): string | null {
  try {
    return sessionStorage.getItem(KEY) ?? memory;
  } catch {
    return memory;
  }
}

export function saveToken(token: string): void {
  memory = token;
  try {
    sessionStorage.setItem(KEY, token);
  } catch {
    // Storage refused: the token lives as long as this page.
  }
}

export function forgetToken(): void {
  memory = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch {
    // Nothing stored.
  }
}

/** How the page names a token without showing it: its first characters, as `tokens list` does. */
export function tokenLabel(token: string): string {
  return `${token.slice(0, 12)}…`;
}
