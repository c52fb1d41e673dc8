/** Cells that look at the sandbox from the inside, shared by the rootful and rootless suites. */

/** Prints the error of a write to the root (EROFS), a /tmp round trip (ok), and /tmp's noexec. */
export const READ_ONLY_ROOT_PROBE = `
  const fs = require('node:fs');
  try { fs.writeFileSync('/etc/evil', 'x'); print('root writable'); } catch (e) { print(e.code); }
  fs.writeFileSync('/tmp/scratch', 'ok'); print(fs.readFileSync('/tmp/scratch', 'utf8'));
  const tmp = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').find((l) => l.split(' ')[4] === '/tmp');
  print(tmp.includes('noexec') ? 'noexec' : 'exec allowed');
`;
