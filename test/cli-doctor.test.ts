/**
 * `rlm doctor` against the real engine: it lists the engine's runtimes, and, when the engine has
 * gVisor's runsc (CI's does: .ci/run registers it), proves it works by running a cell in a sandbox
 * under it. The verdicts for a broken or missing runsc are unit-tested
 * (orchestrator/src/cli/commands/doctor-command.test.ts). It also shows each configured model's
 * context window, output limit and price, from the built package's model table and the maintained
 * price data it depends on (orchestrator/src/cli/config/model-checks.test.ts tests the verdicts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDockerClient } from 'rlm';
import { dockerInfo } from '../orchestrator/src/sandbox/docker-client.js';
import { cleanEnv, runRlm } from './support/rlm-process.js';

interface DoctorReport {
  ok: boolean;
  checks: Array<{ name: string; status: string; detail: string; fix?: string }>;
}

/** This environment without RLM_* settings (a selected runtime would change the verdict's severity). */
function envWithoutRlmSettings(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('RLM_')));
}

describe('rlm doctor and the engine runtimes', () => {
  it("lists the engine's runtimes, its default first, and says whether a sandbox runs under runsc", async () => {
    const info = await dockerInfo(createDockerClient());
    const result = await runRlm(['doctor', '--json'], { env: envWithoutRlmSettings() });
    const report = JSON.parse(result.stdout) as DoctorReport;
    const runtimes = report.checks.find((c) => c.name === 'docker runtimes');
    const defaultRuntime = info.defaultRuntime ?? 'runc';
    expect(runtimes?.status).toBe('ok');
    expect(runtimes?.detail.split(', ')[0]).toBe(`${defaultRuntime} (default)`);
    for (const name of info.runtimes) expect(runtimes?.detail).toContain(name);

    const gvisor = report.checks.find((c) => c.name === 'gVisor (runsc)');
    if (info.runtimes.includes('runsc')) {
      expect(gvisor, JSON.stringify(gvisor)).toMatchObject({
        status: 'ok',
        detail: expect.stringMatching(/^works: a sandbox ran a cell under gVisor in [\d.]+ s/),
      });
      // The cell saw gVisor's kernel, not the host's.
      expect(gvisor?.detail).not.toContain(`kernel ${os.release()})`);
    } else {
      expect(gvisor).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^not installed \(optional/) });
    }
  });

  it("shows each configured model's context window, output limit and price, and fails an unpriced one under a budget", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'rlm-cli-doctor-'));
    try {
      await writeFile(
        path.join(dir, 'rlm.config.yaml'),
        [
          'root: { backend: openai, model: gpt-5-mini }',
          'limits: { maxCostUsd: 2 }',
          'models:',
          '  deep: { model: o3-deep-research }',
          '  mine: { backend: ollama, model: my-local-llama }',
          '',
        ].join('\n'),
      );
      const result = await runRlm(['doctor'], { cwd: dir, env: cleanEnv({ OPENAI_API_KEY: 'sk-test' }) });
      const lines = result.stdout.split('\n');
      const after = (name: string) => lines[lines.findIndex((line) => new RegExp(`^\\S+\\s+${name}\\s`).test(line)) + 1] ?? '';
      expect(after('root model')).toMatch(
        /^\s+context 400,000 tokens; output ≤ 128,000 tokens; \$0\.25 in, \$2 out, cache \$0\.025 read per million tokens \(rlm's table, \d{4}-\d{2}-\d{2}\)$/,
      );
      // Missing from rlm's table, priced from the maintained data the package depends on.
      expect(after('model deep')).toMatch(
        /^\s+context [\d,]+ tokens \(from @pydantic\/genai-prices\); output limit unknown; \$[\d.]+ in, \$[\d.]+ out.* \(@pydantic\/genai-prices\)$/,
      );
      expect(after('model mine')).toMatch(/^\s+context 128,000 tokens \(assumed: .*; no known price: its costs are unknown/);
      expect(result.stdout).toMatch(/FAIL\s+model mine\s/);
      expect(result.stdout).toContain('refuses to start without a price for my-local-llama');
      expect(result.code).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
