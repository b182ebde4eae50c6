// The edge Worker: Hono app (global middleware, routes, OpenAI-shaped errors, /openapi.json), the usage
// queue consumer, and the Durable Object classes (Account, Job).
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv, Env } from "./env";
import { createRouter } from "./validation";
import { notFoundHandler, onError } from "./error-handler";
import { LIMITS } from "./config";
import { requestIdMiddleware } from "./middleware/request-id";
import { limitBody } from "./middleware/body-limit";
import { requireApiKey } from "./middleware/auth";
import { rateLimit } from "./middleware/rate-limit";
import { idempotency } from "./middleware/idempotency";
import { requireAdmin } from "./middleware/admin-auth";
import { images } from "./routes/images";
import { chat } from "./routes/chat";
import { jobs } from "./routes/jobs";
import { usage } from "./routes/usage";
import { models } from "./routes/models";
import { admin } from "./routes/admin";
import { files } from "./routes/files";
import { health } from "./routes/health";
import { playground } from "./routes/playground";
import { FILES_PREFIX } from "./signed-urls";
import { consumeUsage } from "./queue";

export { AccountDO } from "./durable/account";
export { JobDO } from "./durable/job";

const EXPOSED = [
  "x-request-id",
  "x-dimoo-job-id",
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "ratelimit",
  "ratelimit-policy",
  "retry-after",
  "retry-after-ms",
  "idempotent-replayed",
  "location",
];

export const app = createRouter();

app.onError(onError);
app.notFound(notFoundHandler);

app.use("*", requestIdMiddleware);
app.use("*", async (c, next) => {
  const origins = (c.env.CORS_ORIGINS ?? "*").split(",").map((s) => s.trim());
  return cors({
    origin: origins.includes("*") ? "*" : origins,
    allowHeaders: ["authorization", "content-type", "idempotency-key", "last-event-id", "x-request-id", "openai-beta", "x-stainless-*"],
    allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    exposeHeaders: EXPOSED,
    maxAge: 600,
  })(c, next);
});
const apiHeaders = secureHeaders({ crossOriginResourcePolicy: "same-origin" });
const fileHeaders = secureHeaders({ crossOriginResourcePolicy: "cross-origin" });
app.use("*", (c, next) => (new URL(c.req.url).pathname.startsWith(FILES_PREFIX) ? fileHeaders(c, next) : apiHeaders(c, next)));

// Body limits before anything parses a body: image-carrying routes get the larger one.
const IMAGE_BODIES = new Set(["/v1/images/edits", "/v1/chat/completions", "/v1/jobs"]);
const imageLimit = limitBody(LIMITS.imageBodyBytes);
const jsonLimit = limitBody(LIMITS.jsonBodyBytes);
app.use("*", (c, next) => (IMAGE_BODIES.has(new URL(c.req.url).pathname) ? imageLimit(c, next) : jsonLimit(c, next)));

// Public, unauthenticated.
app.route("/", health);
app.route("/", playground);
app.route("/", files);
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

// Authenticated API: key -> rate -> idempotency (POST) -> route.
app.use("/v1/*", async (c, next) => (new URL(c.req.url).pathname.startsWith(FILES_PREFIX) ? next() : requireApiKey(c, next)));
app.use("/v1/*", async (c, next) => (new URL(c.req.url).pathname.startsWith(FILES_PREFIX) ? next() : rateLimit(c, next)));
for (const path of ["/v1/images/generations", "/v1/images/edits", "/v1/chat/completions", "/v1/jobs"]) app.post(path, idempotency);
app.route("/", images);
app.route("/", chat);
app.route("/", jobs);
app.route("/", usage);
app.route("/", models);

app.use("/admin/*", requireAdmin);
app.route("/", admin);

export default {
  fetch: app.fetch,
  queue: (batch: MessageBatch<unknown>, env: Env) => consumeUsage(batch, env),
} satisfies ExportedHandler<Env>;

export type { AppEnv };
