import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { setLogSink } from '../logging.js';
import {
  SANDBOX_ID_LABEL,
  SANDBOX_LABEL,
  createSandboxStateDir,
  currentOwner,
  formatOwner,
  ownerStatus,
  parseOwner,
  processStartTime,
  pruneSandboxes,
  reapOrphanedSandboxes,
  sandboxOwnerLabels,
} from './reaper.js';

// A pid far above any real pid_max default, so it is never alive.
const GONE_PID = 4_000_000;

describe('owners', () => {
  it('are this host, this pid and its start time, in every sandbox container label', () => {
    const owner = parseOwner(currentOwner());
    expect(owner).toEqual({ host: os.hostname(), pid: process.pid, startTime: processStartTime(process.pid) });
    expect(owner?.startTime).toMatch(/^\d+$/);
    const labels = sandboxOwnerLabels();
    expect(labels).toMatchObject({ 'rlm.sandbox': currentOwner(), 'rlm.owner.host': os.hostname(), 'rlm.owner.pid': String(process.pid) });
    expect(Date.parse(labels['rlm.created'] ?? '')).toBeGreaterThan(Date.now() - 60_000);
  });

  it('tell alive, dead, reused pids and foreign hosts apart', () => {
    const self = { host: os.hostname(), pid: process.pid, startTime: processStartTime(process.pid) };
    expect(ownerStatus(formatOwner(self))).toBe('alive');
    expect(ownerStatus(formatOwner({ ...self, pid: GONE_PID }))).toBe('dead');
    // Same pid, another start time: the pid was reused by an unrelated process.
    expect(ownerStatus(formatOwner({ ...self, startTime: '1' }))).toBe('dead');
    expect(ownerStatus(formatOwner({ ...self, host: `not-${os.hostname()}`, pid: GONE_PID }))).toBe('unknown');
    expect(ownerStatus('garbage')).toBe('unknown');
  });

  it('read a command name with spaces and parentheses in /proc/<pid>/stat', () => {
    expect(processStartTime(process.pid)).toBe(processStartTime(process.pid));
    expect(processStartTime(GONE_PID)).toBeUndefined();
  });
});

type FakeContainer = { Id: string; Names: string[]; State: string; Image: string; Labels: Record<string, string>; Created: number };

type FakeVolume = { Name: string; Labels: Record<string, string> };

function fakeDocker(containers: FakeContainer[], failing: Record<string, number> = {}, volumes: FakeVolume[] = []) {
  const removed: string[] = [];
  const removedVolumes: string[] = [];
  const fail = (id: string) => {
    const status = failing[id];
    if (status !== undefined) throw Object.assign(new Error(`status ${status}`), { statusCode: status, json: { message: `failed ${id}` } });
  };
  const docker = {
    listContainers: async (options: { filters: { label: string[] } }) => {
      expect(options.filters.label).toEqual([SANDBOX_LABEL]);
      return containers;
    },
    getContainer: (id: string) => ({
      remove: async (options: { force: boolean; v: boolean }) => {
        expect(options).toMatchObject({ force: true, v: true });
        fail(id);
        removed.push(id);
      },
    }),
    listVolumes: async (options: { filters: { label: string[] } }) => {
      expect(options.filters.label).toEqual([SANDBOX_LABEL]);
      return { Volumes: volumes, Warnings: [] };
    },
    getVolume: (name: string) => ({
      remove: async () => {
        fail(name);
        removedVolumes.push(name);
      },
    }),
  } as unknown as Dockerode;
  return { docker, removed, removedVolumes };
}

function container(id: string, owner: string, sandboxId?: string): FakeContainer {
  return {
    Id: id,
    Names: [`/rlm-sandbox-${id}`],
    State: 'running',
    Image: 'rlm-sandbox:x',
    Labels: { [SANDBOX_LABEL]: owner, ...(sandboxId ? { [SANDBOX_ID_LABEL]: sandboxId } : {}) },
    Created: 1_700_000_000,
  };
}

describe('pruning', () => {
  const dead = formatOwner({ host: os.hostname(), pid: GONE_PID, startTime: '42' });
  const foreign = formatOwner({ host: `not-${os.hostname()}`, pid: GONE_PID, startTime: '42' });
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('reaps only containers whose owner on this host is dead, and collects failures without throwing', async () => {
    const { docker, removed } = fakeDocker(
      [container('a', dead), container('b', currentOwner()), container('c', foreign), container('d', dead), container('e', dead)],
      { d: 500, e: 404 },
    );
    const warnings: string[] = [];
    const previous = setLogSink((line) => warnings.push(line));
    try {
      const result = await reapOrphanedSandboxes({ docker, stateRoot: '/nonexistent/rlm' });
      expect(removed).toEqual(['a']);
      expect(result.removed.sort()).toEqual(['a', 'e']);
      expect(result.failed).toEqual([{ id: 'd', error: 'HTTP 500: failed d' }]);
    } finally {
      setLogSink(previous);
    }
    expect(warnings.join('\n')).toMatch(/could not remove orphaned sandbox container d/);
  });

  it("removes the context volumes of dead owners, leaves a live owner's and one still in use", async () => {
    const volume = (name: string, owner: string): FakeVolume => ({ Name: name, Labels: { [SANDBOX_LABEL]: owner } });
    const { docker, removedVolumes } = fakeDocker([], { 'in-use': 409 }, [
      volume('orphan', dead),
      volume('live', currentOwner()),
      volume('foreign', foreign),
      volume('in-use', dead),
    ]);
    const result = await reapOrphanedSandboxes({ docker, stateRoot: '/nonexistent/rlm' });
    expect(removedVolumes).toEqual(['orphan']);
    expect(result.removedVolumes).toEqual(['orphan']);
  });

  it('removes every sandbox with all: true', async () => {
    const { docker, removed } = fakeDocker([container('a', dead), container('b', currentOwner()), container('c', foreign)]);
    const result = await pruneSandboxes({ docker, all: true, stateRoot: '/nonexistent/rlm' });
    expect(removed.sort()).toEqual(['a', 'b', 'c']);
    expect(result.failed).toEqual([]);
  });

  it('removes state directories of dead owners that have no container left, and keeps the rest', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'rlm-state-'));
    dirs.push(root);
    const mine = await createSandboxStateDir('mine', root);
    expect((await stat(mine)).mode & 0o777).toBe(0o755);
    for (const [id, owner] of [
      ['orphan', dead],
      ['still-running', dead],
      ['foreign', foreign],
    ] as const) {
      await mkdir(path.join(root, id, 'control'), { recursive: true });
      await writeFile(path.join(root, id, 'owner'), owner);
    }
    await mkdir(path.join(root, 'unowned-old'));
    const old = new Date(Date.now() - 2 * 60 * 60 * 1000);
    await utimes(path.join(root, 'unowned-old'), old, old);
    await mkdir(path.join(root, 'unowned-new'));

    // The container of 'still-running' cannot be removed, so its directory must stay.
    const { docker } = fakeDocker([container('x', dead, 'still-running')], { x: 500 });
    const previous = setLogSink(() => {});
    try {
      const result = await reapOrphanedSandboxes({ docker, stateRoot: root });
      expect(result.removedStateDirs.sort()).toEqual([path.join(root, 'orphan'), path.join(root, 'unowned-old')]);
    } finally {
      setLogSink(previous);
    }
    expect((await readdir(root)).sort()).toEqual(['foreign', 'mine', 'still-running', 'unowned-new']);
  });
});
