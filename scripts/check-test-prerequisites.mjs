// Run by `pnpm test` before anything else: everything the test command needs beyond
// `pnpm install` must be here, or the run stops at once with one line per missing piece that
// says how to get it. Never a skip, never a stack trace. Plain Node, no dependencies.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync } from 'node:fs';
import http from 'node:http';

const README = 'see "Requirements" in README.md';
/** @type {string[]} */
const problems = [];

const [major] = process.versions.node.split('.').map(Number);
if ((major ?? 0) < 22)
  problems.push(
    `Node.js ${process.versions.node} is too old: the tests need Node.js >= 22 (npm install --prefix /opt/node24 node@24, then put /opt/node24/node_modules/.bin first on PATH); ${README}`,
  );

const dockerProblem = await checkDocker();
if (dockerProblem) problems.push(dockerProblem);

const chromium = process.env.RLM_TEST_CHROMIUM || '/usr/bin/chromium';
if (!isExecutable(chromium)) {
  problems.push(
    `the viewer's browser test needs Chromium and ${chromium} ${existsSync(chromium) ? 'is not executable' : 'does not exist'}: ` +
      `apt-get install -y chromium (Debian/Ubuntu), or set RLM_TEST_CHROMIUM to a Chromium binary; ${README}`,
  );
}

// The service's tests start throwaway PostgreSQL clusters from Debian's postgresql package, and
// check docker-compose.yml with docker-compose.
const postgresBins = (() => {
  try {
    return readdirSync('/usr/lib/postgresql').filter((version) => existsSync(`/usr/lib/postgresql/${version}/bin/initdb`));
  } catch {
    return [];
  }
})();
if (postgresBins.length === 0) {
  problems.push(
    `the service's tests need PostgreSQL's server binaries (initdb, pg_ctl) and /usr/lib/postgresql/*/bin/initdb does not exist: apt-get install -y postgresql (Debian/Ubuntu; the tests start clusters of their own, none needs to run); ${README}`,
  );
}
try {
  execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
} catch {
  problems.push(`the compose file's test runs docker-compose, which is not on PATH: apt-get install -y docker-compose; ${README}`);
}

// The .gitignore tests compare our rules with git's own answer.
try {
  execFileSync('git', ['--version'], { stdio: 'ignore' });
} catch {
  problems.push(`the .gitignore tests compare with git, which is not on PATH: apt-get install -y git; ${README}`);
}

if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`pnpm test: ${problem}\n`);
  process.exit(1);
}

/** @param {string} file */
function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Asks the engine that DOCKER_HOST (or the default socket) names for `/_ping`.
 * @returns {Promise<string | undefined>} what is wrong, or undefined when an engine answered
 */
async function checkDocker() {
  const host = process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  const fix = `install a Docker engine and start it (Debian: apt-get install -y docker.io, then dockerd &), or point DOCKER_HOST at a running one; ${README}`;
  /** @type {http.RequestOptions} */
  let target;
  if (host.startsWith('unix://')) target = { socketPath: host.slice('unix://'.length) };
  else if (host.startsWith('tcp://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    target = { host: url.hostname, port: Number(url.port || 2375) };
  } else return undefined; // ssh:// and the like: the integration tests' own set-up checks them.
  return new Promise((resolve) => {
    const request = http.get({ ...target, path: '/_ping', timeout: 10_000 }, (response) => {
      response.resume();
      resolve(
        response.statusCode === 200
          ? undefined
          : `the tests need a Docker engine and the one at ${host} answered /_ping with HTTP ${response.statusCode}: ${fix}`,
      );
    });
    request.on('timeout', () => request.destroy(new Error('no answer within 10 s')));
    request.on('error', (error) => resolve(`the tests need a Docker engine and none answers at ${host} (${error.message}): ${fix}`));
  });
}
