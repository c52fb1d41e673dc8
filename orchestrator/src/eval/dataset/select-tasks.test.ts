import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../errors.js';
import type { EvalTask } from '../eval-types.js';
import { selectTasks } from './select-tasks.js';

const tasks: EvalTask[] = Array.from({ length: 100 }, (_, i) => ({ id: `t${i + 1}`, query: 'q', expected: [], metadata: {}, row: i + 1 }));
const ids = (selected: readonly EvalTask[]) => selected.map((task) => task.id);

describe('selectTasks', () => {
  it('keeps every task without options, and the first N with a limit', () => {
    expect(ids(selectTasks(tasks, {}))).toEqual(ids(tasks));
    expect(ids(selectTasks(tasks, { limit: 3 }))).toEqual(['t1', 't2', 't3']);
    expect(selectTasks(tasks, { limit: 1000 })).toHaveLength(100);
  });

  it('draws the same seeded sample every time, without repeats, in file order; another seed draws another', () => {
    const first = selectTasks(tasks, { sample: 10, seed: 7 });
    expect(ids(first)).toEqual(ids(selectTasks(tasks, { sample: 10, seed: 7 })));
    expect(new Set(ids(first)).size).toBe(10);
    expect(first.map((task) => task.row)).toEqual([...first.map((task) => task.row)].sort((a, b) => a - b));
    expect(ids(selectTasks(tasks, { sample: 10, seed: 8 }))).not.toEqual(ids(first));
    // Pinned: the sample must not change between machines or releases (a resume compares task ids).
    expect(ids(selectTasks(tasks, { sample: 5, seed: 1 }))).toMatchInlineSnapshot(`
      [
        "t26",
        "t47",
        "t72",
        "t82",
        "t89",
      ]
    `);
    expect(ids(selectTasks(tasks, { sample: 5 }))).toEqual(ids(selectTasks(tasks, { sample: 5, seed: 0 })));
  });

  it('takes the first N of a sample when both are given, and all tasks when the sample is larger than the dataset', () => {
    const sample = selectTasks(tasks, { sample: 10, seed: 3 });
    expect(ids(selectTasks(tasks, { sample: 10, seed: 3, limit: 4 }))).toEqual(ids(sample).slice(0, 4));
    expect(ids(selectTasks(tasks, { sample: 500, seed: 3 }))).toEqual(ids(tasks));
  });

  it('covers every task about equally often over many seeds (an unbiased draw)', () => {
    const counts = new Map<string, number>();
    for (let seed = 0; seed < 2000; seed++) for (const task of selectTasks(tasks, { sample: 10, seed })) counts.set(task.id, (counts.get(task.id) ?? 0) + 1);
    // Each task is expected 200 times; a fair draw stays well within ±35%.
    for (const task of tasks) expect(counts.get(task.id) ?? 0, task.id).toBeGreaterThan(130);
    for (const task of tasks) expect(counts.get(task.id) ?? 0, task.id).toBeLessThan(270);
  });

  it('refuses counts that are not positive integers and seeds that are not integers, naming the flag', () => {
    expect(() => selectTasks(tasks, { limit: 0 })).toThrow(InvalidOptionError);
    expect(() => selectTasks(tasks, { limit: 0 })).toThrow('--limit: must be a whole number of tasks, at least 1; got 0');
    expect(() => selectTasks(tasks, { sample: 2.5 })).toThrow('--sample: must be a whole number of tasks, at least 1; got 2.5');
    expect(() => selectTasks(tasks, { sample: 2, seed: 0.5 })).toThrow('--seed: must be an integer; got 0.5');
  });
});
