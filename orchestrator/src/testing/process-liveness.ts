/**
 * Whether a process is still there, for tests and benchmarks that kill process trees. A zombie
 * counts as gone: it holds nothing but its exit status, and an init that does not reap orphans
 * (as in some containers) keeps them around.
 */
import { readFileSync } from 'node:fs';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true;
  }
}
