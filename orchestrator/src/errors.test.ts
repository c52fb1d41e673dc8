import { describe, expect, it } from 'vitest';
import { RunLimitError } from './engine/run-budget.js';
import type * as errors from './errors.js';
import {
  AbortedError,
  DockerUnavailableError,
  InvalidOptionError,
  RlmError,
  SandboxClosedError,
  SandboxError,
  SandboxImageError,
  SandboxPoolExhaustedError,
  SandboxUnresponsiveError,
  errorCode,
  errorMessage,
  toError,
} from './errors.js';
import type * as modelBackend from './models/model-backend.js';
import { ModelCallError } from './models/model-backend.js';
import { RunFileError } from './viewer/run-directory.js';
import { PortInUseError } from './viewer/viewer-server.js';

/** Every exported error class, how to make one with `cause`, and the `kind` it has by default. */
const CLASSES = [
  { errorClass: RlmError, kind: 'error', make: (cause: unknown) => new RlmError('failed', { cause }) },
  {
    errorClass: DockerUnavailableError,
    kind: 'docker_unavailable',
    make: (cause: unknown) => new DockerUnavailableError('no Docker', 'unix:///x.sock', { cause }),
  },
  { errorClass: SandboxImageError, kind: 'image_build_failed', make: (cause: unknown) => new SandboxImageError('no image', 'Step 3/9 failed', { cause }) },
  { errorClass: SandboxError, kind: 'sandbox_failed', make: (cause: unknown) => new SandboxError('sandbox failed', 'sbx-1', { cause }) },
  { errorClass: SandboxClosedError, kind: 'sandbox_closed', make: (cause: unknown) => new SandboxClosedError('closed', 'sbx-1', { cause }) },
  {
    errorClass: SandboxUnresponsiveError,
    kind: 'unresponsive',
    make: (cause: unknown) => new SandboxUnresponsiveError('stopped answering', 'sbx-1', 'liveness', 'execute', { cause }),
  },
  {
    errorClass: SandboxPoolExhaustedError,
    kind: 'pool_exhausted',
    make: (cause: unknown) => new SandboxPoolExhaustedError('no sandbox freed', 'timeout', 1000, { cause }),
  },
  { errorClass: InvalidOptionError, kind: 'invalid_option', make: (cause: unknown) => new InvalidOptionError('limits.maxDepth', 'must be ≥ 0', { cause }) },
  { errorClass: AbortedError, kind: 'aborted', make: (cause: unknown) => new AbortedError('cancelled', { cause }) },
  {
    errorClass: ModelCallError,
    kind: 'provider_error',
    make: (cause: unknown) => new ModelCallError('HTTP 500', 'openai', 'gpt-5', { statusCode: 500 }, { cause }),
  },
  { errorClass: RunLimitError, kind: 'limit_reached', make: (cause: unknown) => new RunLimitError('tokens', 'over the token budget', 'partial', { cause }) },
  { errorClass: PortInUseError, kind: 'port_in_use', make: (cause: unknown) => new PortInUseError(8080, { cause }) },
  { errorClass: RunFileError, kind: 'run_file', make: (cause: unknown) => new RunFileError('a.jsonl: no such run', 404, { cause }) },
] as const;

type ErrorClass = (typeof CLASSES)[number]['errorClass'];

/** The truth `isInstance` must agree with: `made` comes from class `y`, which is `x` or extends it. */
function isSameOrSubclass(y: ErrorClass, x: ErrorClass): boolean {
  return y === x || y.prototype instanceof x;
}

/**
 * A second copy of a module, as a duplicated install of the package would load it: the query
 * makes Vite evaluate the file again, so its classes are other objects than the imported ones.
 */
async function secondCopy<M>(specifier: string): Promise<M> {
  return (await import(/* @vite-ignore */ `${specifier}?second-install`)) as M;
}

describe('isInstance', () => {
  it('is true exactly when the error is of the class or one of its subclasses, for every pair of classes', () => {
    for (const x of CLASSES) {
      for (const y of CLASSES) {
        const made = y.make(new Error('underneath'));
        expect({ class: x.errorClass.name, of: y.errorClass.name, is: x.errorClass.isInstance(made) }).toEqual({
          class: x.errorClass.name,
          of: y.errorClass.name,
          is: isSameOrSubclass(y.errorClass, x.errorClass),
        });
      }
    }
    // Spot checks of the matrix, as the issue stated them.
    expect(ModelCallError.isInstance(new SandboxError('x', undefined))).toBe(false);
    expect(SandboxError.isInstance(new SandboxUnresponsiveError('x', undefined, 'deadline', 'execute'))).toBe(true);
    expect(SandboxClosedError.isInstance(new SandboxError('x', undefined))).toBe(false);
  });

  it('is false for anything that is not an rlm error', () => {
    for (const { errorClass } of CLASSES) {
      for (const value of [new Error('plain'), new TypeError('t'), { name: errorClass.name, kind: 'error' }, 'RlmError', null, undefined, 42]) {
        expect(errorClass.isInstance(value)).toBe(false);
      }
    }
  });

  it('recognises errors made by a second copy of the package, where instanceof fails', async () => {
    const copy = await secondCopy<typeof errors>('./errors.js');
    const copyModels = await secondCopy<typeof modelBackend>('./models/model-backend.js');
    expect(copy.RlmError).not.toBe(RlmError);
    expect(copyModels.ModelCallError).not.toBe(ModelCallError);

    const fromCopy = {
      RlmError: new copy.RlmError('x'),
      DockerUnavailableError: new copy.DockerUnavailableError('x', 'unix:///x.sock'),
      SandboxImageError: new copy.SandboxImageError('x', ''),
      SandboxError: new copy.SandboxError('x', undefined),
      SandboxClosedError: new copy.SandboxClosedError('x', undefined),
      SandboxUnresponsiveError: new copy.SandboxUnresponsiveError('x', undefined, 'lifetime', 'idle'),
      SandboxPoolExhaustedError: new copy.SandboxPoolExhaustedError('x', 'deadlock', 0),
      InvalidOptionError: new copy.InvalidOptionError('o', 'x'),
      AbortedError: new copy.AbortedError('x'),
      ModelCallError: new copyModels.ModelCallError('x', 'openai', 'gpt-5'),
    } as const;
    expect(fromCopy.SandboxError instanceof SandboxError).toBe(false);

    const inBoth = CLASSES.filter(({ errorClass }) => errorClass.name in fromCopy);
    for (const x of CLASSES) {
      for (const y of inBoth) {
        const made = fromCopy[y.errorClass.name as keyof typeof fromCopy];
        expect({ class: x.errorClass.name, of: `copy ${y.errorClass.name}`, is: x.errorClass.isInstance(made) }).toEqual({
          class: x.errorClass.name,
          of: `copy ${y.errorClass.name}`,
          is: isSameOrSubclass(y.errorClass, x.errorClass),
        });
      }
    }
    // And the other way: the copy's classes recognise this copy's errors.
    expect(copy.SandboxError.isInstance(new SandboxUnresponsiveError('x', undefined, 'deadline', 'execute'))).toBe(true);
    expect(copy.SandboxError.isInstance(new ModelCallError('x', 'openai', 'gpt-5'))).toBe(false);
    expect(copy.RlmError.isInstance(new RunLimitError('cost', 'x'))).toBe(true);
    expect(copyModels.ModelCallError.isInstance(new ModelCallError('x', 'openai', 'gpt-5'))).toBe(true);
    expect(copyModels.ModelCallError.isInstance(new RlmError('x'))).toBe(false);
  });
});

