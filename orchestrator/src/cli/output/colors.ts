/**
 * Colour for the CLI's output, following the conventions: `NO_COLOR` (any non-empty value) turns it
 * off, `FORCE_COLOR` turns it on (`0` or `false`: off) and wins over `NO_COLOR`, and otherwise only a
 * terminal gets colour (never a pipe, a file or `TERM=dumb`).
 *
 * The codes come from Node's `util.styleText`. We decide whether to colour ourselves ({@link
 * colorEnabled}) and call it with `validateStream: false`, because its own check differs between
 * Node versions (22.0–22.7 always colour; later ones look at `process.stdout`, `NO_COLOR`,
 * `NODE_DISABLE_COLORS` and `FORCE_COLOR` their way) and knows nothing of the stream we write to.
 */
import { stripVTControlCharacters, styleText } from 'node:util';

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

type Style = keyof Palette;

const style = (format: Style) => (text: string) => styleText(format, text, { validateStream: false });

export const COLORS: Palette = {
  bold: style('bold'),
  dim: style('dim'),
  red: style('red'),
  green: style('green'),
  yellow: style('yellow'),
  blue: style('blue'),
  magenta: style('magenta'),
  cyan: style('cyan'),
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

/** Removes colour codes (and any other terminal control sequence), e.g. to measure what a line shows. */
export function stripAnsi(text: string): string {
  return stripVTControlCharacters(text);
}
