// Idempotency-Key: a replay of the same body returns the stored response without new work; another body
// with the same key is a 422; a duplicate while the first runs is a 409; a failed attempt may be retried.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { accountStub, bearer, call, callWith, createKey, isStandIn, json, parseSse, png, standInCalls, uniq, waitFor } from "./support/helpers";

const standIn = isStandIn();

describe("Idempotency-Key", () => {
  it("replays the stored result for the same body (no second generation, no second charge)", async () => {
    const k = await createKey();
    const key = uniq("idem");
    const rid = uniq("idem-req");
    const body = { prompt: "once only", size: "64x64", steps: 2, seed: 5 };
    const first = await call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key, "x-request-id": rid })));
    expect(first.status).toBe(200);
    const jobId = first.headers.get("x-dimoo-job-id");
    const firstBody = await first.text();
    // same JSON, keys in another order: still the same request
    const again = await call("/v1/images/generations", json({ seed: 5, steps: 2, size: "64x64", prompt: "once only" }, bearer(k.key, { "idempotency-key": key, "x-request-id": `${rid}-2` })));
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("x-dimoo-job-id")).toBe(jobId);
    expect(again.headers.get("x-request-id")).toBe(`${rid}-2`);
    expect(again.headers.get("x-ratelimit-remaining-requests")).toBeTruthy();
    expect(await again.text()).toBe(firstBody);
    if (standIn) expect(await standInCalls(rid)).toHaveLength(1);
    const ledger = await accountStub(k.account_id).ledger();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ job_id: jobId, status: "committed", attempts: 1 });
  });

  it("answers 422 when the key is reused with a different body", async () => {
    const k = await createKey();
    const key = uniq("idem");
    expect((await call("/v1/images/generations", json({ prompt: "a", size: "64x64", steps: 2 }, bearer(k.key, { "idempotency-key": key })))).status).toBe(200);
    const res = await call("/v1/images/generations", json({ prompt: "b", size: "64x64", steps: 2 }, bearer(k.key, { "idempotency-key": key })));
    expect(res.status).toBe(422);
    expect(((await res.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: "idempotency_key_reused", param: "Idempotency-Key" });
  });

  it("keys are per account: another account's identical key is independent", async () => {
    const a = await createKey();
    const b = await createKey();
    const key = uniq("idem");
    const ra = await call("/v1/images/generations", json({ prompt: "a", size: "64x64", steps: 2 }, bearer(a.key, { "idempotency-key": key })));
    const rb = await call("/v1/images/generations", json({ prompt: "different", size: "64x64", steps: 2 }, bearer(b.key, { "idempotency-key": key })));
    expect([ra.status, rb.status]).toEqual([200, 200]);
    expect(rb.headers.get("idempotent-replayed")).toBeNull();
  });

  it.skipIf(!standIn)("answers 409 to a duplicate while the first request is still running", async () => {
    const k = await createKey();
    const key = uniq("idem");
    const body = { prompt: "slow [standin:delay=40]", size: "64x64", steps: 20 };
    const rid = uniq("slow");
    const first = call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key, "x-request-id": rid })));
    await waitFor(async () => (await standInCalls(rid)).length > 0);
    const dup = await call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    expect(dup.status).toBe(409);
    expect(((await dup.json()) as { error: { code: string } }).error.code).toBe("idempotency_key_in_use");
    expect((await first).status).toBe(200);
    const replay = await call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
  });

  it("lets a failed attempt (nothing charged) run again under the same key", async () => {
    const k = await createKey();
    const key = uniq("idem");
    const body = { prompt: "retry me", size: "64x64", steps: 2 };
    const failed = await callWith({ ORCHESTRATOR_URLS: inject("deadUrl") }, "/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    expect(failed.status).toBe(503);
    const ok = await call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    expect(ok.status).toBe(200);
    expect(ok.headers.get("idempotent-replayed")).toBeNull();
    const [row] = await accountStub(k.account_id).ledger();
    expect(row).toMatchObject({ status: "committed", attempts: 2 });
  });

  it("matches multipart replays by content, not by boundary, and replays streams as SSE", async () => {
    const k = await createKey();
    const key = uniq("idem");
    const image = await png(32, 32);
    const form = () => {
      const fd = new FormData();
      fd.append("prompt", "edit once");
      fd.append("steps", "2");
      fd.append("image", new File([image], "a.png", { type: "image/png" }));
      return fd;
    };
    const a = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": key }), body: form() });
    const b = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": key }), body: form() });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.headers.get("idempotent-replayed")).toBe("true");

    const skey = uniq("idem-stream");
    const sbody = { prompt: "streamed once", size: "64x64", steps: 3, stream: true };
    const s1 = parseSse(await (await call("/v1/images/generations", json(sbody, bearer(k.key, { "idempotency-key": skey })))).text());
    const r2 = await call("/v1/images/generations", json(sbody, bearer(k.key, { "idempotency-key": skey })));
    expect(r2.headers.get("content-type")).toContain("text/event-stream");
    const s2 = parseSse(await r2.text());
    expect(s2.map((e) => e.event)).toEqual(["image_generation.completed"]);
    expect(s2[0].data).toBe(s1.at(-1)!.data);
  });

  it("hashes multipart images in the order sent: a style edit with its images swapped is another request (422)", async () => {
    const k = await createKey();
    const key = uniq("idem-order");
    const content = await png(32, 32);
    const style = await png(48, 48);
    const form = (images: Uint8Array[], fieldsFirst = true) => {
      const fd = new FormData();
      const fields = () => {
        fd.append("prompt", "in this style");
        fd.append("task", "style");
        fd.append("steps", "2");
      };
      if (fieldsFirst) fields();
      for (const im of images) fd.append("image[]", new File([im], "i.png", { type: "image/png" }));
      if (!fieldsFirst) fields();
      return fd;
    };
    const a = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": key }), body: form([content, style]) });
    expect(a.status).toBe(200);
    const swapped = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": key }), body: form([style, content]) });
    expect(swapped.status).toBe(422);
    expect(((await swapped.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: "idempotency_key_reused", param: "Idempotency-Key" });
    // the same request with its text fields in another order is still the same request
    const reordered = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": key }), body: form([content, style], false) });
    expect(reordered.status).toBe(200);
    expect(reordered.headers.get("idempotent-replayed")).toBe("true");
  });

  it("answers a malformed multipart body that carries an Idempotency-Key with a 400, not a 500", async () => {
    const k = await createKey();
    const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "idempotency-key": uniq("idem-bad"), "content-type": "multipart/form-data; boundary=nope" }), body: "this is not multipart" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; type: string } }).error).toMatchObject({ code: "invalid_multipart", type: "invalid_request_error" });
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });

  it("rejects an over-long key", async () => {
    const k = await createKey();
    const res = await call("/v1/images/generations", json({ prompt: "x" }, bearer(k.key, { "idempotency-key": "k".repeat(256) })));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_idempotency_key");
  });
});
