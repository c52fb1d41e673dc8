import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { errorCode, errorMessage, toError } from './to-error.js';

describe('toError', () => {
  it('returns an Error as it is, one made in another realm included', () => {
    const here = new RangeError('here');
    expect(toError(here)).toBe(here);
    const foreign = runInNewContext('new TypeError("from a cell")') as unknown;
    expect(foreign instanceof Error).toBe(false);
    expect(toError(foreign)).toBe(foreign);
    expect(errorMessage(foreign)).toBe('from a cell');
  });

  it('wraps a string, an object or undefined in an Error that shows it and keeps it as the cause', () => {
    expect(toError('it broke')).toMatchObject({ message: 'it broke', cause: 'it broke' });
    const thrown = { detail: 3 };
    expect(toError(thrown)).toMatchObject({ message: '{"detail":3}', cause: thrown });
    expect(toError(undefined).message).toBe('undefined');
  });
});

describe('errorMessage and errorCode', () => {
  it('never throw, even for a value whose every property access throws', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('no');
        },
        getPrototypeOf() {
          throw new Error('no');
        },
      },
    );
    expect(typeof errorMessage(hostile)).toBe('string');
    expect(errorCode(hostile)).toBeUndefined();
  });

  it('give the code of a Node system error only', () => {
    expect(errorCode(Object.assign(new Error('gone'), { code: 'ENOENT' }))).toBe('ENOENT');
    expect(errorCode(runInNewContext('Object.assign(new Error("t"), { code: "ERR_SCRIPT_EXECUTION_TIMEOUT" })'))).toBe('ERR_SCRIPT_EXECUTION_TIMEOUT');
    expect(errorCode({ code: 1 })).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
  });
});
