// Authentication: missing, malformed (format, checksum, header), unknown and revoked keys; the admin API's
// own token. Every error is OpenAI-shaped with x-request-id.
import { describe, expect, it } from "vitest";
import { generateKey } from "../../edge/src/keys";
import { admin, bearer, call, callWith, createKey, testEnv } from "./support/helpers";

const expectError = async (res: Response, status: number, code: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/json");
  expect(res.headers.get("x-request-id")).toBeTruthy();
  const body = (await res.json()) as { error: { message: string; type: string; param: unknown; code: string } };
  expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
  expect(body.error.code).toBe(code);
  return body.error;
};

describe("API key authentication", () => {
  it("401 missing_api_key without Authorization", async () => {
    const e = await expectError(await call("/v1/models"), 401, "missing_api_key");
    expect(e.type).toBe("authentication_error");
  });

  it("401 invalid_api_key for a malformed header, wrong prefix and bad checksum", async () => {
    await expectError(await call("/v1/models", { headers: { authorization: "Basic abc" } }), 401, "invalid_api_key");
    await expectError(await call("/v1/models", { headers: bearer("sk-proj-abcdef") }), 401, "invalid_api_key");
    const k = generateKey();
    const tampered = k.slice(0, 20) + (k[20] === "x" ? "y" : "x") + k.slice(21);
    const e = await expectError(await call("/v1/models", { headers: bearer(tampered) }), 401, "invalid_api_key");
    expect(e.message).toContain("checksum");
    expect(e.message).not.toContain(tampered);
  });

  it("401 for a well-formed key that was never issued", async () => {
    const e = await expectError(await call("/v1/models", { headers: bearer(generateKey()) }), 401, "invalid_api_key");
    expect(e.message).toMatch(/^Incorrect API key provided: dmo_live_\w{4}\*\*\*\.$/);
  });

  it("accepts an issued key and stops accepting it once revoked (this isolate: at once)", async () => {
    const k = await createKey();
    const ok = await call("/v1/models", { headers: bearer(k.key) });
    expect(ok.status).toBe(200);
    const rev = await admin(`/admin/keys/${k.id}/revoke`, { method: "POST" });
    expect(rev.status).toBe(200);
    expect(((await rev.json()) as { revoked_at: number | null }).revoked_at).toBeTypeOf("number");
    await expectError(await call("/v1/models", { headers: bearer(k.key) }), 401, "invalid_api_key");
  });

  it("a revoked key stops on other isolates within KEY_CACHE_SECONDS (cache time 0 here)", async () => {
    const k = await createKey();
    expect((await callWith({ KEY_CACHE_SECONDS: "0" }, "/v1/models", { headers: bearer(k.key) })).status).toBe(200);
    await testEnv.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(Date.now(), k.id).run(); // as if revoked elsewhere
    expect((await callWith({ KEY_CACHE_SECONDS: "0" }, "/v1/models", { headers: bearer(k.key) })).status).toBe(401);
  });

  it("stores only the SHA-256 digest and a display prefix", async () => {
    const k = await createKey();
    const row = await testEnv.DB.prepare("SELECT * FROM api_keys WHERE id = ?").bind(k.id).first<Record<string, unknown>>();
    expect(JSON.stringify(row)).not.toContain(k.key);
    const digest = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(k.key)))].map((b) => b.toString(16).padStart(2, "0")).join("");
    expect(row!.digest).toBe(digest);
    expect(row!.start).toBe(k.key.slice(0, 13));
  });
});

