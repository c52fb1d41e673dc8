import { configDefaults, defineConfig } from 'vitest/config';

// `rlm-source` makes workspace packages resolve to their TypeScript sources, so unit tests need no build.
const resolve = { conditions: ['rlm-source'] };
// Tests run as vite-node SSR modules, which take their resolve conditions from `ssr.resolve`.
const ssr = { resolve: { conditions: ['rlm-source'] } };

export default defineConfig({
  test: {
    // Containers on a 2-core machine: two files at once is as fast as it gets without starving them.
    maxWorkers: 2,
    minWorkers: 1,
    // Only the unit project runs on threads; the integration tests keep a process per file.
    poolOptions: { threads: { isolate: false } },
    projects: [
      {
        resolve,
        ssr,
        test: {
          name: 'unit',
          include: ['shared/src/**/*.test.ts', 'sandbox-image/src/**/*.test.ts', 'orchestrator/src/**/*.test.ts'],
          // Threads that keep their module cache from one test file to the next (poolOptions below),
          // instead of a process per file importing zod, the provider SDKs and the REPL anew: about
          // half the unit run's time. A unit test that changes global state (the log sink, fake
          // timers, the environment) puts it back in its own afterEach.
          pool: 'threads',
          globalSetup: ['sandbox-image/src/testing/unit-global-setup.ts'],
          // Generous: a machine running two suites at once makes a Python REPL take many seconds to start.
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        resolve,
        ssr,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/rootless/**'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // The container tests again with every sandbox under gVisor (`pnpm test:runsc`): the
        // isolation probes and the REPL contract (sandbox-container), tools, the engine in
        // containers, and the hostile suite. Tests read the runtime from test/support/runtime.ts;
        // the setup fails the run if a sandbox of it started under another runtime. The CLI's
        // variable is set too, so an `rlm` child process started with this environment uses it.
        // Not part of `pnpm test`. `pnpm test:runsc` runs one file at a time: gVisor's ptrace
        // platform makes every syscall slow, and two files of sandboxes at once on two cores can
        // starve a Python cell of the CPU it needs to notice its interrupt within the REPL's 700 ms
        // grace, which some tests assert it does.
        resolve,
        ssr,
        test: {
          name: 'runsc',
          include: ['test/sandbox-container.test.ts', 'test/sandbox-tools.test.ts', 'test/engine.test.ts', 'test/hostile/**/*.test.ts'],
          // The channel fuzz starts no container: the runtime changes nothing there.
          exclude: [...configDefaults.exclude, 'test/hostile/channel-fuzz.test.ts'],
          env: { RLM_TEST_RUNTIME: 'runsc', RLM_SANDBOX_RUNTIME: 'runsc' },
          globalSetup: ['test/support/runsc-global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        // Against a rootless Docker daemon (DOCKER_HOST), as the daemon's user: `pnpm test:rootless`
        // sets that up. Not part of `pnpm test`.
        resolve,
        ssr,
        test: {
          name: 'rootless',
          include: ['test/rootless/**/*.test.ts'],
          globalSetup: ['test/rootless/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
