/** Numeric flag values, read and range-checked with one wording for every command. */
import { UsageError } from '../cli-io.js';
import { gotValue } from './parse-flags.js';

/** `value` as a whole number of at least `range.min` (and at most `range.max`); undefined when absent. @throws {UsageError} naming the flag and the value. */
export function integer(value: string | undefined, flag: string, range: { min: number; max?: number }): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < range.min || (range.max !== undefined && parsed > range.max))
    throw new UsageError(
      `${flag} must be a whole number${range.max !== undefined ? ` from ${range.min} to ${range.max}` : range.min > 0 ? ` of at least ${range.min}` : ', 0 or more'} (got ${gotValue(value)})`,
    );
  return parsed;
}

/** `value` as a number of at least `range.min` / above `range.above`; undefined when absent. @throws {UsageError} naming the flag and the value. */
export function number(value: string | undefined, flag: string, range: { min?: number; above?: number }): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  const ok =
    value.trim() !== '' && Number.isFinite(parsed) && (range.min === undefined || parsed >= range.min) && (range.above === undefined || parsed > range.above);
  if (!ok)
    throw new UsageError(
      `${flag} must be a number${range.above !== undefined ? ` above ${range.above}` : range.min !== undefined ? ` of at least ${range.min}` : ''} (got ${gotValue(value)})`,
    );
  return parsed;
}
