import { describe, expect, it } from 'vitest';
import { seededRandom } from './seeded-random.js';

describe('seededRandom', () => {
  it('gives the same sequence for the same seed, a number and its text alike, and pinned values across machines', () => {
    const take = (seed: number | string) => {
      const random = seededRandom(seed);
      return Array.from({ length: 5 }, () => random.int(1_000_000));
    };
    expect(take(1)).toEqual(take('1'));
    expect(take(1)).not.toEqual(take(2));
    expect(take('niah:1:0')).toMatchInlineSnapshot(`
      [
        168695,
        765884,
        672212,
        354130,
        673726,
      ]
    `);
  });

  it('stays in range: next in [0, 1), int in [0, n), between inclusive, a shuffle is a permutation', () => {
    const random = seededRandom('range');
    const seen = new Set<number>();
    let outside = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = random.next();
      if (!(x >= 0 && x < 1)) outside++;
      seen.add(random.between(3, 6));
    }
    expect(outside).toBe(0);
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
    const items = Array.from({ length: 50 }, (_, i) => i);
    const shuffled = random.shuffle(items);
    expect(shuffled).not.toEqual(items);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(items);
    expect(() => random.int(0)).toThrow(RangeError);
    expect(() => random.pick([])).toThrow(RangeError);
  });
});
