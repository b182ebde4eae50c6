// Async jobs: 202 + job object, polling, SSE events, results in R2 behind signed URLs, cancellation (not
// charged), Standard Webhooks deliveries (signed, retried), idempotent creation and error shapes.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { listDurableObjectIds } from "cloudflare:test";
import { verifyWebhook } from "../../edge/src/webhooks";
import { imageInfo } from "../../edge/src/lib/images";
import { accountStub, bearer, call, createKey, dataUrl, isStandIn, json, parseSse, png, testEnv, uniq, waitFor } from "./support/helpers";

const standIn = isStandIn();

type JobBody = {
  id: string;
  object: string;
  type: string;
  status: string;
  progress: { step: number; steps: number } | null;
  result: { data?: { url: string; seed: number }[]; usage?: Record<string, unknown>; choices?: unknown[] } | null;
  error: { code: string } | null;
  urls: { self: string; events: string; cancel: string };
};

async function settle(key: string, id: string): Promise<JobBody> {
  return waitFor(async () => {
    const j = (await (await call(`/v1/jobs/${id}`, { headers: bearer(key) })).json()) as JobBody;
    return ["succeeded", "failed", "canceled"].includes(j.status) ? j : undefined;
  }, 15_000, 100);
}

describe("async jobs", () => {
  it("accepts a generation with 202, runs it, and serves the result through signed URLs", async () => {
    const k = await createKey();
    const res = await call("/v1/jobs", json({ prompt: "a lighthouse", size: "64x64", steps: 3, n: 2, seed: 9 }, bearer(k.key)));
    expect(res.status).toBe(202);
    const job = (await res.json()) as JobBody;
    expect(job).toMatchObject({ object: "job", type: "image_generation", status: "queued" });
    expect(res.headers.get("location")).toBe(job.urls.self);
    expect(job.urls.events).toBe(`${job.urls.self}/events`);
    const done = await settle(k.key, job.id);
    expect(done.status).toBe("succeeded");
    expect(done.progress).toEqual({ step: 3, steps: 3 });
    expect(done.result!.data!.map((d) => d.seed)).toEqual([9, 10]);
    const u = new URL(done.result!.data![0].url);
    const img = await call(u.pathname + u.search);
    expect(img.status).toBe(200);
    expect(imageInfo(new Uint8Array(await img.arrayBuffer()))).toEqual({ type: "png", width: 64, height: 64 });
    const [row] = await accountStub(k.account_id).ledger(job.id);
    expect(row).toMatchObject({ status: "committed", task: "image_generation" });
  });

  it("streams job events (SSE) with ids, and resumes after Last-Event-ID", async () => {
    const k = await createKey();
    const job = (await (await call("/v1/jobs", json({ prompt: "events", size: "64x64", steps: 4 }, bearer(k.key)))).json()) as JobBody;
    const res = await call(`/v1/jobs/${job.id}/events`, { headers: bearer(k.key) });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = parseSse(await res.text());
    const names = events.map((e) => e.event);
    expect(names[0]).toBe("job.queued");
    expect(names).toContain("job.running");
    expect(names.filter((n) => n === "image_generation.progress")).toHaveLength(4);
    expect(names.at(-1)).toBe("job.succeeded");
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const resumed = parseSse(await (await call(`/v1/jobs/${job.id}/events`, { headers: bearer(k.key, { "last-event-id": String(ids.at(-2)) }) })).text());
    expect(resumed.map((e) => e.event)).toEqual(["job.succeeded"]);
  });

  it("runs understanding and edit jobs", async () => {
    const k = await createKey();
    const chat = (await (await call("/v1/jobs", json({ messages: [{ role: "user", content: [{ type: "text", text: "what?" }, { type: "image_url", image_url: { url: dataUrl(await png(32, 32)) } }] }] }, bearer(k.key)))).json()) as JobBody;
    expect(chat.type).toBe("chat_completion");
    const chatDone = await settle(k.key, chat.id);
    expect(chatDone.status).toBe("succeeded");
    expect(chatDone.result).toMatchObject({ object: "chat.completion" });
    const image = await png(32, 32);
    const mask = await png(32, 32, (x, y) => (x + y < 32 ? 0 : 255));
    const edit = (await (await call("/v1/jobs", json({ prompt: "fill", image: dataUrl(image), mask: dataUrl(mask), steps: 2 }, bearer(k.key)))).json()) as JobBody;
    expect(edit.type).toBe("image_edit");
    const editDone = await settle(k.key, edit.id);
    expect(editDone.status).toBe("succeeded");
    expect(editDone.result!.data).toHaveLength(1);
  });

  it.skipIf(!standIn)("cancels a running job: status canceled, nothing charged, 409 when cancelled again", async () => {
    const k = await createKey();
    const job = (await (await call("/v1/jobs", json({ prompt: "slow [standin:delay=50]", size: "64x64", steps: 60 }, bearer(k.key)))).json()) as JobBody;
    await waitFor(async () => ((await (await call(`/v1/jobs/${job.id}`, { headers: bearer(k.key) })).json()) as JobBody).status === "running");
    const res = await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", headers: bearer(k.key) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as JobBody).status).toBe("canceled");
    const again = await call(`/v1/jobs/${job.id}/cancel`, { method: "POST", headers: bearer(k.key) });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("job_not_cancelable");
    await new Promise((r) => setTimeout(r, 300));
    const final = (await (await call(`/v1/jobs/${job.id}`, { headers: bearer(k.key) })).json()) as JobBody;
    expect(final).toMatchObject({ status: "canceled", result: null, error: { code: "cancelled" } });
    const [row] = await accountStub(k.account_id).ledger(job.id);
    expect(row).toMatchObject({ status: "released", committed_milli: 0 });
  });

  it.skipIf(!standIn)("records a failed job (not charged) with an error object", async () => {
    const k = await createKey();
    const job = (await (await call("/v1/jobs", json({ prompt: "boom [standin:fail=internal]", size: "64x64", steps: 3 }, bearer(k.key)))).json()) as JobBody;
    const done = await settle(k.key, job.id);
    expect(done).toMatchObject({ status: "failed", error: { code: "backend_error" }, result: null });
    expect((await accountStub(k.account_id).ledger(job.id))[0].status).toBe("released");
  });

  it("delivers a Standard Webhooks-signed job object, retrying after a failed attempt", async () => {
    const k = await createKey();
    const path = `/hooks/fail-first/${uniq("wh")}`;
    const job = (await (await call("/v1/jobs", json({ prompt: "hook", size: "64x64", steps: 2, webhook_url: `${inject("webhookUrl")}${path}` }, bearer(k.key)))).json()) as JobBody;
    const secret = ((await (await call("/v1/webhooks/secret", { headers: bearer(k.key) })).json()) as { secret: string }).secret;
    expect(secret).toMatch(/^whsec_/);
    const [hook] = await waitFor(async () => {
      const got = (await (await fetch(`${inject("webhookUrl")}/__received?path=${encodeURIComponent(path)}`)).json()) as { headers: Record<string, string>; body: string }[];
      return got.length ? got : undefined;
    }, 20_000, 200);
    expect(hook.headers["webhook-id"]).toBe(`${job.id}.succeeded`);
    expect(await verifyWebhook(secret, new Headers(hook.headers), hook.body)).toBe(true);
    expect(await verifyWebhook(secret, new Headers(hook.headers), hook.body.replace("succeeded", "failed"))).toBe(false);
    const payload = JSON.parse(hook.body) as JobBody;
    expect(payload).toMatchObject({ id: job.id, status: "succeeded" });
    expect(payload.result!.data![0].url).toContain("/v1/files/");
  });

  it("creates jobs idempotently and hides other accounts' jobs", async () => {
    const k = await createKey();
    const other = await createKey();
    const key = uniq("job-idem");
    const a = await call("/v1/jobs", json({ prompt: "same job", size: "64x64", steps: 2 }, bearer(k.key, { "idempotency-key": key })));
    const b = await call("/v1/jobs", json({ prompt: "same job", size: "64x64", steps: 2 }, bearer(k.key, { "idempotency-key": key })));
    expect([a.status, b.status]).toEqual([202, 202]);
    const ja = (await a.json()) as JobBody;
    expect(((await b.json()) as JobBody).id).toBe(ja.id);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    const hidden = await call(`/v1/jobs/${ja.id}`, { headers: bearer(other.key) });
    expect(hidden.status).toBe(404);
    expect(((await hidden.json()) as { error: { code: string } }).error.code).toBe("job_not_found");
    expect((await call(`/v1/jobs/${ja.id}/cancel`, { method: "POST", headers: bearer(other.key) })).status).toBe(404);
    expect((await call(`/v1/jobs/${ja.id}/events`, { headers: bearer(other.key) })).status).toBe(404);
    const badId = await call("/v1/jobs/nope", { headers: bearer(k.key) });
    expect(((await badId.json()) as { error: { param: string } }).error.param).toBe("id");
  });

  it("answers a job id nobody created with a 404 without creating a Job object for it", async () => {
    const k = await createKey();
    const id = `job_${uniq("ghost").replace(/[^A-Za-z0-9]/g, "")}`;
    for (const [path, method] of [[`/v1/jobs/${id}`, "GET"], [`/v1/jobs/${id}/events`, "GET"], [`/v1/jobs/${id}/cancel`, "POST"]]) {
      const res = await call(path, { method, headers: bearer(k.key) });
      expect(res.status, path).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("job_not_found");
    }
    const target = testEnv.JOB.idFromName(id);
    expect((await listDurableObjectIds(testEnv.JOB)).some((x) => x.equals(target))).toBe(false);
    // a real job is found, and its object exists
    const job = (await (await call("/v1/jobs", json({ prompt: "real", size: "64x64", steps: 1 }, bearer(k.key)))).json()) as JobBody;
    expect((await call(`/v1/jobs/${job.id}`, { headers: bearer(k.key) })).status).toBe(200);
    expect((await listDurableObjectIds(testEnv.JOB)).some((x) => x.equals(testEnv.JOB.idFromName(job.id)))).toBe(true);
  });

  it("validates job bodies (type, fields, webhook_url) before reserving anything", async () => {
    const k = await createKey();
    const cases: [unknown, string][] = [
      [{ type: "video", prompt: "x" }, "type"],
      [{ prompt: "x", size: "65x65" }, "size"],
      [{ prompt: "x", webhook_url: "ftp://example.com/hook" }, "webhook_url"],
      [{ prompt: "x", image: "data:image/png;base64,AAAA" }, "image"],
    ];
    for (const [body, param] of cases) {
      const res = await call("/v1/jobs", json(body, bearer(k.key)));
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param, JSON.stringify(body)).toBe(param);
    }
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });
});