describe("admin API", () => {
  it("rejects a missing or wrong admin token, and is disabled without ADMIN_TOKEN", async () => {
    await expectError(await call("/admin/keys"), 401, "invalid_admin_token");
    await expectError(await call("/admin/keys", { headers: bearer("nope") }), 401, "invalid_admin_token");
    await expectError(await callWith({ ADMIN_TOKEN: undefined }, "/admin/keys", { headers: bearer("test-admin-token") }), 503, "admin_disabled");
  });

  it("creates (key shown once), lists without secrets, re-plans and revokes keys", async () => {
    const created = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ plan: "pro", name: "ci", mode: "test" }) });
    expect(created.status).toBe(201);
    const k = (await created.json()) as { id: string; key: string; account_id: string; plan: string; mode: string; start: string };
    expect(k.key).toMatch(/^dmo_test_/);
    expect(k).toMatchObject({ plan: "pro", mode: "test", start: k.key.slice(0, 13) });
    const list = await (await admin(`/admin/keys?account_id=${k.account_id}`)).text();
    expect(list).toContain(k.id);
    expect(list).not.toContain(k.key);
    const patched = await admin(`/admin/keys/${k.id}`, { method: "PATCH", body: JSON.stringify({ plan: "free" }) });
    expect(((await patched.json()) as { plan: string }).plan).toBe("free");
    const bad = await admin(`/admin/keys/${k.id}`, { method: "PATCH", body: JSON.stringify({ plan: "nope" }) });
    expect(((await expectError(bad, 400, "invalid_value")).param)).toBe("plan");
    expect((await admin(`/admin/keys/${k.id}`, { method: "DELETE" })).status).toBe(200);
    await expectError(await admin("/admin/keys/key_missing/revoke", { method: "POST" }), 404, "key_not_found");
  });

  it("registers a given key once (local development key), rejecting malformed ones", async () => {
    const key = generateKey();
    const r1 = await admin("/admin/keys", { method: "POST", body: JSON.stringify({ key, plan: "dev" }) });
    expect(r1.status).toBe(201);
    expect(((await r1.json()) as { key: string }).key).toBe(key);
    expect((await call("/v1/models", { headers: bearer(key) })).status).toBe(200);
    await expectError(await admin("/admin/keys", { method: "POST", body: JSON.stringify({ key, plan: "dev" }) }), 409, "key_exists");
    const e = await expectError(await admin("/admin/keys", { method: "POST", body: JSON.stringify({ key: "dmo_live_short", plan: "dev" }) }), 400, "invalid_value");
    expect(e.param).toBe("key");
  });

  it("validates plan bodies and names the field", async () => {
    const res = await admin("/admin/plans/tiny", { method: "PUT", body: JSON.stringify({ name: "t", rpm: 0, burst: 1, concurrency: 1, monthly_units: 1, max_pixels: 4096, max_steps: 8 }) });
    const e = await expectError(res, 400, "invalid_value");
    expect(e.param).toBe("rpm");
    const plans = (await (await admin("/admin/plans")).json()) as { data: { id: string }[] };
    expect(plans.data.map((p) => p.id)).toEqual(expect.arrayContaining(["free", "pro", "dev"]));
  });
});

describe("failed-authentication throttle", () => {
  const address = () => `203.0.113.${1 + Math.floor(Math.random() * 254)}`;

  /** Wrong credentials from `ip` until a 429 comes back; the attempt number of that 429. */
  async function guessUntilThrottled(path: string, ip: string, credential: () => string): Promise<{ attempt: number; res: Response }> {
    for (let attempt = 1; attempt <= 80; attempt++) {
      const res = await call(path, { headers: { authorization: `Bearer ${credential()}`, "cf-connecting-ip": ip } });
      if (res.status === 429) return { attempt, res };
      expect(res.status).toBe(401);
    }
    throw new Error("80 wrong guesses met no throttle");
  }

  it("throttles wrong API keys per client address, then refuses that address without looking at its key", async () => {
    const k = await createKey();
    const ip = address();
    const { attempt, res } = await guessUntilThrottled("/v1/models", ip, () => generateKey());
    expect(attempt).toBeGreaterThan(1);
    const e = await expectError(res, 429, "too_many_failed_auth");
    expect(e.type).toBe("rate_limit_error");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    // the right key from the throttled address is refused too: a hit cannot be told from a miss
    expect((await call("/v1/models", { headers: { ...bearer(k.key), "cf-connecting-ip": ip } })).status).toBe(429);
    // other addresses are not affected
    expect((await call("/v1/models", { headers: { ...bearer(k.key), "cf-connecting-ip": "198.51.100.77" } })).status).toBe(200);
  });

  it("throttles wrong admin tokens, and counts IPv6 clients per /64", async () => {
    const { res } = await guessUntilThrottled("/admin/keys", "2001:db8:5:7::1", () => `guess-${Math.random()}`);
    await expectError(res, 429, "too_many_failed_auth");
    // a neighbour in the same /64 is the same client
    const neighbour = await call("/admin/keys", { headers: { ...bearer("test-admin-token"), "cf-connecting-ip": "2001:db8:5:7:ffff::2" } });
    expect(neighbour.status).toBe(429);
    const elsewhere = await call("/admin/keys", { headers: { ...bearer("test-admin-token"), "cf-connecting-ip": "2001:db8:5:8::1" } });
    expect(elsewhere.status).toBe(200);
  });
});

