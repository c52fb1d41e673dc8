/**
 * `rlm doctor` against the real engine: it lists the engine's runtimes, and, when the engine has
 * gVisor's runsc (CI's does: .ci/run registers it), proves it works by running a cell in a sandbox
 * under it. The verdicts for a broken or missing runsc are unit-tested
 * (orchestrator/src/cli/commands/doctor-command.test.ts).
 */
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { createDockerClient } from 'rlm';
import { dockerInfo } from '../orchestrator/src/sandbox/docker-client.js';
import { runRlm } from './support/rlm-process.js';

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
});
