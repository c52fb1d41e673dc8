/**
 * `rlm doctor`'s help and flags. Light on purpose (no imports): `rlm doctor --help` prints from
 * here without loading the checks' dependencies (dockerode, the provider SDKs, zod).
 */

export const DOCTOR_HELP = `Usage: rlm doctor [--json] [--config FILE]

Checks Node, the Docker engine (reachable, version, rootless, cgroups, enforced limits, its OCI
runtimes), the sandbox image, whether gVisor's runsc starts a sandbox (when the engine has it: one
sandbox, one cell, up to 60 s), which provider API keys are set (names only), the config file, and
each configured model (root, sub, every models: entry: backend, model id, base URL, whether its
key's variable is set); prints one line per check (ok, warn, FAIL) with the fix for each problem. Exit code 1 if any check
fails; runsc failing is a failure only when the settings select it (sandbox.runtime in the config
file, or RLM_SANDBOX_RUNTIME), a warning otherwise.
`;

export const DOCTOR_FLAGS = {
  json: { type: 'boolean' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
