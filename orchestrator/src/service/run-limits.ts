/**
 * A run's limits after the caps: the server's ceilings (the HTTP layer, at submission) and what is
 * left of the team's budget (the store, under the team's row lock, so concurrent submissions see
 * one spend).
 */
import type { RunLimits } from './service-types.js';

const LIMIT_KEYS = [
  'maxIterations',
  'maxDepth',
  'timeoutSeconds',
  'cellTimeoutSeconds',
  'maxCostUsd',
  'maxTokens',
] as const satisfies readonly (keyof RunLimits)[];

/**
 * The limits a run gets: each asked-for value capped by the server's (which is also the default
 * when none is asked), and `maxCostUsd` by what is left of the team's budget.
 * @param remainingBudgetUsd null when the team has no budget.
 */
export function effectiveLimits(server: RunLimits, requested: RunLimits | undefined, remainingBudgetUsd: number | null): RunLimits {
  const limits: RunLimits = {};
  for (const key of LIMIT_KEYS) {
    const ceiling = server[key];
    const asked = requested?.[key];
    const value = asked === undefined ? ceiling : ceiling === undefined ? asked : Math.min(asked, ceiling);
    if (value !== undefined) limits[key] = value;
  }
  // Nothing left: the store refuses the run (budget_exhausted) under its own lock; capping at 0 would only hide that.
  if (remainingBudgetUsd !== null && remainingBudgetUsd > 0)
    limits.maxCostUsd = limits.maxCostUsd === undefined ? remainingBudgetUsd : Math.min(limits.maxCostUsd, remainingBudgetUsd);
  return limits;
}
