import { createHash } from 'node:crypto';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EvalSummary, EvalTask, ResultLine } from '../eval-types.js';
import { escapeHtml, REPORT_CSP, renderReport, viewerLink } from './report-page.js';
import { writeReport } from './write-report.js';

function line(overrides: Partial<ResultLine>): ResultLine {
  return {
    task_id: '1',
    method: 'rlm',
    epoch: 1,
    answer: '42',
    expected: ['42'],
    score: 1,
    scorer: 'em',
    error: null,
    error_kind: null,
    cost_usd: 0.001,
    input_tokens: 100,
    output_tokens: 10,
    duration_ms: 1200,
    iterations: 2,
    trajectory_file: 'trajectories/1-rlm-1.jsonl',
    attempts: 1,
    context_chars: 1000,
    finished_at: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}

const summary: EvalSummary = {
  dataset: 'needles.jsonl',
  planned: 4,
  finished: 3,
  methods: {
    rlm: { n: 2, scored: 2, errors: 0, accuracy: 1, ci95: [1, 1], cost_usd: 0.002, input_tokens: 200, output_tokens: 20, p50_ms: 1200, p95_ms: 1300 },
    direct: { n: 1, scored: 1, errors: 0, accuracy: 0, ci95: null, cost_usd: 0.0005, input_tokens: 500, output_tokens: 5, p50_ms: 300, p95_ms: 300 },
  },
  pairs: [{ a: 'rlm', b: 'direct', tasks: 1, difference: 1, ci95: null }],
};
const task: EvalTask = { id: '1', query: 'What is the <magic> number?', expected: ['42'], metadata: {}, row: 1 };

describe('the evaluation report', () => {
  it('escapes every data string: a hostile answer, error or task id is text, never markup', () => {
    const hostile = '<script>alert(1)</script><img src=x onerror=alert(2)>"\'&';
    const html = renderReport({
      summary,
      tasks: [task],
      lines: [
        line({ answer: hostile, task_id: '<b>id</b>' }),
        line({ method: 'direct', answer: null, score: 0, error: hostile, error_kind: 'model', trajectory_file: null }),
      ],
    });
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>id</b>');
    expect(html).toContain(escapeHtml(hostile));
    expect(html.match(/<script>/g)).toHaveLength(1);
  });

  it('allows by hash exactly its inline script and styles, and nothing from the network', () => {
    const html = renderReport({ summary, tasks: [task], lines: [line({})] });
    const script = /<script>([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)?.[1] ?? '';
    const hash = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
    expect(REPORT_CSP).toContain(`script-src ${hash(script)}`);
    expect(REPORT_CSP).toContain(`style-src ${hash(style)}`);
    expect(REPORT_CSP).toContain("default-src 'none'");
    expect(html).toContain(`content="${escapeHtml(REPORT_CSP.replace("; frame-ancestors 'none'", ''))}"`);
    // No address outside the page: only the SVG namespace and relative viewer links.
    const urls = [...html.matchAll(/(?:href|src)="([^"]*)"/g)].map((m) => m[1]);
    for (const url of urls) expect(url === 'data:,' || url?.startsWith('./#run=')).toBe(true);
  });

  it('links each result with a trajectory to the viewer, and draws the charts', () => {
    const html = renderReport({ summary, tasks: [task], lines: [line({}), line({ method: 'direct', trajectory_file: null, score: 0 })] });
    expect(viewerLink('trajectories/a b.jsonl')).toBe('./#run=trajectories%2Fa%20b.jsonl');
    expect(html).toContain('href="./#run=trajectories%2F1-rlm-1.jsonl"');
    expect(html).toContain('id="svg-accuracy"');
    expect(html).toContain('id="svg-cost"');
    expect(html).toContain('id="svg-length"');
    expect(html.match(/<circle class="point"/g)).toHaveLength(2);
    expect(html.match(/<rect class="bar"/g)?.length).toBe(4);
  });

  it('writes report.html into the directory', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-report-'));
    const file = await writeReport(dir, { summary, tasks: [task], lines: [line({})] });
    expect(file).toBe(path.join(dir, 'report.html'));
    expect(await readFile(file, 'utf8')).toContain('<table id="results">');
  });
});
