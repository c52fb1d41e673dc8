/** What every generator takes (checked by `generateDataset`). */
export interface GeneratorOptions {
  /** How many tasks (rows), at least 1. */
  n: number;
  /** The size of each task's context in characters (UTF-16 code units), at least 1; each context comes within a sentence or record of it. */
  contextChars: number;
  /** An integer: the same seed and options give the same rows, byte for byte, everywhere. */
  seed: number;
}
