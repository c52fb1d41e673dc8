/**
 * Building the page's elements, text only. Trajectories hold untrusted model output, so every
 * piece of their text reaches the page as a text node or `textContent`, never as HTML, and the
 * attributes {@link h} can set are a fixed list the browser neither loads nor runs (no href, src,
 * style or on…): the type of its `props` makes any other a compile error.
 */

/** What an element can contain: nodes, and text (strings and numbers become text nodes); nullish and false are skipped. */
export type Child = Node | string | number | null | undefined | false;

/** The attributes and properties {@link h} sets; values that are nullish or false are left out. */
export interface Props {
  class?: string | null;
  /** The element's text (`textContent`). */
  text?: string | number | null;
  title?: string | null;
  id?: string;
  type?: 'button';
  'aria-current'?: 'true' | null;
  'aria-label'?: string;
  /** Data attributes hold plain text the script reads back (a run's file name, a turn's number). */
  [data: `data-${string}`]: string | undefined;
  onclick?: (event: MouseEvent) => void;
}

/** An element with `props` and `children`. */
export function h<Tag extends keyof HTMLElementTagNameMap>(tag: Tag, props?: Props | null, children?: Child | readonly Child[]): HTMLElementTagNameMap[Tag] {
  const element = document.createElement(tag);
  const { onclick, ...attributes } = props ?? {};
  if (onclick) (element as HTMLElement).addEventListener('click', onclick);
  for (const [key, value] of Object.entries(attributes) as Array<[string, unknown]>) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') element.className = String(value);
    else if (key === 'text') element.textContent = String(value);
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

/** Appends `children` to `element`, text as text nodes. */
export function append(element: Node, children: Child | readonly Child[] | undefined): void {
  if (children === undefined) return;
  for (const child of Array.isArray(children) ? (children as readonly Child[]) : [children as Child]) {
    if (child === null || child === undefined || child === false) continue;
    element.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/** Removes every child of `element`. */
export function clear(element: Node): void {
  while (element.firstChild) element.removeChild(element.firstChild);
}

/** The page's element with this id; the page (viewer-page.ts) always has it. */
export function byId<Kind extends HTMLElement = HTMLElement>(id: string): Kind {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the viewer page has no #${id}`);
  return element as Kind;
}
