// /v1/images/generations and /v1/images/edits: success shapes (b64_json, url, n fan-out with seed, seed+1,
// formats, SSE), what reaches the orchestrator (task, mask, size, steps, token), and error shapes.
import { describe, expect, it } from "vitest";
import { fromBase64 } from "../../edge/src/lib/encoding";
import { imageInfo } from "../../edge/src/lib/images";
import { bearer, call, createKey, dataUrl, isStandIn, json, parseSse, png, standInCalls, uniq } from "./support/helpers";

const standIn = isStandIn();

type ImagesBody = { created: number; data: { b64_json?: string; url?: string; seed: number }[]; usage: Record<string, unknown>; size: string; output_format: string };

describe("POST /v1/images/generations", () => {
  it("returns OpenAI's ImagesResponse with b64 PNGs, usage in megapixel-steps and a job id", async () => {
    const k = await createKey();
    const rid = uniq("gen");
    const res = await call("/v1/images/generations", json({ prompt: "a red fox", size: "128x64", steps: 4, seed: 42 }, bearer(k.key, { "x-request-id": rid })));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(rid);
    expect(res.headers.get("x-dimoo-job-id")).toMatch(/^job_/);
    const body = (await res.json()) as ImagesBody;
    expect(body.created).toBeCloseTo(Date.now() / 1000, -1);
    expect(body.data).toHaveLength(1);
    expect(body.data[0].seed).toBe(42);
    expect(imageInfo(fromBase64(body.data[0].b64_json!))).toEqual({ type: "png", width: 128, height: 64 });
    expect(body).toMatchObject({ size: "128x64", output_format: "png", usage: { billing_unit: "megapixel_step", billing_units: 0.033, steps: 4 } });
    if (standIn) {
      const calls = await standInCalls(rid);
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ method: "Generate", authorized: true, task: "TEXT_TO_IMAGE", width: 128, height: 64, steps: 4, seed: "42", outputFormat: "PNG" });
      // The account is the tenant the orchestrator shares its slots between, weighted by the plan's concurrency.
      expect(calls[0].tenant?.id).toBe(k.account_id);
      expect(calls[0].tenant?.weight).toBeGreaterThanOrEqual(1);
    }
  });

  it("fans n out as n Generate calls with seed, seed+1, ... and charges all of them", async () => {
    const k = await createKey();
    const rid = uniq("fan");
    const res = await call("/v1/images/generations", json({ prompt: "tiles", n: 3, size: "64x64", steps: 2, seed: 100 }, bearer(k.key, { "x-request-id": rid })));
    const body = (await res.json()) as ImagesBody;
    expect(body.data.map((d) => d.seed)).toEqual([100, 101, 102]);
    expect(new Set(body.data.map((d) => d.b64_json)).size).toBe(3);
    expect(body.usage.billing_units).toBe(0.027); // 3 x 0.004096 MP x 2 steps, rounded up per image
    if (standIn) {
      const calls = await standInCalls(rid);
      expect(calls.map((c) => c.seed).sort()).toEqual(["100", "101", "102"]);
      expect(calls.map((c) => c.requestId).sort()).toEqual([`${rid}.0`, `${rid}.1`, `${rid}.2`]);
    }
  });

  it("keeps per-image request ids within the orchestrator's 128 characters when a 128-character x-request-id fans out", async () => {
    const k = await createKey();
    const rid = `r${uniq("long").replace(/[^\w-]/g, "")}`.padEnd(128, "x");
    expect(rid).toHaveLength(128);
    const res = await call("/v1/images/generations", json({ prompt: "two of them", n: 2, size: "64x64", steps: 2 }, bearer(k.key, { "x-request-id": rid })));
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(rid);
    if (standIn) {
      const ids = (await standInCalls(rid.slice(0, 126))).map((c) => c.requestId!);
      expect(ids.sort()).toEqual([`${rid.slice(0, 126)}.0`, `${rid.slice(0, 126)}.1`]);
    }
  });

  it("passes output_format through and returns url results served from R2 behind a signed URL", async () => {
    const k = await createKey();
    const res = await call("/v1/images/generations", json({ prompt: "webp please", size: "64x64", steps: 2, output_format: "webp", response_format: "url" }, bearer(k.key)));
    const body = (await res.json()) as ImagesBody;
    const url = new URL(body.data[0].url!);
    expect(url.pathname).toMatch(/^\/v1\/files\/results\/.+\/job_[A-Za-z0-9]+\/0\.webp$/);
    expect(Number(url.searchParams.get("expires")) - Date.now() / 1000).toBeGreaterThan(3500);
    const img = await call(url.pathname + url.search);
    expect(img.status).toBe(200);
    expect(img.headers.get("content-type")).toBe("image/webp");
    expect(img.headers.get("cross-origin-resource-policy")).toBe("cross-origin");
    expect(img.headers.get("access-control-allow-origin")).toBe("*");
    expect(imageInfo(new Uint8Array(await img.arrayBuffer()))?.type).toBe("webp");
    const forged = await call(url.pathname + url.search.replace(/signature=[^&]+/, "signature=AAAA"));
    expect(forged.status).toBe(403);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toBe("invalid_signature");
    const expired = await call(`${url.pathname}?expires=1&signature=${url.searchParams.get("signature")}`);
    expect(expired.status).toBe(403);
  });

  it("answers a file path that does not decode with a 404, not a 500", async () => {
    for (const path of ["/v1/files/results/%E0%A4", "/v1/files/results/a%ZZ/0.png", "/v1/files/%E0%A4%A"]) {
      const res = await call(`${path}?expires=9999999999&signature=AAAA`);
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code, path).toBe("file_not_found");
    }
  });

  it("streams image_generation.progress per step, partial images, then completed (SSE)", async () => {
    const k = await createKey();
    const res = await call("/v1/images/generations", json({ prompt: "streamed", size: "64x64", steps: 6, stream: true, partial_images: 2 }, bearer(k.key)));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = parseSse(await res.text());
    const progress = events.filter((e) => e.event === "image_generation.progress").map((e) => JSON.parse(e.data));
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(progress[0]).toMatchObject({ type: "image_generation.progress", steps: 6, index: 0 });
    expect(progress[0].masked_remaining).toBeGreaterThan(progress[5].masked_remaining);
    const partials = events.filter((e) => e.event === "image_generation.partial_image").map((e) => JSON.parse(e.data));
    if (standIn) expect(partials.map((p) => p.partial_image_index)).toEqual([0, 1]);
    for (const p of partials) expect(imageInfo(fromBase64(p.b64_json))?.type).toBe("png");
    const done = events.filter((e) => e.event === "image_generation.completed").map((e) => JSON.parse(e.data));
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({ type: "image_generation.completed", index: 0, size: "64x64", usage: { billing_unit: "megapixel_step" } });
    expect(events[events.length - 1].event).toBe("image_generation.completed");
  });

  it("passes the Max-Logit cache option through: true for the defaults, or its parameters, on generations and edits", async () => {
    const k = await createKey();
    const rid = uniq("cache");
    const res = await call("/v1/images/generations", json({ prompt: "a red fox", size: "64x64", steps: 8, ml_cache: true }, bearer(k.key, { "x-request-id": rid })));
    expect(res.status).toBe(200);
    const rid2 = uniq("cache");
    const res2 = await call("/v1/images/generations", json({ prompt: "a red fox", size: "64x64", steps: 8, ml_cache: { cache_ratio: 0.8, refresh_interval: 3 } }, bearer(k.key, { "x-request-id": rid2 })));
    expect(res2.status).toBe(200);
    const rid3 = uniq("cache");
    const res3 = await call("/v1/images/generations", json({ prompt: "a red fox", size: "64x64", steps: 8 }, bearer(k.key, { "x-request-id": rid3 })));
    expect(res3.status).toBe(200);
    if (standIn) {
      expect((await standInCalls(rid))[0].mlCache).toEqual({ enabled: true });
      expect((await standInCalls(rid2))[0].mlCache).toEqual({ enabled: true, cacheRatio: 0.8, refreshInterval: 3 });
      expect((await standInCalls(rid3))[0].mlCache).toBeUndefined();
    }
    const bad = await call("/v1/images/generations", json({ prompt: "x", ml_cache: { cache_ratio: 1 } }, bearer(k.key)));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toContain("ml_cache");
    // Image-to-image takes it too (docs/ml-cache.md).
    const rid4 = uniq("cache");
    const edit = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "x-request-id": rid4 }), body: await editForm({ prompt: "a hat", task: "edit", ml_cache: "true", steps: "8" }, [{ name: "image", bytes: await png(32, 32) }]) });
    expect(edit.status).toBe(200);
    if (standIn) expect((await standInCalls(rid4))[0].mlCache).toEqual({ enabled: true });
  });

  it("names the offending field in validation errors", async () => {
    const k = await createKey();
    const cases: [unknown, string][] = [
      [{ size: "64x64" }, "prompt"],
      [{ prompt: "x", n: 5 }, "n"],
      [{ prompt: "x", size: "100x100" }, "size"],
      [{ prompt: "x", size: "big" }, "size"],
      [{ prompt: "x", output_format: "gif" }, "output_format"],
      [{ prompt: "x", response_format: "file" }, "response_format"],
      [{ prompt: "x", steps: 0 }, "steps"],
    ];
    for (const [body, param] of cases) {
      const res = await call("/v1/images/generations", json(body, bearer(k.key)));
      expect(res.status, JSON.stringify(body)).toBe(400);
      const e = ((await res.json()) as { error: { param: string; type: string; message: string } }).error;
      expect(e.param, JSON.stringify(body)).toBe(param);
      expect(e.type).toBe("invalid_request_error");
      expect(e.message).toContain(param);
    }
  });

  it("tells a missing field (missing_required_parameter) from one of the wrong type (invalid_type), naming it", async () => {
    const k = await createKey();
    const cases: [string, unknown, string, string][] = [
      ["/v1/images/generations", { size: "64x64" }, "prompt", "missing_required_parameter"],
      ["/v1/images/generations", { prompt: 123 }, "prompt", "invalid_type"],
      ["/v1/images/generations", { prompt: null }, "prompt", "invalid_type"],
      ["/v1/images/generations", { prompt: "x", n: "2" }, "n", "invalid_type"],
      ["/v1/images/generations", { prompt: "x", stream: "yes" }, "stream", "invalid_type"],
      ["/v1/images/generations", { prompt: "x", n: 9 }, "n", "invalid_value"],
      ["/v1/chat/completions", { messages: "hello" }, "messages", "invalid_type"],
      ["/v1/chat/completions", {}, "messages", "missing_required_parameter"],
      ["/v1/images/edits", { prompt: "x", image: 5 }, "image", "invalid_value"],
    ];
    for (const [path, body, param, code] of cases) {
      const res = await call(path, json(body, bearer(k.key)));
      expect(res.status, JSON.stringify(body)).toBe(400);
      const e = ((await res.json()) as { error: { param: string; code: string; type: string; message: string } }).error;
      expect(e, JSON.stringify(body)).toMatchObject({ param, code, type: "invalid_request_error" });
      expect(e.message).toContain(param);
    }
  });

  it("rejects malformed JSON, a wrong content type and an unknown model", async () => {
    const k = await createKey();
    const bad = await call("/v1/images/generations", { method: "POST", headers: { ...bearer(k.key), "content-type": "application/json" }, body: "{nope" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    const form = await call("/v1/images/generations", { method: "POST", headers: { ...bearer(k.key), "content-type": "text/plain" }, body: "prompt=x" });
    expect(form.status).toBe(415);
    expect(((await form.json()) as { error: { code: string } }).error.code).toBe("unsupported_media_type");
    const model = await call("/v1/images/generations", json({ prompt: "x", model: "dall-e-3" }, bearer(k.key)));
    expect(model.status).toBe(404);
    expect(((await model.json()) as { error: { code: string; param: string } }).error).toMatchObject({ code: "model_not_found", param: "model" });
  });

  it.skipIf(!standIn)("maps orchestrator INVALID_ARGUMENT to a 400 naming the field, and charges nothing", async () => {
    const k = await createKey();
    const res = await call("/v1/images/generations", json({ prompt: "bad [standin:fail=invalid]", size: "64x64", steps: 2 }, bearer(k.key)));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe("prompt");
    const usage = (await (await call("/v1/usage", { headers: bearer(k.key) })).json()) as { quota: { used_units: number; reserved_units: number } };
    expect(usage.quota).toMatchObject({ used_units: 0, reserved_units: 0 });
  });
});

