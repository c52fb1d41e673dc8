/**
 * What the service's pages build beyond the viewer's text-only helpers (viewer/page/browser/dom.ts,
 * whose rules hold here too: text reaches the page as text nodes, never as HTML): a link to a run's
 * page, whose path is built from a checked run id only, and the select options of the models.
 */
import { runPagePath } from '../run-display.js';

/** A link to the run's viewer page; plain text when the id is not one a link may be made of. */
export function runLink(id: string, text: string, className?: string): HTMLElement {
  const path = runPagePath(id);
  const element = document.createElement(path === null ? 'span' : 'a');
  if (path !== null) element.setAttribute('href', path);
  if (className) element.className = className;
  element.textContent = text;
  return element;
}

/** An `<option>` (its text and value set as text). */
export function option(value: string, text: string): HTMLOptionElement {
  return new Option(text, value);
}

/** Says `text` to screen readers through the page's polite live region. */
export function announce(text: string): void {
  const region = document.getElementById('announcer');
  if (region) region.textContent = text;
}
