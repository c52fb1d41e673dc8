import { describe, expect, it, vi } from 'vitest';
import { parseDockerInfo } from '../../sandbox/docker-client.js';
import { checkRunsc, checkRuntimes, runscFix, type RunscTrialResult } from './doctor-command.js';

const withRunsc = parseDockerInfo({
  ServerVersion: '20.10.24',
  DefaultRuntime: 'runc',
  Runtimes: { runc: { path: 'runc' }, runsc: { path: '/usr/bin/runsc', runtimeArgs: ['--network=none'] }, 'io.containerd.runc.v2': { path: 'runc' } },
});
const withoutRunsc = parseDockerInfo({ ServerVersion: '20.10.24', DefaultRuntime: 'runc', Runtimes: { runc: { path: 'runc' } } });

const works = async (): Promise<RunscTrialResult> => ({ durationMs: 2_345, kernel: '4.4.0' });
/** What Sandbox.create says when runsc runs without --host-uds=open. */
const EPERM =
  'the sandbox container exited with code 1 before connecting; it printed:\nrepl-server: could not reach the host at ws+unix:///run/rlm/control.sock:/: connect EPERM /run/rlm/control.sock';

describe('rlm doctor: runtimes', () => {
  it("lists the engine's runtimes with its default first and marked", () => {
    expect(checkRuntimes(withRunsc)).toEqual({ name: 'docker runtimes', status: 'ok', detail: 'runc (default), io.containerd.runc.v2, runsc' });
    expect(checkRuntimes(parseDockerInfo({ DefaultRuntime: 'runsc', Runtimes: { runc: {}, runsc: {} } })).detail).toBe('runsc (default), runc');
  });
});

describe('rlm doctor: gVisor (runsc)', () => {
  it('reports a working runsc with the time the trial took and the kernel its cell saw', async () => {
    const check = await checkRunsc({ info: withRunsc, image: 'rlm-sandbox:abc', required: false, trial: works });
    expect(check.status).toBe('ok');
    expect(check.detail).toMatch(/^works: a sandbox ran a cell under gVisor in 2\.3 s \(the cell saw kernel 4\.4\.0\)/);
  });

  it('says runsc is optional and missing, without trying it, when the engine does not have it', async () => {
    const trial = vi.fn(works);
    const check = await checkRunsc({ info: withoutRunsc, image: 'rlm-sandbox:abc', required: false, trial });
    expect(check).toMatchObject({ status: 'ok', detail: expect.stringMatching(/^not installed \(optional; runtimes: runc\)/) });
    expect(trial).not.toHaveBeenCalled();
  });

  it('fails with how to install and register runsc when the settings select it and the engine lacks it', async () => {
    const check = await checkRunsc({ info: withoutRunsc, image: 'rlm-sandbox:abc', required: true, trial: works });
    expect(check.status).toBe('fail');
    expect(check.fix).toMatch(/apt-get install runsc.*"--network=none", "--platform=ptrace", "--host-uds=open"/);
  });

  it('warns that it did not try runsc when the sandbox image is not built', async () => {
    const trial = vi.fn(works);
    const check = await checkRunsc({ info: withRunsc, image: undefined, required: true, trial });
    expect(check).toMatchObject({
      status: 'warn',
      detail: 'registered, not tried: the sandbox image is not built',
      fix: expect.stringContaining('rlm sandbox build'),
    });
    expect(trial).not.toHaveBeenCalled();
  });

  it('gives the reason and the fix of a sandbox that does not start under runsc: a warning unless the settings select runsc', async () => {
    const failing = async (): Promise<RunscTrialResult> => {
      throw new Error(EPERM);
    };
    const optional = await checkRunsc({ info: withRunsc, image: 'rlm-sandbox:abc', required: false, trial: failing });
    expect(optional.status).toBe('warn');
    expect(optional.detail).toBe(`registered, but a sandbox does not run under it: ${EPERM.replace('\n', ' ')}`);
    expect(optional.fix).toMatch(/^gVisor refuses host Unix sockets.*"--host-uds=open"/);
    const required = await checkRunsc({ info: withRunsc, image: 'rlm-sandbox:abc', required: true, trial: failing });
    expect(required.status).toBe('fail');
  });

  it("names the runtime argument runsc's own errors call for", () => {
    expect(
      runscFix(
        'OCI runtime start failed: starting container: setting up network: creating interfaces from net namespace "/proc/1/ns/net": cannot run with network enabled in root network namespace: unknown',
      ),
    ).toMatch(/"--network=none"/);
    expect(runscFix('the sandbox container exited with code 2 before connecting')).toMatch(/pids/);
    expect(runscFix('something else entirely')).toMatch(/dockerd's log.*"--host-uds=open"/);
  });
});
