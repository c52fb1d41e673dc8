/**
 * A small seeded pseudo-random generator for the parts of `rlm eval` that must give the same
 * result for the same seed on every machine and Node version: `--sample N --seed S` and the
 * generated datasets. `Math.random` cannot be seeded, and a library would be more than this needs.
 *
 * The generator is sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG, 128 bits of state, period
 * about 2^128, passes PractRand), seeded by hashing the seed's text with cyrb128, so that nearby
 * seeds (1, 2, 3) and derived seeds (`"niah:1:task:7"`) give unrelated streams. Only 32-bit integer
 * arithmetic (`Math.imul`, shifts) is used: the same sequence everywhere. Not for cryptography.
 */

/** A seeded stream of pseudo-random numbers. */
export interface SeededRandom {
  /** The next number in [0, 1), with 32 bits of randomness. */
  next(): number;
  /** An integer in [0, n). `n` must be a positive integer (at most 2^32). */
  int(n: number): number;
  /** An integer in [min, max], both included. */
  between(min: number, max: number): number;
  /** One item of a non-empty array. */
  pick<T>(items: readonly T[]): T;
  /** A shuffled copy of `items` (Fisher–Yates). */
  shuffle<T>(items: readonly T[]): T[];
}

/**
 * A generator seeded by `seed`: the same seed gives the same sequence, on any platform. A number
 * and its decimal text are the same seed (`1` and `'1'`).
 */
export function seededRandom(seed: number | string): SeededRandom {
  let [a, b, c, d] = cyrb128(String(seed));
  const next32 = (): number => {
    // sfc32
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  // The first outputs of a freshly seeded sfc32 are still close to the seed: skip them.
  for (let i = 0; i < 15; i++) next32();
  const random: SeededRandom = {
    next: () => next32() / 4294967296,
    int(n) {
      if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new RangeError(`int(n): n must be an integer in [1, 2^32], got ${n}`);
      // Rejection sampling: no bias toward small values when n does not divide 2^32.
      const limit = 4294967296 - (4294967296 % n);
      for (;;) {
        const x = next32();
        if (x < limit) return x % n;
      }
    },
    between: (min, max) => min + random.int(max - min + 1),
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new RangeError('pick: the array is empty');
      return items[random.int(items.length)] as T;
    },
    shuffle<T>(items: readonly T[]): T[] {
      const copy = [...items];
      for (let i = copy.length - 1; i > 0; i--) {
        const j = random.int(i + 1);
        [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
      }
      return copy;
    },
  };
  return random;
}

/** cyrb128 (bryc): a fast 128-bit non-cryptographic hash of a string, as four 32-bit words. */
function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}
