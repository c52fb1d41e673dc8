/** One promise per request index, settled by a fake server and awaited by tests, in either order. */
export interface PerRequest<T> {
  /** Resolves when request `index` is settled (at once if it already was). */
  wait(index: number): Promise<T>;
  settle(index: number, value: T): void;
}

export function perRequest<T>(): PerRequest<T> {
  const entries = new Map<number, { promise: Promise<T>; resolve: (value: T) => void }>();
  const entry = (index: number) => {
    let found = entries.get(index);
    if (!found) {
      let resolve: (value: T) => void = () => {};
      const promise = new Promise<T>((settle) => {
        resolve = settle;
      });
      found = { promise, resolve };
      entries.set(index, found);
    }
    return found;
  };
  return { wait: (index) => entry(index).promise, settle: (index, value) => entry(index).resolve(value) };
}
