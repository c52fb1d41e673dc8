import { METHODS, type Method, type ResultLine, resultKey } from '../eval-types.js';
import type { Cluster } from './bootstrap.js';

/**
 * The score a result counts with: its score; 0 for a model failure (`error_kind: "model"`) without
 * one; null for results excluded from accuracy (`infra` and `scorer` errors, or no score at all).
 */
export function countedScore(line: ResultLine): number | null {
  if (line.error_kind === 'infra' || line.error_kind === 'scorer') return null;
  if (line.score !== null) return line.score;
  return line.error_kind === 'model' ? 0 : null;
}

/** The lines with one per (task, method, epoch), the last of each kept (as `readResults` does). */
export function latestLines(lines: readonly ResultLine[]): ResultLine[] {
  const byKey = new Map<string, ResultLine>();
  for (const line of lines) {
    const key = resultKey(line);
    byKey.delete(key);
    byKey.set(key, line);
  }
  return [...byKey.values()];
}

/** Per task, the sum and count of a method's counted scores (tasks with none are absent), in first-seen order. */
export function taskClusters(lines: readonly ResultLine[], method: Method): Map<string, Cluster> {
  const clusters = new Map<string, Cluster>();
  for (const line of lines) {
    if (line.method !== method) continue;
    const score = countedScore(line);
    if (score === null) continue;
    const cluster = clusters.get(line.task_id);
    if (cluster) {
      cluster.sum += score;
      cluster.count++;
    } else {
      clusters.set(line.task_id, { sum: score, count: 1 });
    }
  }
  return clusters;
}

/** `methods` followed by any other method the lines hold, in {@link METHODS} order, without repeats. */
export function methodsPresent(lines: readonly ResultLine[], methods: readonly Method[] = []): Method[] {
  const seen = new Set(lines.map((line) => line.method));
  const ordered = [...new Set(methods)];
  for (const method of METHODS) if (seen.has(method) && !ordered.includes(method)) ordered.push(method);
  return ordered;
}

/** The per-task paired differences (mean of a − mean of b) over tasks both methods scored. */
export function pairedDifferences(a: ReadonlyMap<string, Cluster>, b: ReadonlyMap<string, Cluster>): Array<{ task: string; a: number; b: number }> {
  const pairs: Array<{ task: string; a: number; b: number }> = [];
  for (const [task, clusterA] of a) {
    const clusterB = b.get(task);
    if (clusterB) pairs.push({ task, a: clusterA.sum / clusterA.count, b: clusterB.sum / clusterB.count });
  }
  return pairs;
}
