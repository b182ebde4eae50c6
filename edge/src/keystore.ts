// API keys and plans in D1. Verification hashes the presented key and looks the digest up (no secret
// comparison at all); positive and negative answers are cached in isolate memory for KEY_CACHE_SECONDS
// (default 5 s), which bounds how long a revoked key keeps working on other isolates. Revocation in this
// isolate evicts the entry at once.
import type { Env } from "./env";
import { checkKeyFormat, generateKey, keyDigest, keyStart, type KeyMode } from "./keys";
import { newId } from "./lib/ids";
import { TTL } from "./config";
import { ApiError, invalid, notFound } from "./errors";
import type { Plan } from "./plan";

export interface KeyRecord {
  id: string;
  account_id: string;
  mode: KeyMode;
  start: string;
  name: string | null;
  revoked_at: number | null;
  created_at: number;
  plan: Plan;
}

const cache = new Map<string, { value: KeyRecord | null; expires: number }>();

const cacheSeconds = (env: Env) => {
  const v = Number(env.KEY_CACHE_SECONDS);
  return Number.isFinite(v) && v >= 0 ? v : TTL.keyCacheSeconds;
};

const KEY_SELECT = `SELECT k.id, k.account_id, k.mode, k.start, k.name, k.revoked_at, k.created_at,
  p.id AS p_id, p.name AS p_name, p.rpm, p.burst, p.concurrency, p.monthly_units, p.max_pixels, p.max_steps, p.max_answer_tokens
  FROM api_keys k JOIN plans p ON p.id = k.plan_id`;

type KeyRow = Omit<KeyRecord, "plan"> & Omit<Plan, "id" | "name"> & { p_id: string; p_name: string };

const toRecord = (r: KeyRow): KeyRecord => ({
  id: r.id,
  account_id: r.account_id,
  mode: r.mode,
  start: r.start,
  name: r.name,
  revoked_at: r.revoked_at,
  created_at: r.created_at,
  plan: { id: r.p_id, name: r.p_name, rpm: r.rpm, burst: r.burst, concurrency: r.concurrency, monthly_units: r.monthly_units, max_pixels: r.max_pixels, max_steps: r.max_steps, max_answer_tokens: r.max_answer_tokens },
});

/** Key record by digest (revoked keys included; the caller decides), cached briefly. */
export async function findKeyByDigest(env: Env, digest: string, now = Date.now()): Promise<KeyRecord | null> {
  const hit = cache.get(digest);
  if (hit && hit.expires > now) return hit.value;
  const row = await env.DB.prepare(`${KEY_SELECT} WHERE k.digest = ?`).bind(digest).first<KeyRow>();
  const value = row ? toRecord(row) : null;
  const ttl = cacheSeconds(env) * 1000;
  if (ttl > 0) {
    if (cache.size > 10_000) cache.clear();
    cache.set(digest, { value, expires: now + ttl });
  }
  return value;
}

export function forgetCachedKeys(): void {
  cache.clear();
}

export interface CreatedKey {
  record: KeyRecord;
  key: string;
}

/** Creates a key (or registers a given one, e.g. DIMOO_API_KEY for local development). */
export async function createKey(env: Env, opts: { accountId?: string; name?: string; planId?: string; mode?: KeyMode; key?: string }): Promise<CreatedKey> {
  const key = opts.key ?? generateKey(opts.mode ?? "live");
  const check = checkKeyFormat(key);
  if (!check.ok) throw invalid(`key is not a valid ${check.reason === "checksum" ? "key (checksum mismatch)" : "dmo_live_/dmo_test_ key"}`, "key");
  const planId = opts.planId ?? "free";
  const plan = await getPlan(env, planId);
  if (!plan) throw invalid(`Unknown plan '${planId}'`, "plan");
  const digest = await keyDigest(key);
  const id = newId("key");
  const accountId = opts.accountId ?? newId("acct");
  const now = Date.now();
  const res = await env.DB.prepare(
    "INSERT INTO api_keys (id, digest, start, mode, account_id, name, plan_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(digest) DO NOTHING",
  )
    .bind(id, digest, keyStart(key), check.mode, accountId, opts.name ?? null, planId, now)
    .run();
  if (!res.meta.changes) throw new ApiError(409, "invalid_request_error", "This key is already registered.", "key_exists", "key");
  cache.delete(digest);
  return {
    key,
    record: { id, account_id: accountId, mode: check.mode, start: keyStart(key), name: opts.name ?? null, revoked_at: null, created_at: now, plan },
  };
}

export async function listKeys(env: Env, accountId?: string): Promise<KeyRecord[]> {
  const stmt = accountId
    ? env.DB.prepare(`${KEY_SELECT} WHERE k.account_id = ? ORDER BY k.created_at`).bind(accountId)
    : env.DB.prepare(`${KEY_SELECT} ORDER BY k.created_at`);
  return (await stmt.all<KeyRow>()).results.map(toRecord);
}

export async function getKey(env: Env, id: string): Promise<KeyRecord> {
  const row = await env.DB.prepare(`${KEY_SELECT} WHERE k.id = ?`).bind(id).first<KeyRow>();
  if (!row) throw notFound(`No key with id '${id}'`, "key_not_found");
  return toRecord(row);
}

export async function revokeKey(env: Env, id: string): Promise<KeyRecord> {
  await env.DB.prepare("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?").bind(Date.now(), id).run();
  const rec = await getKey(env, id);
  cache.clear(); // digests are not known here; this isolate forgets every cached key at once
  return rec;
}

export async function setKeyPlan(env: Env, id: string, planId: string): Promise<KeyRecord> {
  if (!(await getPlan(env, planId))) throw invalid(`Unknown plan '${planId}'`, "plan");
  const res = await env.DB.prepare("UPDATE api_keys SET plan_id = ? WHERE id = ?").bind(planId, id).run();
  if (!res.meta.changes) throw notFound(`No key with id '${id}'`, "key_not_found");
  cache.clear();
  return getKey(env, id);
}

const PLAN_SELECT = "SELECT id, name, rpm, burst, concurrency, monthly_units, max_pixels, max_steps, max_answer_tokens FROM plans";

export async function getPlan(env: Env, id: string): Promise<Plan | null> {
  return env.DB.prepare(`${PLAN_SELECT} WHERE id = ?`).bind(id).first<Plan>();
}

export async function listPlans(env: Env): Promise<Plan[]> {
  return (await env.DB.prepare(`${PLAN_SELECT} ORDER BY id`).all<Plan>()).results;
}

export async function upsertPlan(env: Env, plan: Plan): Promise<Plan> {
  const now = Date.now();
  await env.DB.prepare(
    `INSERT INTO plans (id, name, rpm, burst, concurrency, monthly_units, max_pixels, max_steps, max_answer_tokens, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(id) DO UPDATE SET name = excluded.name, rpm = excluded.rpm, burst = excluded.burst, concurrency = excluded.concurrency,
       monthly_units = excluded.monthly_units, max_pixels = excluded.max_pixels, max_steps = excluded.max_steps,
       max_answer_tokens = excluded.max_answer_tokens, updated_at = excluded.updated_at`,
  )
    .bind(plan.id, plan.name, plan.rpm, plan.burst, plan.concurrency, plan.monthly_units, plan.max_pixels, plan.max_steps, plan.max_answer_tokens, now, now)
    .run();
  cache.clear();
  return plan;
}
