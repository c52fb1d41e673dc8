/**
 * The token form both pages share (web-page-html.ts draws it): shown while no token is kept, hidden
 * once one is pasted; "Forget token" in the header drops it. A token the server refuses (401) is
 * forgotten and the form comes back saying why.
 */
import { byId } from '../../../../viewer/page/browser/dom.js';
import { forgetToken, readToken, saveToken, tokenLabel } from './token-store.js';

export interface TokenGate {
  /** The server refused the token: forget it and ask for another, showing `message`. */
  refuse(message: string): void;
}

export interface TokenGateHandlers {
  /** A token is there (kept from before, or just pasted): start using it. */
  onToken: (token: string) => void;
  /** The token is gone (forgotten or refused): stop everything that used it. */
  onForget: () => void;
}

export function setupTokenGate(handlers: TokenGateHandlers): TokenGate {
  const section = byId('token-section');
  const form = byId<HTMLFormElement>('token-form');
  const input = byId<HTMLInputElement>('token-input');
  const error = byId('token-error');
  const app = byId('app');
  const state = byId('token-state');
  const forget = byId<HTMLButtonElement>('forget-token');

  const showForm = (message: string, isError: boolean) => {
    app.hidden = true;
    section.hidden = false;
    forget.hidden = true;
    state.textContent = 'no token';
    error.textContent = message;
    error.className = isError ? 'error-text' : 'muted';
    input.value = '';
    input.focus();
  };
  const use = (token: string) => {
    section.hidden = true;
    app.hidden = false;
    forget.hidden = false;
    state.textContent = `token ${tokenLabel(token)}`;
    error.textContent = '';
    handlers.onToken(token);
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (token === '') {
      error.textContent = 'Paste a token first.';
      error.className = 'error-text';
      input.focus();
      return;
    }
    saveToken(token);
    input.value = '';
    use(token);
  });
  forget.addEventListener('click', () => {
    forgetToken();
    handlers.onForget();
    showForm('Token forgotten: this tab no longer holds it.', false);
  });

  const kept = readToken();
  if (kept) use(kept);
  else showForm('', false);

  return {
    refuse(message) {
      forgetToken();
      handlers.onForget();
      showForm(message, true);
    },
  };
}
