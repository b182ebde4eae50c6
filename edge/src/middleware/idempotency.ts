// Idempotency-Key on POST. The job id is derived from (account, key), so the account ledger row is the
// idempotency record. Before any work: the same body after completion replays the stored response
// (`idempotent-replayed: true`), the same key with another body is a 422, a request still running is a 409,
// and a request that failed (released, nothing charged) may run again. Bodies are compared by a canonical
// hash (sorted JSON keys; multipart fields by name, each name's values and file digests in the order sent),
// so a re-encoded identical request matches while the same images in another order (a style edit's content
// and reference) do not.
import { createMiddleware } from "hono/factory";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError, invalid } from "../errors";
import { sha256Hex } from "../lib/crypto";
import { idempotentJobId } from "../lib/ids";
import { LIMITS } from "../config";
import { accountStub } from "../durable/account";
import type { IdempotencyContext } from "../idempotency-context";
import { idempotencyError, replayResponse } from "../services/idempotent-replay";

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

export async function canonicalRequestHash(c: Context<AppEnv>): Promise<string> {
  const ct = c.req.header("content-type") ?? "";
  let canonical: string;
  if (ct.includes("multipart/form-data") || ct.includes("application/x-www-form-urlencoded")) {
    let form: FormData;
    try {
      form = await c.req.formData();
    } catch {
      throw invalid("Malformed multipart body", null, "invalid_multipart");
    }
    // Field names in a canonical order; the values of one name (image[] above all) in the order sent.
    const byName = new Map<string, string[]>();
    for (const [k, entry] of form.entries()) {
      const v = entry as unknown as string | File;
      const value = typeof v === "string" ? JSON.stringify(v) : `file:${v.type}:${await sha256Hex(new Uint8Array(await v.arrayBuffer()))}`;
      byName.set(k, [...(byName.get(k) ?? []), value]);
    }
    canonical = [...byName.keys()]
      .sort()
      .map((k) => byName.get(k)!.map((v) => `${k}=${v}`).join("&"))
      .join("&");
  } else {
    const text = await c.req.text();
    try {
      canonical = stable(JSON.parse(text));
    } catch {
      canonical = text;
    }
  }
  return sha256Hex(`${c.req.method} ${new URL(c.req.url).pathname}\n${canonical}`);
}

export const idempotency = createMiddleware<AppEnv>(async (c, next) => {
  const key = c.req.header("idempotency-key");
  if (key === undefined) {
    c.set("idempotency", undefined);
    return next();
  }
  if (key.length === 0 || key.length > LIMITS.idempotencyKeyChars || !/^[\x21-\x7e]+$/.test(key)) {
    throw new ApiError(400, "invalid_request_error", `Idempotency-Key must be 1-${LIMITS.idempotencyKeyChars} visible ASCII characters.`, "invalid_idempotency_key", "Idempotency-Key");
  }
  const p = c.get("principal");
  const ctx: IdempotencyContext = { key, jobId: await idempotentJobId(p.accountId, key), requestHash: await canonicalRequestHash(c) };
  const state = await accountStub(c.env, p.accountId).lookup(ctx.jobId, ctx.requestHash);
  if (state.state === "completed") return replayResponse(c, state.responseRef, state.responseStatus);
  if (state.state !== "new") throw idempotencyError(state);
  c.set("idempotency", ctx);
  await next();
});
