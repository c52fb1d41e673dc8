/**
 * `rlm doctor`'s flags and help, made from ../flags/cli-flags.ts. Light on purpose: `rlm doctor
 * --help` prints from here without loading the checks' dependencies (dockerode, the provider SDKs,
 * zod).
 */
import { helpText } from '../flags/help-text.js';
import type { CommandFlags } from './run-flags.js';

export const DOCTOR_HELP = helpText('doctor');

export const DOCTOR_FLAGS: CommandFlags<'doctor'> = { command: 'doctor' };
