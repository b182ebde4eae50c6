// One `vitest run` covers every suite: Node tests (pure units, real processes, whole stack) and the edge
// tests that run inside workerd (edge/vitest.config.ts).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      "edge/vitest.config.ts",
      {
        test: {
          name: "node",
          include: ["test/unit/**/*.test.ts", "test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          globalSetup: ["test/setup/dev-models.ts"],
        },
      },
    ],
  },
});
