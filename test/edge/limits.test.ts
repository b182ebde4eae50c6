// Rate (GCRA per account), concurrency slots and the monthly unit quota: 429s with the right code and
// headers (Retry-After, x-ratelimit-*, RateLimit, RateLimit-Policy); nothing charged for refused work.
import { describe, expect, it } from "vitest";
import { accountStub, bearer, call, createKey, createPlan, dataUrl, isStandIn, json, png, standInCalls, uniq, waitFor } from "./support/helpers";

describe("request rate", () => {
  it("lets a burst through, then answers 429 with Retry-After and both header families", async () => {
    await createPlan("test-rate", { rpm: 6, burst: 3 });
    const k = await createKey("test-rate");
    const responses = [];
    for (let i = 0; i < 5; i++) responses.push(await call("/v1/models", { headers: bearer(k.key) }));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 429, 429]);

    const first = responses[0].headers;
    expect(first.get("x-ratelimit-limit-requests")).toBe("6");
    expect(first.get("x-ratelimit-remaining-requests")).toBe("2");
    expect(first.get("x-ratelimit-reset-requests")).toMatch(/^\d+(ms|s)$/);
    expect(first.get("ratelimit-policy")).toBe('"rpm";q=6;w=60');
    expect(first.get("ratelimit")).toMatch(/^"rpm";r=2;t=\d+$/);

    const limited = responses[3];
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get("retry-after"))).toBeLessThanOrEqual(10);
    expect(Number(limited.headers.get("retry-after-ms"))).toBeGreaterThan(0);
    expect(limited.headers.get("x-ratelimit-remaining-requests")).toBe("0");
    expect(limited.headers.get("ratelimit")).toMatch(/^"rpm";r=0;t=\d+$/);
    expect(limited.headers.get("ratelimit-policy")).toBe('"rpm";q=6;w=60');
    expect(limited.headers.get("x-request-id")).toBeTruthy();
    const body = (await limited.json()) as { error: { type: string; code: string } };
    expect(body.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
  });

  it("counts per account, not per key", async () => {
    await createPlan("test-rate2", { rpm: 2, burst: 2 });
    const acct = uniq("shared");
    const a = await createKey("test-rate2", acct);
    const b = await createKey("test-rate2", acct);
    const other = await createKey("test-rate2");
    expect((await call("/v1/models", { headers: bearer(a.key) })).status).toBe(200);
    expect((await call("/v1/models", { headers: bearer(b.key) })).status).toBe(200);
    expect((await call("/v1/models", { headers: bearer(a.key) })).status).toBe(429);
    expect((await call("/v1/models", { headers: bearer(other.key) })).status).toBe(200);
  });
});

describe("concurrency slots", () => {
  it.skipIf(!isStandIn())("refuses a generation beyond the plan's slots with 429 concurrency_limit_exceeded, then frees the slot", async () => {
    await createPlan("test-conc", { concurrency: 1 });
    const k = await createKey("test-conc");
    const rid = uniq("slow");
    const slow = call("/v1/images/generations", json({ prompt: "slow [standin:delay=40]", size: "64x64", steps: 20 }, bearer(k.key, { "x-request-id": rid })));
    await waitFor(async () => (await standInCalls(rid)).length > 0); // the slot is taken before the backend call
    const refused = await call("/v1/images/generations", json({ prompt: "second", size: "64x64", steps: 2 }, bearer(k.key)));
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.headers.get("ratelimit-policy")).toContain('"concurrency";q=1;qu="concurrent-requests"');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("concurrency_limit_exceeded");
    const done = await slow;
    expect(done.status).toBe(200);
    await done.text(); // past the 1 s hold the status line comes first: the slot is freed when the body ends
    const after = await call("/v1/images/generations", json({ prompt: "third", size: "64x64", steps: 2 }, bearer(k.key)));
    expect(after.status).toBe(200);
    const ledger = await accountStub(k.account_id).ledger();
    expect(ledger.map((r) => r.status)).toEqual(["committed", "committed"]);
  });
});

