// Setup file (inside workerd, per test file): applies the D1 migrations from edge/migrations, read by the
// vitest config and passed in as the TEST_MIGRATIONS binding.
import { applyD1Migrations, type D1Migration } from "cloudflare:test";
import { env } from "cloudflare:workers";

await applyD1Migrations((env as unknown as { DB: D1Database }).DB, (env as unknown as { TEST_MIGRATIONS: D1Migration[] }).TEST_MIGRATIONS);