describe('every error class', () => {
  it('has its documented kind by default, its own name, and the cause attached', () => {
    for (const { errorClass, kind, make } of CLASSES) {
      const cause = new Error('what went wrong underneath');
      const made = make(cause);
      expect({ class: errorClass.name, kind: made.kind, name: made.name, cause: made.cause }).toEqual({
        class: errorClass.name,
        kind,
        name: errorClass.name,
        cause,
      });
      expect(made).toBeInstanceOf(Error);
      expect(made.stack).toContain(errorClass.name);
    }
  });

  it('takes another kind where the class has several', () => {
    expect(new RlmError('x', { kind: 'invalid_trajectory' }).kind).toBe('invalid_trajectory');
    expect(new SandboxError('killed', 'sbx-1', { kind: 'out_of_memory' }).kind).toBe('out_of_memory');
    const refused = new ModelCallError('401', 'openai', 'gpt-5', { statusCode: 401 }, { kind: 'auth' });
    expect(refused.kind).toBe('auth');
    expect(refused.fatal).toBe(true);
    expect(new ModelCallError('429', 'openai', 'gpt-5', { statusCode: 429 }, { kind: 'rate_limited' }).fatal).toBe(false);
  });

  it('keeps the kind a subclass fixes, whatever kind is passed', () => {
    expect(new SandboxClosedError('x', undefined).kind).toBe('sandbox_closed');
    expect(new SandboxUnresponsiveError('x', undefined, 'deadline', 'execute').kind).toBe('unresponsive');
  });

  it('keeps the cause of a limit error when the partial answer is added', () => {
    const cause = new ModelCallError('HTTP 500', 'openai', 'gpt-5');
    const limit = new RunLimitError('consecutive_failures', '5 turns in a row failed', null, { cause }).withPartialAnswer('so far');
    expect(limit.partialAnswer).toBe('so far');
    expect(limit.cause).toBe(cause);
  });
});

describe('toError', () => {
  it('returns an Error as it is', () => {
    const error = new TypeError('bad');
    expect(toError(error)).toBe(error);
    const rlm = new AbortedError('cancelled');
    expect(toError(rlm)).toBe(rlm);
  });

  it('wraps a string, an object or undefined in an Error that shows it and keeps it as the cause', () => {
    const fromString = toError('it broke');
    expect(fromString).toBeInstanceOf(Error);
    expect(fromString.message).toBe('it broke');
    expect(fromString.cause).toBe('it broke');

    const thrown = { code: 'E_SOMETHING', detail: 3 };
    const fromObject = toError(thrown);
    expect(fromObject.message).toBe('{"code":"E_SOMETHING","detail":3}');
    expect(fromObject.cause).toBe(thrown);

    const fromUndefined = toError(undefined);
    expect(fromUndefined).toBeInstanceOf(Error);
    expect(fromUndefined.message).toBe('undefined');
    expect(fromUndefined.cause).toBeUndefined();
  });

  it('shows what JSON cannot (a cycle, a bigint) and cuts a long value to 1000 characters', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(toError(cyclic).message).toBe('[object Object]');
    expect(toError(10n).message).toBe('10');
    const long = toError('x'.repeat(5000)).message;
    expect(long).toBe(`${'x'.repeat(1000)}…`);
  });
});

describe('errorMessage and errorCode', () => {
  it('give the message of anything thrown, and the code of a Node system error only', () => {
    expect(errorMessage(new Error('m'))).toBe('m');
    expect(errorMessage('s')).toBe('s');
    const enoent = Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    expect(errorCode(enoent)).toBe('ENOENT');
    expect(errorCode(new Error('no code'))).toBeUndefined();
    expect(errorCode({ code: 404 })).toBeUndefined();
    expect(errorCode('ENOENT')).toBeUndefined();
    expect(errorCode(null)).toBeUndefined();
  });
});
