/**
 * Colour on stderr, following the conventions: `NO_COLOR` (any non-empty value) turns it off,
 * `FORCE_COLOR` turns it on (`0` or `false`: off), and otherwise only a terminal gets colour
 * (never a pipe, a file or `TERM=dumb`).
 */

export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force.toLowerCase() !== 'false';
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY && env.TERM !== 'dumb';
}

export interface Palette {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  blue(text: string): string;
  magenta(text: string): string;
  cyan(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\x1b[${open}m${text}\x1b[${close}m`;

export const COLORS: Palette = {
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  blue: sgr(34, 39),
  magenta: sgr(35, 39),
  cyan: sgr(36, 39),
};

const identity = (text: string) => text;

export const NO_COLORS: Palette = {
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  blue: identity,
  magenta: identity,
  cyan: identity,
};

export function paletteFor(enabled: boolean): Palette {
  return enabled ? COLORS : NO_COLORS;
}

/** Removes SGR sequences, e.g. to measure what a line shows. */
export function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: an SGR sequence starts with ESC
  return text.replace(/\x1b\[[0-9;]*m/g, '');
}