async function editForm(fields: Record<string, string>, images: { name: string; bytes: Uint8Array }[], mask?: Uint8Array): Promise<FormData> {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  for (const im of images) fd.append(im.name, new File([im.bytes], "image.png", { type: "image/png" }));
  if (mask) fd.append("mask", new File([mask], "mask.png", { type: "image/png" }));
  return fd;
}

describe("POST /v1/images/edits", () => {
  it("accepts multipart `image` + `mask` (transparent = regenerate) and defaults to inpaint", async () => {
    const k = await createKey();
    const rid = uniq("edit");
    const image = await png(64, 48);
    const mask = await png(64, 48, (x) => (x < 32 ? 0 : 255));
    const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "x-request-id": rid }), body: await editForm({ prompt: "add a hat", steps: "3", seed: "7" }, [{ name: "image", bytes: image }], mask) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ImagesBody;
    expect(body.size).toBe("64x48");
    expect(body.data[0].seed).toBe(7);
    if (standIn) {
      const [c] = await standInCalls(rid);
      expect(c).toMatchObject({ task: "INPAINT", images: 1, maskBytes: mask.length, steps: 3, seed: "7", width: 0, height: 0, rawDecode: false });
    }
  });

  it("passes raw_decode through for inpainting (the blend into the caller's image is the default)", async () => {
    const k = await createKey();
    const rid = uniq("raw");
    const image = await png(64, 48);
    const mask = await png(64, 48, (x) => (x < 32 ? 0 : 255));
    const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "x-request-id": rid }), body: await editForm({ prompt: "a hat", steps: "2", raw_decode: "true" }, [{ name: "image", bytes: image }], mask) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as ImagesBody).size).toBe("64x48");
    if (standIn) expect((await standInCalls(rid))[0]).toMatchObject({ task: "INPAINT", rawDecode: true });
    const bad = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: await editForm({ prompt: "a hat", raw_decode: "yes" }, [{ name: "image", bytes: image }], mask) });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("raw_decode");
  });

  it("accepts `image[]` (several images) and a task with edit_type", async () => {
    const k = await createKey();
    const rid = uniq("style");
    const fd = await editForm({ prompt: "in this style", task: "style", n: "2", steps: "2" }, [
      { name: "image[]", bytes: await png(32, 32) },
      { name: "image[]", bytes: await png(32, 32) },
    ]);
    const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "x-request-id": rid }), body: fd });
    expect(res.status).toBe(200);
    expect(((await res.json()) as ImagesBody).data).toHaveLength(2);
    if (standIn) {
      const calls = await standInCalls(rid);
      expect(calls.map((c) => [c.task, c.images])).toEqual([
        ["STYLE", 2],
        ["STYLE", 2],
      ]);
    }
    const rid2 = uniq("control");
    const r2 = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key, { "x-request-id": rid2 }), body: await editForm({ prompt: "a house", task: "control", edit_type: "canny", steps: "2" }, [{ name: "image", bytes: await png(32, 32) }]) });
    expect(r2.status).toBe(200);
    if (standIn) expect((await standInCalls(rid2))[0]).toMatchObject({ task: "CONTROL", editType: "canny" });
  });

  it("accepts JSON with data URLs and streams image_edit.* events", async () => {
    const k = await createKey();
    const res = await call("/v1/images/edits", json({ prompt: "make it blue", image: dataUrl(await png(32, 32)), steps: 3, stream: true }, bearer(k.key)));
    const events = parseSse(await res.text());
    expect(events.filter((e) => e.event === "image_edit.progress")).toHaveLength(3);
    expect(events.at(-1)?.event).toBe("image_edit.completed");
  });

  it("reads multipart numbers as plain decimals only: n=\"0x2\" is the wrong type, not 2", async () => {
    const k = await createKey();
    for (const [field, value, code] of [
      ["n", "0x2", "invalid_type"],
      ["steps", "1e1", "invalid_type"],
      ["seed", "", "invalid_type"],
      ["stream", "yes", "invalid_type"],
      ["n", "3.5", "invalid_type"], // zod: expected an integer
      ["n", "7", "invalid_value"],
    ]) {
      const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: await editForm({ prompt: "x", steps: "2", [field]: value }, [{ name: "image", bytes: await png(32, 32) }]) });
      expect(res.status, `${field}=${value}`).toBe(400);
      expect(((await res.json()) as { error: { param: string; code: string } }).error, `${field}=${value}`).toMatchObject({ param: field, code });
    }
    const ok = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: await editForm({ prompt: "x", steps: "2", n: " 2 " }, [{ name: "image", bytes: await png(32, 32) }]) });
    expect(((await ok.json()) as ImagesBody).data).toHaveLength(2);
  });

  it("rejects a mask of another size, a non-PNG mask, a missing mask for outpaint, non-images and a missing image", async () => {
    const k = await createKey();
    const image = await png(64, 48);
    const post = async (fd: FormData) => {
      const res = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: fd });
      expect(res.status).toBe(400);
      return ((await res.json()) as { error: { param: string; code: string } }).error;
    };
    expect(await post(await editForm({ prompt: "x" }, [{ name: "image", bytes: image }], await png(32, 32)))).toMatchObject({ param: "mask", code: "invalid_image_size" });
    expect(await post(await editForm({ prompt: "x", task: "outpaint" }, [{ name: "image", bytes: image }]))).toMatchObject({ param: "mask" });
    expect(await post(await editForm({ prompt: "x" }, [{ name: "image", bytes: new TextEncoder().encode("not an image at all") }]))).toMatchObject({ param: "image", code: "invalid_image_format" });
    expect(await post(await editForm({ prompt: "x" }, []))).toMatchObject({ param: "image" });
    expect(await post(await editForm({ prompt: "x", task: "paint" }, [{ name: "image", bytes: image }]))).toMatchObject({ param: "task" });
    const fd = await editForm({ prompt: "x" }, [{ name: "image", bytes: image }]);
    fd.append("mask", "just text");
    expect(await post(fd)).toMatchObject({ param: "mask" });
  });
});
