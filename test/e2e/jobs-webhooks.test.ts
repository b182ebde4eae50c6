// End to end: async jobs through the real stack, their webhooks received by a local listener on 127.0.0.1
// and verified as Standard Webhooks (by a verifier written from the spec, and by the official openai SDK's
// webhooks.unwrap), a failed delivery retried with the same webhook-id, the job's event stream, its stored
// result, and cancellation.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import OpenAI from "openai";
import sharp from "sharp";
import { logsOnFailure, startTestStack, type TestStack } from "./support/stack";
import { startWebhookListener, verifyStandardWebhook, type WebhookListener } from "./support/webhook-listener";

let stack: TestStack | undefined;
let listener: WebhookListener | undefined;
let secret: string;

beforeAll(async () => {
  listener = await startWebhookListener();
  stack = await startTestStack();
  const res = await api("/v1/webhooks/secret");
  expect(res.status).toBe(200);
  secret = ((await res.json()) as { secret: string }).secret;
  expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
});
afterAll(async () => {
  await stack?.stop();
  await listener?.close();
});
afterEach((ctx) => logsOnFailure(stack, ctx));

function api(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${stack!.edgeUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${stack!.apiKey}`, ...(init.body ? { "content-type": "application/json" } : {}), ...(init.headers as Record<string, string>) },
  });
}

interface Job {
  id: string;
  object: "job";
  type: string;
  status: string;
  progress?: { step: number; steps: number };
  result?: { data?: { url: string; seed: number }[]; choices?: { message: { content: string } }[]; usage?: Record<string, unknown> };
  error?: unknown;
  urls: { self: string; events: string; cancel: string };
}

async function createJob(body: object): Promise<Job> {
  const res = await api("/v1/jobs", { method: "POST", body: JSON.stringify(body) });
  expect(res.status, await res.clone().text()).toBe(202);
  const job = (await res.json()) as Job;
  expect(res.headers.get("location")).toBe(`${stack!.edgeUrl}/v1/jobs/${job.id}`);
  return job;
}

/** Reads the job's SSE stream to its end (the edge closes it after the final event). */
async function jobEvents(id: string): Promise<{ event: string; id: string; data: unknown }[]> {
  const res = await api(`/v1/jobs/${id}/events`, { signal: AbortSignal.timeout(60_000) });
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((b) => b.trim())
    .map((b) => {
      const f: Record<string, string> = {};
      for (const line of b.split("\n")) {
        const i = line.indexOf(":");
        if (i > 0) f[line.slice(0, i)] = (f[line.slice(0, i)] ? `${f[line.slice(0, i)]}\n` : "") + line.slice(i + 1).replace(/^ /, "");
      }
      return { event: f.event, id: f.id, data: JSON.parse(f.data) as unknown };
    });
}

describe("async jobs with webhooks", () => {
  it("an image job: 202 at once, then a signed webhook (retried once after a 500, same webhook-id) with the stored result", async () => {
    listener!.failFirst("/hooks/image", 1);
    const job = await createJob({ prompt: "a paper boat", size: "64x64", steps: 4, seed: 77, webhook_url: `${listener!.url}/hooks/image` });
    expect(job).toMatchObject({ object: "job", type: "image_generation" });
    expect(["queued", "running"]).toContain(job.status);

    const delivery = await listener!.waitFor("/hooks/image");
    const attempts = listener!.deliveries.filter((d) => d.path === "/hooks/image");
    expect(attempts.map((d) => d.status)).toEqual([500, 204]);
    expect(attempts[1].at - attempts[0].at).toBeGreaterThanOrEqual(1500); // backoff from 2 s
    expect(attempts[0].headers["webhook-id"]).toBe(`${job.id}.succeeded`);
    expect(attempts[1].headers["webhook-id"]).toBe(attempts[0].headers["webhook-id"]);
    expect(delivery.headers["content-type"]).toMatch(/^application\/json/);

    // signature: our spec-derived verifier and the openai SDK's Standard Webhooks implementation agree
    for (const d of attempts) expect(verifyStandardWebhook(secret, d.headers, d.body)).toBe(true);
    const unwrapped = (await new OpenAI({ apiKey: "unused" }).webhooks.unwrap(delivery.body, delivery.headers, secret)) as unknown as Job;
    expect(unwrapped.id).toBe(job.id);
    // and a changed body, another secret or a stale timestamp fail
    expect(verifyStandardWebhook(secret, delivery.headers, delivery.body.replace("succeeded", "failed"))).toBe(false);
    expect(verifyStandardWebhook(`whsec_${Buffer.alloc(32, 1).toString("base64")}`, delivery.headers, delivery.body)).toBe(false);
    expect(verifyStandardWebhook(secret, { ...delivery.headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000) - 600) }, delivery.body)).toBe(false);

    const body = JSON.parse(delivery.body) as Job;
    expect(body).toMatchObject({ id: job.id, status: "succeeded", type: "image_generation", progress: { step: 4, steps: 4 } });
    const url = body.result!.data![0].url;
    expect(body.result!.data![0].seed).toBe(77);
    const img = await fetch(url);
    expect(img.status).toBe(200);
    const meta = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 64, 64]);

    // the job object and its event stream tell the same story
    const now = (await (await api(`/v1/jobs/${job.id}`)).json()) as Job;
    expect(now.status).toBe("succeeded");
    const events = await jobEvents(job.id);
    const names = events.map((e) => e.event);
    expect(names[0]).toBe("job.queued");
    expect(names).toContain("job.running");
    expect(names.filter((n) => n === "image_generation.progress")).toHaveLength(4);
    expect(names).toContain("job.succeeded");
    expect(names.indexOf("job.succeeded")).toBeGreaterThan(names.lastIndexOf("image_generation.progress"));
    expect(names).toContain("webhook.delivered");
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    // Last-Event-ID resumes after the given event
    const resumed = await (await api(`/v1/jobs/${job.id}/events`, { headers: { "last-event-id": String(ids[1]) } })).text();
    expect(resumed).not.toMatch(new RegExp(`^id: (${ids[0]}|${ids[1]})$`, "m"));
    expect(resumed).toMatch(/^event: job\.succeeded$/m);
  });

  it("a chat_completion job (type inferred from messages) delivers the completion to its webhook", async () => {
    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 200, g: 40, b: 40 } } }).png().toBuffer();
    const job = await createJob({
      messages: [{ role: "user", content: [{ type: "text", text: "What colour is it?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${png.toString("base64")}` } }] }],
      max_tokens: 8,
      steps: 2,
      webhook_url: `${listener!.url}/hooks/chat`,
    });
    expect(job.type).toBe("chat_completion");
    const d = await listener!.waitFor("/hooks/chat");
    expect(verifyStandardWebhook(secret, d.headers, d.body)).toBe(true);
    const body = JSON.parse(d.body) as Job;
    expect(body).toMatchObject({ id: job.id, status: "succeeded" });
    expect(typeof body.result!.choices![0].message.content).toBe("string");
    expect(d.headers["webhook-id"]).toBe(`${job.id}.succeeded`);
  });

  it("cancelling a running job stops it and charges nothing; a finished job cannot be cancelled", async () => {
    const quota = async () => ((await (await api("/v1/usage")).json()) as { quota: { used_units: number; reserved_units: number; in_flight: number } }).quota;
    const before = await quota();
    const job = await createJob({ prompt: "a long one", size: "512x512", steps: 200 });
    const res = await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Job).status).toBe("canceled");
    const again = await api(`/v1/jobs/${job.id}/cancel`, { method: "POST" });
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe("job_not_cancelable");
    const events = (await jobEvents(job.id)).map((e) => e.event);
    expect(events.at(-1)).toBe("job.canceled");
    expect(events).not.toContain("job.succeeded");
    expect(await quota()).toMatchObject({ used_units: before.used_units, reserved_units: 0, in_flight: 0 });
    expect((await api("/v1/jobs/job_doesnotexist1234")).status).toBe(404);
  });
});
