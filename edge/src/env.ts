// Typed bindings of the edge Worker (wrangler.toml) and the per-request variables set by middleware. The
// Durable Objects declare the bindings they use themselves (AccountBindings, JobBindings) and Env extends
// them, so the compiler checks the Worker provides what they need while nothing they import reaches back
// here: every import in this file is a type and none of those modules imports env.ts.
import type { AccountBindings, AccountDO } from "./durable/account";
import type { JobBindings, JobDO } from "./durable/job";
import type { Principal } from "./principal";
import type { IdempotencyContext } from "./idempotency-context";
import type { UsageEvent } from "./metering";

export interface Env extends AccountBindings, JobBindings {
  /** keys, plans and the usage-event table fed by the queue consumer */
  DB: D1Database;
  /** one object per account: rate (GCRA), concurrency slots, unit quota, usage ledger, idempotency */
  ACCOUNT: DurableObjectNamespace<AccountDO>;
  /** one object per async job: state, events, results, webhook delivery */
  JOB: DurableObjectNamespace<JobDO>;
  /** generated images, async-job inputs and stored idempotent responses */
  RESULTS: R2Bucket;
  /** usage events (CloudEvents, id = job id) for billing systems */
  USAGE_QUEUE: Queue<UsageEvent>;
  /** failed authentications per client address (Workers Rate Limiting; middleware/auth-throttle.ts) */
  AUTH_FAILURES?: RateLimit;

  /** comma-separated orchestrator base URLs (Connect protocol) */
  ORCHESTRATOR_URLS: string;
  /** public model id served at /v1/models */
  MODEL_ID?: string;
  /** how long a verified key stays cached in isolate memory (seconds, default 5) */
  KEY_CACHE_SECONDS?: string;
  /** "true" only for local development and tests: lets image_url and webhook_url point at private hosts */
  ALLOW_PRIVATE_URLS?: string;
  /** how long a reservation holds without a renewal (seconds, default 60; decimals allowed, for tests) */
  RESERVATION_LEASE_SECONDS?: string;
  /** CORS origins, comma separated, default "*" (bearer-token API, no cookies) */
  CORS_ORIGINS?: string;

  /** secrets (wrangler secret put / .dev.vars) */
  ADMIN_TOKEN?: string;
  ORCHESTRATOR_TOKEN?: string;
  SIGNING_SECRET?: string;
}

export interface Variables {
  requestId: string;
  principal: Principal;
  idempotency: IdempotencyContext | undefined;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
