// The /v1 API as one sub-app with its own middleware: body limits first, then the signed file downloads
// (public: the URL's signature is the authorisation), then every other route behind API key -> rate limit,
// and Idempotency-Key handling on the POST routes that do metered work. Mounted at API_BASE by index.ts;
// route paths below are relative to it. Order matters: Hono runs handlers and middleware as registered.
import { createRouter } from "../validation";
import { limitBodiesByPath } from "../middleware/body-limit";
import { requireApiKey } from "../middleware/auth";
import { rateLimit } from "../middleware/rate-limit";
import { idempotency } from "../middleware/idempotency";
import { files } from "./files";
import { images } from "./images";
import { chat } from "./chat";
import { jobs } from "./jobs";
import { usage } from "./usage";
import { models } from "./models";

export const API_BASE = "/v1";

/** Bodies that may carry images (edits, chat with data URLs, jobs) get the larger limit. */
const IMAGE_BODIES = ["/images/edits", "/chat/completions", "/jobs"];
const METERED_POSTS = ["/images/generations", "/images/edits", "/chat/completions", "/jobs"];

export const v1 = createRouter();

v1.use("*", limitBodiesByPath(IMAGE_BODIES.map((p) => `${API_BASE}${p}`)));
v1.route("/files", files);
v1.use("*", requireApiKey, rateLimit);
for (const path of METERED_POSTS) v1.post(path, idempotency);
v1.route("/", images);
v1.route("/", chat);
v1.route("/", jobs);
v1.route("/", usage);
v1.route("/", models);
