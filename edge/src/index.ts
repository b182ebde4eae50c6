// The edge Worker: the root Hono app (global middleware, public routes, /openapi.json, and the /v1 API and
// /admin sub-apps, each carrying its own middleware), the usage queue's consumers (and its dead letters'), and the Durable Object
// classes (Account, Job).
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv, Env } from "./env";
import { createRouter } from "./validation";
import { notFoundHandler, onError } from "./error-handler";
import { requestIdMiddleware } from "./middleware/request-id";
import { corsPolicy } from "./middleware/cors";
import { API_BASE, v1 } from "./routes/v1";
import { admin } from "./routes/admin";
import { health } from "./routes/health";
import { playground } from "./routes/playground";
import { consumeQueue } from "./queue";

export { AccountDO } from "./durable/account";
export { JobDO } from "./durable/job";

export const app = createRouter();

app.onError(onError);
app.notFound(notFoundHandler);

// overwrite: false keeps a policy a router sets for itself (signed file downloads are cross-origin).
app.use("*", requestIdMiddleware, corsPolicy, secureHeaders({ crossOriginResourcePolicy: "same-origin", overwrite: false }));

// Public, unauthenticated.
app.route("/", health);
app.route("/", playground);
app.doc31("/openapi.json", (c) => ({
  openapi: "3.1.0",
  info: {
    title: "Lumina-DiMOO API",
    version: "1.0.0",
    description: "OpenAI-compatible image generation, editing and understanding with Lumina-DiMOO. Billing unit: megapixel-step.",
  },
  servers: [{ url: new URL(c.req.url).origin }],
}));
app.openAPIRegistry.registerComponent("securitySchemes", "ApiKey", { type: "http", scheme: "bearer", description: "dmo_live_... or dmo_test_... API key" });
app.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", { type: "http", scheme: "bearer", description: "ADMIN_TOKEN secret" });

// Sub-apps with their own middleware (and OpenAPI paths, merged under their mount point).
app.route(API_BASE, v1);
app.route("/admin", admin);

export default {
  fetch: app.fetch,
  queue: (batch: MessageBatch<unknown>, env: Env) => consumeQueue(batch, env),
} satisfies ExportedHandler<Env>;

export type { AppEnv };
