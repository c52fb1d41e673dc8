/**
 * The flag parsing every command shares, and the output switches of the main command and `rlm
 * demo`. The flags themselves, and every help page, come from ../flags/cli-flags.ts.
 */
import { UsageError } from '../cli-io.js';
import type { CommandName } from '../flags/cli-flags.js';
import { type ParsedFlags, parseCommandFlags } from '../flags/parse-flags.js';
import type { OutputMode } from '../run/execute-run.js';

/** A command's flags, for {@link parseFlags} (doctor-flags.ts has `rlm doctor`'s). */
export interface CommandFlags<C extends CommandName> {
  readonly command: C;
}

export const RUN_FLAGS: CommandFlags<'run'> = { command: 'run' };

/**
 * Parses `argv` as the flags of `flags.command`.
 *
 * @throws {UsageError} an unknown flag (with the nearest one), a flag without its value, a switch
 *   with one.
 */
export function parseFlags<C extends CommandName>(argv: readonly string[], flags: CommandFlags<C>): ParsedFlags<C> {
  return parseCommandFlags(argv, flags.command);
}

export function outputModeOf(values: { json?: boolean | undefined; verbose?: boolean | undefined; quiet?: boolean | undefined }): OutputMode {
  if (values.verbose && values.quiet) throw new UsageError('--verbose and --quiet contradict each other; choose one');
  return { json: values.json ?? false, verbose: values.verbose ?? false, quiet: values.quiet ?? false };
}
