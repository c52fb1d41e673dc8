/**
 * The OCI runtime the integration tests run their sandboxes under: the engine's default (runc)
 * unless `RLM_TEST_RUNTIME` names another. The `runsc` vitest project (`pnpm test:runsc`) sets it
 * to `runsc`, so the same container tests run again under gVisor.
 *
 * A test that starts a sandbox spreads {@link TEST_SANDBOX_RUNTIME} into its options (for
 * `Sandbox.create`, or the `sandbox` options of an `RLM`). A child `rlm` process gets the runtime
 * from `RLM_SANDBOX_RUNTIME`, which the `runsc` project sets for its workers, so a child started
 * with this process's environment inherits it; one started with an environment of its own takes
 * {@link testRuntimeEnv} (or {@link TEST_RUNTIME_ARGS} on its command line). A fixture process
 * calling `Sandbox.create` itself reads `RLM_TEST_RUNTIME` (inherited the same way).
 *
 * Under the `runsc` project, a sandbox container that starts under any other runtime fails the run
 * (test/support/runsc-global-setup.ts watches the engine's events).
 */

/** The environment variable naming the runtime, e.g. `RLM_TEST_RUNTIME=runsc`. */
export const TEST_RUNTIME_ENV = 'RLM_TEST_RUNTIME';

/** The variable the `rlm` CLI reads its sandboxes' runtime from (the `--runtime` flag's). */
const CLI_RUNTIME_ENV = 'RLM_SANDBOX_RUNTIME';

/** The runtime named by `RLM_TEST_RUNTIME` (trimmed), or undefined for the engine's default. */
export function testRuntimeFrom(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const name = env[TEST_RUNTIME_ENV]?.trim();
  return name ? name : undefined;
}

/** The runtime of this test run, e.g. `'runsc'`; undefined means the engine's default (runc). */
export const TEST_RUNTIME: string | undefined = testRuntimeFrom(process.env);

/** Whether this run's sandboxes run under gVisor, whose kernel differs from Linux in ways a few probes see. */
export const IS_GVISOR: boolean = TEST_RUNTIME === 'runsc';

/**
 * `{ runtime }` to spread into `Sandbox.create` options or an `RLM`'s `sandbox` options; `{}` under
 * the engine's default, so the options stay exactly what they were.
 *
 * @example Sandbox.create({ docker, image, ...TEST_SANDBOX_RUNTIME, startTimeoutMs: TEST_START_TIMEOUT_MS })
 */
export const TEST_SANDBOX_RUNTIME: Readonly<{ runtime?: string }> = Object.freeze(TEST_RUNTIME ? { runtime: TEST_RUNTIME } : {});

/** `['--runtime', name]` for an `rlm run`/`rlm sandbox` command line; `[]` under the engine's default. */
export const TEST_RUNTIME_ARGS: readonly string[] = Object.freeze(TEST_RUNTIME ? ['--runtime', TEST_RUNTIME] : []);

/**
 * `env` (default: this process's environment) with `RLM_SANDBOX_RUNTIME` set to this run's runtime,
 * for a child `rlm` process; unchanged under the engine's default.
 */
export function testRuntimeEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return TEST_RUNTIME ? { ...env, [CLI_RUNTIME_ENV]: TEST_RUNTIME } : env;
}
