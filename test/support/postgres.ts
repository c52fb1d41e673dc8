/**
 * A throwaway PostgreSQL cluster for a test file, from Debian's `postgresql` package (its
 * `initdb` and `pg_ctl` under /usr/lib/postgresql/<version>/bin): a fresh data directory in a temp
 * directory, listening on 127.0.0.1 on a free port (and a Unix socket in that directory only),
 * `trust` authentication for the user `rlm_test`, durability switched off (fsync) since the
 * cluster dies with the test. Each caller gets its own cluster, so vitest workers running at once
 * never share one.
 *
 * PostgreSQL refuses to run as root; tests here run as root, so the cluster runs as the `postgres`
 * user (runuser), which owns the temp directory. As another user, it runs as that user.
 *
 * A test process that dies leaves its cluster running; the next {@link startPostgres} on the
 * machine stops and removes every cluster whose owning process is gone.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const DIR_PREFIX = 'rlm-test-pg-';
const USER = 'rlm_test';
const POSTGRES_LIB = '/usr/lib/postgresql';

export interface TestPostgres {
  /** `postgres://rlm_test@127.0.0.1:<port>/postgres` */
  readonly url: string;
  /** A new, empty database in the cluster (for a test that needs a schema of its own); its URL. */
  newDatabase(): Promise<string>;
  /** Stops the cluster and removes its directory. Safe to call twice. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a cluster and answers once it accepts connections. `durable: true` keeps PostgreSQL's
 * fsync and synchronous commits on (for measurements; tests don't need them).
 * @throws when Debian's `postgresql` package is not installed (the message says how to install
 *   it), or when the cluster does not start (with the tail of its log).
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<TestPostgres> {
  const bin = findPostgresBin();
  await reapOrphanedClusters(bin);
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  await writeFile(path.join(dir, 'owner.pid'), String(process.pid));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const { uid, gid } = await postgresUser();
    await chown(dir, uid, gid);
  }
  const pgRun = (command: string, args: string[]) =>
    run(asRoot ? 'runuser' : path.join(bin, command), asRoot ? ['-u', 'postgres', '--', path.join(bin, command), ...args] : args, {
      cwd: dir,
      env: { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' },
      maxBuffer: 16 * 1024 * 1024,
    });
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  let started = false;
  try {
    await pgRun('initdb', ['-D', data, '-U', USER, '--auth=trust', '-E', 'UTF8', '--no-instructions', ...(options.durable ? [] : ['--no-sync'])]);
    let url: string | undefined;
    let port = 0;
    // The port is free when we look, but another process may take it before postgres binds it: try again.
    for (let attempt = 1; url === undefined; attempt++) {
      port = await freePort();
      const settings = [
        `-p ${port}`,
        '-c listen_addresses=127.0.0.1',
        `-c unix_socket_directories=${dir}`,
        ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
        '-c shared_buffers=32MB',
        '-c max_connections=200',
      ].join(' ');
      try {
        await pgRun('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', log, '-o', settings]);
        started = true;
        url = `postgres://${USER}@127.0.0.1:${port}/postgres`;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
    }
    const clusterUrl = url;
    let closing: Promise<void> | undefined;
    let databases = 0;
    const close = () => {
      closing ??= (async () => {
        await pgRun('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      })();
      return closing;
    };
    return {
      url: clusterUrl,
      async newDatabase() {
        const name = `test_${++databases}`;
        // A client over TCP: any user may run it. Copying the template's files (PostgreSQL ≥ 15)
        // is about twice as fast as the default for a small database.
        const strategy = Number(path.basename(path.dirname(bin))) >= 15 ? ['--strategy=file_copy'] : [];
        await run(path.join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', USER, ...strategy, name], { cwd: dir });
        return clusterUrl.replace(/\/postgres$/, `/${name}`);
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    const logTail = await readFile(log, 'utf8').then(
      (text) => text.slice(-4000),
      () => '',
    );
    if (started) await pgRun('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`could not start a test PostgreSQL with ${bin}: ${(error as Error).message}\n${stderr}\n${logTail}`, { cause: error });
  }
}

/** The newest installed PostgreSQL's bin directory. */
function findPostgresBin(): string {
  const versions = existsSync(POSTGRES_LIB)
    ? readdirSync(POSTGRES_LIB)
        .filter((version) => existsSync(path.join(POSTGRES_LIB, version, 'bin', 'initdb')) && existsSync(path.join(POSTGRES_LIB, version, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const newest = versions[0];
  if (newest === undefined) {
    throw new Error(
      `the PostgreSQL tests need initdb and pg_ctl from Debian's postgresql package (looked in ${POSTGRES_LIB}/*/bin): ` +
        'install it with `apt-get install -y postgresql` (the tests start clusters of their own; the service it installs need not run)',
    );
  }
  return path.join(POSTGRES_LIB, newest, 'bin');
}

async function postgresUser(): Promise<{ uid: number; gid: number }> {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error("the PostgreSQL tests run as root and need the 'postgres' user to run the cluster: install Debian's postgresql package");
  }
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Stops and removes the clusters of test processes that died without closing them. */
async function reapOrphanedClusters(bin: string): Promise<void> {
  const tmp = os.tmpdir();
  const entries = await readdir(tmp).catch(() => [] as string[]);
  for (const entry of entries.filter((name) => name.startsWith(DIR_PREFIX))) {
    const dir = path.join(tmp, entry);
    const owner = Number(await readFile(path.join(dir, 'owner.pid'), 'utf8').catch(() => 'NaN'));
    if (!Number.isInteger(owner) || isAlive(owner)) continue;
    const data = path.join(dir, 'data');
    const asRoot = process.getuid?.() === 0;
    const pgCtl = path.join(bin, 'pg_ctl');
    await run(asRoot ? 'runuser' : pgCtl, [...(asRoot ? ['-u', 'postgres', '--', pgCtl] : []), 'stop', '-D', data, '-m', 'immediate', '-w'], {
      cwd: tmp,
    }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
