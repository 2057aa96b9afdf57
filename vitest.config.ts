import { defineConfig } from "vitest/config";

// One config for the whole repository. Workspace packages resolve to their TypeScript sources through the
// "capa-source" export condition, so tests never run stale builds. Integration tests start real nats-servers
// and processes: they get longer timeouts and run in forks, a few at a time on a 2-core machine.
export default defineConfig({
  resolve: { conditions: ["capa-source"] },
  ssr: { resolve: { conditions: ["capa-source"] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          // Unit tests first; integration tests (real servers and processes) after, with their own worker limit.
          sequence: { groupOrder: 0 },
          include: ["packages/*/src/**/*.test.ts", "agents/src/**/*.test.ts", "scheduler/src/**/*.test.ts"],
          exclude: ["**/dist/**", "**/node_modules/**"],
          // Some unit tests run real work (replays, supervisor processes): at a load average of 15+ on 2 cores
          // they took 5–7 s, past vitest's 5 s default, and failed the gate for every branch.
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          sequence: { groupOrder: 1 },
          include: ["test/src/**/*.test.ts"],
          exclude: ["**/dist/**", "**/node_modules/**"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          pool: "forks",
          maxWorkers: 2,
        },
      },
    ],
  },
});
