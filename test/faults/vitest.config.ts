// The fault and abuse suite (`npm run test:faults`, run by .ci/run after `npm test`): real stacks (embedded
// backend, orchestrator, `wrangler dev` edge) whose processes are killed, restarted and flooded. One file at
// a time: each starts its own stack and the suite is sized for a 2-core CI machine (about 6 minutes).
// FAULT_SOAK_SECONDS sets how long the stream soak runs (default 60).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    name: "faults",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/faults/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 200_000,
    globalSetup: ["test/setup/dev-models.ts"],
  },
});
