// Cross-cutting surface: /openapi.json from the zod schemas, /v1/models, 404s, body limits, CORS, secure
// headers and x-request-id on every response.
import { describe, expect, it } from "vitest";
import { bearer, call, createKey, json } from "./support/helpers";

describe("public surface", () => {
  it("serves an OpenAPI 3.1 document generated from the validating schemas", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> } }>>; components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }>; securitySchemes: Record<string, unknown> } };
    expect(doc.openapi).toBe("3.1.0");
    for (const p of ["/v1/images/generations", "/v1/images/edits", "/v1/chat/completions", "/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/events", "/v1/jobs/{id}/cancel", "/v1/models", "/v1/usage", "/admin/keys", "/admin/plans/{id}"]) {
      expect(doc.paths[p], p).toBeDefined();
    }
    expect(Object.keys(doc.paths["/v1/images/edits"].post.requestBody!.content)).toEqual(["multipart/form-data"]);
    const gen = doc.components.schemas.ImageGenerationRequest;
    expect(gen.required).toContain("prompt");
    expect(Object.keys(gen.properties!)).toEqual(expect.arrayContaining(["prompt", "size", "n", "response_format", "output_format", "stream", "user", "seed", "steps", "guidance_scale", "temperature"]));
    expect(doc.components.schemas.Error).toBeDefined();
    expect(doc.components.securitySchemes.ApiKey).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("lists the model in OpenAI's shape", async () => {
    const k = await createKey();
    const body = (await (await call("/v1/models", { headers: bearer(k.key) })).json()) as { object: string; data: { id: string; object: string }[] };
    expect(body).toEqual({ object: "list", data: [{ id: "lumina-dimoo", object: "model", created: expect.any(Number), owned_by: "alpha-vllm" }] });
    expect((await call("/v1/models/lumina-dimoo", { headers: bearer(k.key) })).status).toBe(200);
    expect((await call("/v1/models/gpt-4", { headers: bearer(k.key) })).status).toBe(404);
  });

  it("answers unknown routes with a 404 in the error shape", async () => {
    const k = await createKey();
    expect((await call("/v1/nothing-here")).status).toBe(401); // the key is checked first
    const res = await call("/v1/nothing-here", { headers: bearer(k.key) });
    expect(res.status).toBe(404);
    expect((await call("/nothing-here")).status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unknown_url");
    expect(res.headers.get("x-request-id")).toMatch(/^req_/);
  });

  it("enforces body limits before parsing (declared and streamed bodies)", async () => {
    const k = await createKey();
    const big = JSON.stringify({ prompt: "x".repeat(1024 * 1024 + 10) });
    const res = await call("/v1/images/generations", { method: "POST", headers: { ...bearer(k.key), "content-type": "application/json" }, body: big });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("request_too_large");
    const chunked = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 30; i++) c.enqueue(new Uint8Array(1024 * 1024));
        c.close();
      },
    });
    const res2 = await call("/v1/images/edits", { method: "POST", headers: { ...bearer(k.key), "content-type": "multipart/form-data; boundary=x" }, body: chunked, duplex: "half" } as RequestInit);
    expect(res2.status).toBe(413);
    // an image-sized body is fine on the image routes
    const ok = await call("/v1/chat/completions", json({ messages: [{ role: "user", content: "x".repeat(100) }], pad: "y".repeat(2 * 1024 * 1024) }, bearer(k.key)));
    expect(ok.status).toBe(400); // past the limit; fails validation (no image), not size
  });

  it("answers CORS preflights and exposes the rate-limit and request-id headers", async () => {
    const pre = await call("/v1/images/generations", { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,idempotency-key" } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
    expect(pre.headers.get("access-control-allow-headers")).toContain("idempotency-key");
    const k = await createKey();
    const res = await call("/v1/models", { headers: { ...bearer(k.key), origin: "https://app.example" } });
    const exposed = res.headers.get("access-control-expose-headers")!;
    for (const h of ["x-request-id", "x-ratelimit-remaining-requests", "ratelimit", "retry-after"]) expect(exposed).toContain(h);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("strict-transport-security")).toContain("max-age=");
  });

  it("keeps a caller's safe x-request-id and replaces an unsafe one", async () => {
    expect((await call("/openapi.json", { headers: { "x-request-id": "client-123" } })).headers.get("x-request-id")).toBe("client-123");
    expect((await call("/openapi.json", { headers: { "x-request-id": "bad id <script>" } })).headers.get("x-request-id")).toMatch(/^req_/);
  });
});