describe("monthly quota", () => {
  it("refuses work whose estimate exceeds the remaining units: 429 insufficient_quota, x-should-retry: false", async () => {
    // 1 unit = 1 megapixel-step; 256x256 x 8 steps = 0.524 units
    await createPlan("test-quota", { monthly_units: 1 });
    const k = await createKey("test-quota");
    const ok = await call("/v1/images/generations", json({ prompt: "fits", size: "256x256", steps: 8 }, bearer(k.key)));
    expect(ok.status).toBe(200);
    const over = await call("/v1/images/generations", json({ prompt: "does not fit", size: "256x256", steps: 8 }, bearer(k.key)));
    expect(over.status).toBe(429);
    expect(over.headers.get("x-should-retry")).toBe("false");
    const e = ((await over.json()) as { error: { type: string; code: string; message: string } }).error;
    expect(e).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    expect(e.message).toContain("0.525 of 1 megapixel-steps");
    const usage = (await (await call("/v1/usage", { headers: bearer(k.key) })).json()) as { quota: { used_units: number; remaining_units: number } };
    expect(usage.quota.used_units).toBe(0.525);
    expect(usage.quota.remaining_units).toBe(0.475);
    const snap = await accountStub(k.account_id).snapshot();
    expect(snap).toMatchObject({ committedMilli: 525, reservedMilli: 0, activeSlots: 0 });
  });

  it("applies plan limits on resolution and steps before reserving anything", async () => {
    await createPlan("test-small", { max_pixels: 256 * 256, max_steps: 16 });
    const k = await createKey("test-small");
    const big = await call("/v1/images/generations", json({ prompt: "x", size: "512x512" }, bearer(k.key)));
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "size", code: "size_not_allowed" });
    const steps = await call("/v1/images/generations", json({ prompt: "x", size: "256x256", steps: 32 }, bearer(k.key)));
    expect(((await steps.json()) as { error: { param: string } }).error.param).toBe("steps");
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });

  it("checks every input image of an edit against the plan's pixel limit, not only the first", async () => {
    await createPlan("test-tiny-edits", { max_pixels: 64 * 64 });
    const k = await createKey("test-tiny-edits");
    const small = await png(32, 32);
    const big = await png(128, 128);
    const fd = new FormData();
    fd.append("prompt", "in this style");
    fd.append("task", "style");
    fd.append("image[]", new File([small], "a.png", { type: "image/png" }));
    fd.append("image[]", new File([big], "b.png", { type: "image/png" }));
    const multipart = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: fd });
    expect(multipart.status).toBe(400);
    expect(((await multipart.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "image[1]", code: "size_not_allowed" });
    const jsonEdit = await call("/v1/images/edits", json({ prompt: "x", task: "style", image: [dataUrl(small), dataUrl(big)] }, bearer(k.key)));
    expect(((await jsonEdit.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "image.1", code: "size_not_allowed" });
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });
});

describe("plan limits on chat", () => {
  it.skipIf(!isStandIn())("bounds chat steps and answer tokens by the plan, naming the field, before reserving anything", async () => {
    await createPlan("test-chat-small", { max_steps: 16, max_answer_tokens: 32 });
    const k = await createKey("test-chat-small");
    const image = dataUrl(await png(32, 32));
    const ask = (extra: Record<string, unknown>, headers: Record<string, string> = {}) =>
      call("/v1/chat/completions", json({ messages: [{ role: "user", content: [{ type: "text", text: "what?" }, { type: "image_url", image_url: { url: image } }] }], ...extra }, bearer(k.key, headers)));
    const cases: [Record<string, unknown>, string, string][] = [
      [{ steps: 512 }, "steps", "steps_not_allowed"],
      [{ max_tokens: 64 }, "max_tokens", "tokens_not_allowed"],
      [{ max_completion_tokens: 33 }, "max_completion_tokens", "tokens_not_allowed"],
    ];
    for (const [extra, param, code] of cases) {
      const res = await ask(extra);
      expect(res.status, param).toBe(400);
      expect(((await res.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param, code });
    }
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
    // the default answer fits the plan: its token budget, decoded in the plan's steps
    const rid = uniq("chat-plan");
    const ok = await ask({}, { "x-request-id": rid });
    expect(ok.status).toBe(200);
    expect((await standInCalls(rid))[0]).toMatchObject({ method: "Understand", steps: 16 });
  });
});

describe("text bounds before admission", () => {
  it("caps chat text per field, in total and in (lower-bound) tokens, and prompts too, naming the field, before reserving", async () => {
    const k = await createKey();
    const image = { type: "image_url", image_url: { url: dataUrl(await png(16, 16)) } };
    const chat = (messages: unknown[]) => call("/v1/chat/completions", json({ messages }, bearer(k.key)));
    const expect400 = async (res: Response, param: string, text: RegExp) => {
      expect(res.status, param).toBe(400);
      const e = ((await res.json()) as { error: { param: string; message: string; type: string } }).error;
      expect(e, param).toMatchObject({ param, type: "invalid_request_error" });
      expect(e.message, param).toMatch(text);
    };
    const long = "x".repeat(8_001);
    await expect400(await chat([{ role: "system", content: long }, { role: "user", content: [image] }]), "messages.0.content", /8001 characters; at most 8000 per field/);
    await expect400(await chat([{ role: "user", content: [{ type: "text", text: long }, image] }]), "messages.0.content.0.text", /8000/);
    const third = "y".repeat(6_000);
    await expect400(await chat([{ role: "assistant", content: third }, { role: "assistant", content: third }, { role: "user", content: [{ type: "text", text: third }, image] }]), "messages", /18000 characters of text; at most 16000/);
    await expect400(await chat([{ role: "user", content: [{ type: "text", text: "word ".repeat(600) }, image] }]), "messages", /at least 600 tokens long; the limit is 512/);
    await expect400(await chat(Array.from({ length: 65 }, () => ({ role: "user", content: [image] }))), "messages", /64/);
    const wordy = "word ".repeat(513);
    await expect400(await call("/v1/images/generations", json({ prompt: wordy, size: "64x64" }, bearer(k.key))), "prompt", /at least 513 tokens long/);
    const fd = new FormData();
    fd.append("prompt", wordy);
    fd.append("image", new File([await png(32, 32)], "a.png", { type: "image/png" }));
    await expect400(await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: fd }), "prompt", /at least 513 tokens long/);
    await expect400(await call("/v1/jobs", json({ prompt: wordy, size: "64x64" }, bearer(k.key))), "prompt", /tokens/);
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
    // within the bounds: 500 words, and punctuation-heavy text is not over-counted
    const ok = await call("/v1/images/generations", json({ prompt: `${"word ".repeat(500)}${"!?.,".repeat(200)}`, size: "64x64", steps: 1 }, bearer(k.key)));
    expect(ok.status).toBe(200);
  });
});
