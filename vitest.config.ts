import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "functions/**/*.test.ts", "infra/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // PGlite start-up is CPU-bound; two cores serve two files at a time best.
    maxWorkers: 2,
    setupFiles: ["packages/core/src/test-setup.ts"],
    globalSetup: ["packages/stage/src/test-global-setup.ts"],
  },
});
