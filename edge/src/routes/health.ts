// GET /livez (no key): liveness. GET /healthz (no key): how many orchestrators are ready (never their addresses).
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { OrchestratorPool } from "../backend/pool";

export const health = new Hono<AppEnv>();

/** Liveness only: the global middleware and nothing else (also the no-op baseline of edge/bench). */
health.get("/livez", (c) => c.text("ok"));

health.get("/healthz", async (c) => {
  const backends = await OrchestratorPool.fromEnv(c.env).summary();
  return c.json({ status: backends.ready > 0 ? "ok" : "degraded", backends }, backends.ready > 0 ? 200 : 503);
});
