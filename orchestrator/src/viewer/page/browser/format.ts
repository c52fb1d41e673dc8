/** Numbers, times and texts as the page shows them (English, US number format). */

/** `1 turn`, `2 turns`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** `12,040`. */
export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

/** `950`, `1.2k`, `12k`, `1.5M`. */
export function fmtTokens(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}

/** US dollars: `$0.0123`, `$1.50`; `—` when unknown. */
export function fmtCost(usd: number | null): string {
  if (usd === null) return '—';
  if (usd === 0) return '$0';
  if (usd < 0.0001) return '<$0.0001';
  if (usd < 1) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** A duration given in seconds: `250 ms`, `4.32 s`, `2m 05s`; empty when unknown. */
export function fmtSeconds(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes}m ${String(Math.round(seconds - minutes * 60)).padStart(2, '0')}s`;
}

/** A size in bytes: `900 B`, `1.5 KB`, `3.2 MB`. */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** An ISO 8601 time in the reader's locale and time zone; a string that is not one, as it is. */
export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** A text on one line, whitespace collapsed, cut to `max` characters with `…`. */
export function firstLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** The prose of a response before its first code fence, else its start. */
export function responsePreview(response: string): string {
  const fence = response.indexOf('```');
  const prose = fence > 0 ? firstLine(response.slice(0, fence), 140) : '';
  return prose || firstLine(response, 140) || '(empty response)';
}
