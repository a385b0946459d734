import { defineConfig } from "vitest/config";

// Tests run against the built packages (npm test builds first) and start real daemons and
// child processes, so they are slow-ish and CPU-bound: two files at a time on a 2-core machine.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    fileParallelism: true,
  },
});
