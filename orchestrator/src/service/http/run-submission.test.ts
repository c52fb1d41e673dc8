import { describe, expect, it } from 'vitest';
import { ServiceError, type TeamRecord } from '../service-types.js';
import { bearerToken } from './auth.js';
import { TEST_SETTINGS } from './http-test-harness.js';
import { effectiveLimits, resolveModel } from './run-submission.js';

const team = (models: string[] | null): TeamRecord => ({
  id: 'team_1',
  name: 't',
  budgetUsd: null,
  maxConcurrentRuns: 4,
  maxQueued: 100,
  models,
  createdAt: 0,
});

describe('run submission rules', () => {
  it('takes the server’s limit as default and ceiling, keeps what it has none for, and caps the cost by the remaining budget', () => {
    const server = { maxIterations: 20, maxCostUsd: 5 };
    expect(effectiveLimits(server, undefined, null)).toEqual({ maxIterations: 20, maxCostUsd: 5 });
    expect(effectiveLimits(server, { maxIterations: 3, maxDepth: 4, maxCostUsd: 9 }, null)).toEqual({ maxIterations: 3, maxDepth: 4, maxCostUsd: 5 });
    expect(effectiveLimits(server, { maxCostUsd: 2 }, 0.75)).toEqual({ maxIterations: 20, maxCostUsd: 0.75 });
    expect(effectiveLimits({}, undefined, 3)).toEqual({ maxCostUsd: 3 });
    // Nothing left: no cap at 0; the store refuses the run with budget_exhausted.
    expect(effectiveLimits({}, undefined, 0)).toEqual({});
  });

  it('resolves a model by id or bare name, lets a team use the default always and others by name or id', () => {
    expect(resolveModel(TEST_SETTINGS.models, team(null), undefined).id).toBe('rlm');
    expect(resolveModel(TEST_SETTINGS.models, team(null), 'big').id).toBe('rlm:big');
    expect(resolveModel(TEST_SETTINGS.models, team(['rlm:fast']), 'rlm:fast').id).toBe('rlm:fast');
    expect(resolveModel(TEST_SETTINGS.models, team([]), 'rlm').id).toBe('rlm');
    expect(() => resolveModel(TEST_SETTINGS.models, team([]), 'fast')).toThrow(expect.objectContaining({ kind: 'model_not_allowed' }));
    const unknown = (() => {
      try {
        resolveModel(TEST_SETTINGS.models, team(null), 'rlm:nope');
      } catch (error) {
        return error;
      }
    })();
    expect(ServiceError.isInstance(unknown) && unknown.kind).toBe('invalid_request');
  });

  it('reads a bearer token, case-insensitively, and nothing else', () => {
    expect(bearerToken('Bearer rlm_abc')).toBe('rlm_abc');
    expect(bearerToken('bearer   rlm_abc ')).toBe('rlm_abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken('Bearer ')).toBeUndefined();
    expect(bearerToken(`Bearer ${'x'.repeat(600)}`)).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
