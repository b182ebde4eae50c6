// Edge tests in workerd (@cloudflare/vitest-pool-workers 0.15, Vitest 4): the Worker from wrangler.toml
// with D1 migrations applied, secrets set for tests, and orchestrator URLs from the Node-side globalSetup.
// Run alone: npx vitest run --config edge/vitest.config.ts
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export default defineConfig(async () => {
  const migrations = await readD1Migrations(path.join(root, "edge/migrations"));
  return {
    root,
    plugins: [
      cloudflareTest(({ inject }) => ({
        main: "edge/src/index.ts",
        wrangler: { configPath: "wrangler.toml" },
        miniflare: {
          bindings: {
            TEST_MIGRATIONS: migrations,
            ORCHESTRATOR_URLS: inject("orchestratorUrl"),
            ORCHESTRATOR_TOKEN: inject("orchestratorToken"),
            ADMIN_TOKEN: "test-admin-token",
            SIGNING_SECRET: "test-signing-secret",
            ALLOW_PRIVATE_URLS: "true",
            KEY_CACHE_SECONDS: "5",
            // test/edge/fuzz.test.ts: FUZZ_RUNS scales its runs, FUZZ_SEED replaces its fixed seed
            FUZZ_RUNS: process.env.FUZZ_RUNS ?? "1",
            FUZZ_SEED: process.env.FUZZ_SEED ?? "20261130",
          },
        },
      })),
    ],
    test: {
      name: "edge",
      root, // also when run as a project of the root vitest.config.ts (whose project root would be edge/)
      include: ["test/edge/**/*.test.ts"],
      globalSetup: ["test/edge/support/global-setup.ts"],
      setupFiles: ["test/edge/support/apply-migrations.ts"],
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  };
});
