// Metering: the ledger charges a job exactly once (retries, concurrent duplicates), never for failures or
// cancellations; committed usage leaves as one CloudEvent per job on the Queue, and the consumer dedupes.
import { describe, expect, it } from "vitest";
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import worker from "../../edge/src/index";
import { imageUnitsMilli, understandUnitsMilli, usageEvent } from "../../edge/src/metering";
import { accountStub, admin, bearer, call, createKey, direct, dataUrl, isStandIn, json, parseSse, png, standInCalls, testEnv, uniq, waitFor } from "./support/helpers";

const standIn = isStandIn();

const usageRow = (id: string) => testEnv.DB.prepare("SELECT * FROM usage_events WHERE id = ?").bind(id).first<Record<string, unknown>>();

/** The account's ledger once its `n`-th row is settled (committed or released). */
const settledLedger = (accountId: string, n = 1) =>
  waitFor(async () => {
    const l = await accountStub(accountId).ledger();
    return l.length >= n && l[n - 1].status !== "reserved" ? l : undefined;
  });

/** Resolves once the stand-in saw the call of request `rid` cancelled. */
const cancelledAtBackend = (rid: string) => waitFor(async () => (await standInCalls(rid))[0]?.outcome === "cancelled");

/** Reads a streamed body until its text matches `pattern`; returns that text. */
async function readUntil(reader: ReadableStreamDefaultReader<Uint8Array>, pattern: RegExp): Promise<string> {
  let text = "";
  while (!pattern.test(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return text;
}

describe("metering", () => {
  it("charges once under client retries, sequential and concurrent, and emits one usage event", async () => {
    const k = await createKey();
    const key = uniq("retry");
    const body = json({ prompt: "metered", size: "128x128", steps: 4 }, bearer(k.key, { "idempotency-key": key }));
    const first = await call("/v1/images/generations", body);
    const jobId = first.headers.get("x-dimoo-job-id")!;
    const more = await Promise.all([0, 1, 2].map(() => call("/v1/images/generations", json({ prompt: "metered", size: "128x128", steps: 4 }, bearer(k.key, { "idempotency-key": key })))));
    expect([first.status, ...more.map((r) => r.status)]).toEqual([200, 200, 200, 200]);
    const ledger = await accountStub(k.account_id).ledger();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ job_id: jobId, status: "committed", committed_milli: 66, reserved_milli: 66 }); // 0.016384 MP x 4 steps
    const row = await waitFor(() => usageRow(jobId));
    expect(row).toMatchObject({ account_id: k.account_id, task: "image_generation", units_milli: 66 });
    expect((await testEnv.DB.prepare("SELECT COUNT(*) AS n FROM usage_events WHERE account_id = ?").bind(k.account_id).first<{ n: number }>())!.n).toBe(1);
    await waitFor(async () => (await accountStub(k.account_id).snapshot()).outbox === 0);
    const adminUsage = (await (await admin(`/admin/usage?account_id=${k.account_id}`)).json()) as { data: unknown[] };
    expect(adminUsage.data).toEqual([{ account_id: k.account_id, date: new Date().toISOString().slice(0, 10), task: "image_generation", requests: 1, units: 0.066 }]);
    const snap = await (await admin(`/admin/accounts/${k.account_id}`)).json();
    expect(snap).toEqual({ account_id: k.account_id, month: new Date().toISOString().slice(0, 7), used_units: 0.066, reserved_units: 0, in_flight: 0, unsent_events: 0 });
  });

  it.skipIf(!standIn)("never charges a failed generation (before or after progress), streamed or not", async () => {
    const k = await createKey();
    const failed = await call("/v1/images/generations", json({ prompt: "crash [standin:fail=internal]", size: "64x64", steps: 4 }, bearer(k.key)));
    expect(failed.status).toBe(502);
    expect(((await failed.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: "server_error", code: "backend_error" });
    const streamed = await call("/v1/images/generations", json({ prompt: "crash later [standin:fail=internal] [standin:fail_after=2]", size: "64x64", steps: 4, stream: true }, bearer(k.key)));
    const events = parseSse(await streamed.text());
    expect(events.filter((e) => e.event === "image_generation.progress")).toHaveLength(2);
    expect(events.at(-1)!.event).toBe("error");
    expect(JSON.parse(events.at(-1)!.data).error.code).toBe("backend_error");
    const ledger = await accountStub(k.account_id).ledger();
    expect(ledger.map((r) => [r.status, r.committed_milli])).toEqual([
      ["released", 0],
      ["released", 0],
    ]);
    expect(ledger[0].release_reason).toBe("failed: backend_error");
    const usage = (await (await call("/v1/usage", { headers: bearer(k.key) })).json()) as { data: unknown[]; quota: { used_units: number; in_flight: number } };
    expect(usage.data).toEqual([]);
    expect(usage.quota).toMatchObject({ used_units: 0, in_flight: 0 });
    const n = await testEnv.DB.prepare("SELECT COUNT(*) AS n FROM usage_events WHERE account_id = ?").bind(k.account_id).first<{ n: number }>();
    expect(n!.n).toBe(0);
  });

  it.skipIf(!standIn)("a client that disconnects from a stream cancels the backend call and is not charged", async () => {
    const k = await createKey();
    const rid = uniq("cancel");
    const res = await direct("/v1/images/generations", json({ prompt: "long [standin:delay=50]", size: "64x64", steps: 40, stream: true }, bearer(k.key, { "x-request-id": rid })));
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value)).toContain("image_generation.progress");
    await reader.cancel();
    const [row] = await waitFor(async () => {
      const l = await accountStub(k.account_id).ledger();
      return l[0]?.status === "released" ? l : undefined;
    });
    expect(row.release_reason).toBe("cancelled by client");
    const [c] = await waitFor(async () => {
      const calls = await standInCalls(rid);
      return calls[0]?.outcome === "cancelled" ? calls : undefined;
    });
    expect(c.outcome).toBe("cancelled");
  });

  it.skipIf(!standIn)("an aborted (disconnected) non-streaming request cancels the backend call and is not charged", async () => {
    const k = await createKey();
    const rid = uniq("abort");
    const ac = new AbortController();
    const pending = direct("/v1/images/generations", { ...json({ prompt: "long [standin:delay=50]", size: "64x64", steps: 40 }, bearer(k.key, { "x-request-id": rid })), signal: ac.signal });
    await waitFor(async () => (await standInCalls(rid)).length > 0);
    ac.abort();
    const res = await pending.catch((e: unknown) => e);
    if (res instanceof Response) expect(res.status).not.toBe(200);
    const [row] = await waitFor(async () => {
      const l = await accountStub(k.account_id).ledger();
      return l[0]?.status === "released" ? l : undefined;
    });
    expect(row.release_reason).toBe("cancelled by client");
    await waitFor(async () => (await standInCalls(rid))[0]?.outcome === "cancelled");
  });

  it.skipIf(!standIn)("a client that hangs up on a non-streamed generation after its status line cancels the backend call and pays nothing", async () => {
    const k = await createKey();
    const rid = uniq("hangup");
    const res = await direct("/v1/images/generations", json({ prompt: "long [standin:delay=50]", size: "64x64", steps: 60 }, bearer(k.key, { "x-request-id": rid })));
    expect(res.status).toBe(200); // the status line is sent once the work outlasts the hold, before the JSON
    expect(res.headers.get("content-type")).toBe("application/json");
    await res.body!.cancel();
    const [row] = await settledLedger(k.account_id);
    expect(row).toMatchObject({ status: "released", release_reason: "cancelled by client", committed_milli: 0 });
    await cancelledAtBackend(rid);
  });

  it.skipIf(!standIn)("a non-streamed answer that outlasts the hold is the same JSON, and a failure after its status line breaks the body uncharged", async () => {
    const k = await createKey();
    const key = uniq("held");
    const body = { prompt: "held [standin:delay=40]", size: "64x64", steps: 40, seed: 3 };
    const first = await direct("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    const text = await first.text();
    expect((JSON.parse(text) as { data: unknown[] }).data).toHaveLength(1);
    const replay = await call("/v1/images/generations", json(body, bearer(k.key, { "idempotency-key": key })));
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect(await replay.text()).toBe(text);

    const failing = await direct("/v1/images/generations", json({ prompt: "late crash [standin:fail=internal] [standin:fail_after=35] [standin:delay=40]", size: "64x64", steps: 40 }, bearer(k.key)));
    expect(failing.status).toBe(200);
    await expect(failing.text()).rejects.toThrow();
    const rows = await settledLedger(k.account_id, 2);
    expect(rows[1]).toMatchObject({ status: "released", committed_milli: 0, release_reason: "failed: backend_error" });
  });

  it.skipIf(!standIn)("a stream cancelled after a preview reached the client pays for the steps that ran", async () => {
    const k = await createKey();
    const rid = uniq("preview");
    const res = await direct("/v1/images/generations", json({ prompt: "previews [standin:delay=30]", size: "64x64", steps: 40, stream: true, partial_images: 2 }, bearer(k.key, { "x-request-id": rid })));
    const reader = res.body!.getReader();
    await readUntil(reader, /image_generation\.partial_image/);
    await reader.cancel();
    const [row] = await settledLedger(k.account_id);
    // the first preview comes after step 13 of 40; the steps run until the cancel arrived are charged, not all 40
    expect(row, JSON.stringify(row)).toMatchObject({ status: "committed" });
    expect(row.committed_milli).toBeGreaterThanOrEqual(imageUnitsMilli(64, 64, 13));
    expect(row.committed_milli).toBeLessThan(imageUnitsMilli(64, 64, 40));
    await cancelledAtBackend(rid);
    const event = await waitFor(() => usageRow(row.job_id));
    expect(event).toMatchObject({ units_milli: row.committed_milli });
  });

  it.skipIf(!standIn)("a chat stream cancelled after answer text reached the client pays its reserved units; before any text, nothing", async () => {
    const k = await createKey();
    const chat = (question: string) =>
      json({ stream: true, max_tokens: 64, messages: [{ role: "user", content: [{ type: "text", text: question }, { type: "image_url", image_url: { url: dataUrl(img) } }] }] }, bearer(k.key));
    const img = await png(32, 32);
    const res = await direct("/v1/chat/completions", chat("what is it [standin:delay=50]"));
    const reader = res.body!.getReader();
    await readUntil(reader, /"content":"[^"]+"/);
    await reader.cancel();
    const [row] = await settledLedger(k.account_id);
    expect(row).toMatchObject({ status: "committed", committed_milli: understandUnitsMilli(32 * 32, 64) });

    const early = await direct("/v1/chat/completions", chat("slow start [standin:delay=400]"));
    const r2 = early.body!.getReader();
    expect(new TextDecoder().decode((await r2.read()).value)).toContain('"role":"assistant","content":""');
    await r2.cancel();
    const rows = await settledLedger(k.account_id, 2);
    expect(rows[1]).toMatchObject({ status: "released", committed_milli: 0, release_reason: "cancelled by client" });
  });

  it("records usage by day and task for GET /v1/usage", async () => {
    const k = await createKey();
    await call("/v1/images/generations", json({ prompt: "one", size: "64x64", steps: 2 }, bearer(k.key)));
    await call("/v1/images/generations", json({ prompt: "two", size: "64x64", steps: 2 }, bearer(k.key)));
    await call("/v1/chat/completions", json({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: dataUrl(await png(32, 32)) } }] }], max_tokens: 8 }, bearer(k.key)));
    const res = await call("/v1/usage", { headers: bearer(k.key) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; billing_unit: string; data: { date: string; task: string; requests: number; units: number }[]; quota: Record<string, number> };
    const today = new Date().toISOString().slice(0, 10);
    expect(body).toMatchObject({ object: "usage", billing_unit: "megapixel_step", start_date: `${today.slice(0, 7)}-01`, end_date: today });
    expect(body.data.find((d) => d.task === "image_generation")).toEqual({ date: today, task: "image_generation", requests: 2, units: 0.018 });
    expect(body.data.find((d) => d.task === "chat_completion")).toMatchObject({ date: today, requests: 1 });
    expect(body.quota.in_flight).toBe(0);
    const bad = await call("/v1/usage?start_date=2026-13", { headers: bearer(k.key) });
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("start_date");
  });

  it("the queue consumer dedupes redelivered CloudEvents by id and drops malformed ones", async () => {
    const id = `job_${uniq("q").replace(/-/g, "")}`;
    const e = usageEvent(id, { account_id: "acct_queue", key_id: "key_q", task: "image_edit", units_milli: 1234, images: 1, steps: 8 });
    const batch = createMessageBatch("dimoo-usage", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: e },
      { id: "m2", timestamp: new Date(), attempts: 2, body: e },
      { id: "m3", timestamp: new Date(), attempts: 1, body: { nope: true } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch as MessageBatch<unknown>, testEnv);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m1", "m2", "m3"]);
    expect(result.retryMessages).toEqual([]);
    const again = createMessageBatch("dimoo-usage", [{ id: "m4", timestamp: new Date(), attempts: 3, body: e }]);
    await worker.queue(again as MessageBatch<unknown>, testEnv);
    const rows = await testEnv.DB.prepare("SELECT * FROM usage_events WHERE id = ?").bind(id).all();
    expect(rows.results).toHaveLength(1);
    expect(rows.results[0]).toMatchObject({ account_id: "acct_queue", units_milli: 1234, task: "image_edit" });
  });

  it("the Account ledger is a strict state machine: commit once, no commit after release", async () => {
    const stub = accountStub(uniq("acct-sm"));
    const base = { keyId: "key_1", task: "image_generation" as const, milli: 10, concurrency: 2, monthlyUnits: 100 };
    expect((await stub.reserve("a", { ...base, jobId: "job_a" })).ok).toBe(true);
    expect((await stub.reserve("a", { ...base, jobId: "job_b" })).ok).toBe(true);
    expect(await stub.reserve("a", { ...base, jobId: "job_c" })).toMatchObject({ ok: false, reason: "concurrency", limit: 2, active: 2 });
    expect(await stub.commit({ jobId: "job_a", milli: 8, images: 1, steps: 2 })).toEqual({ changed: true, status: "committed" });
    expect(await stub.commit({ jobId: "job_a", milli: 8, images: 1, steps: 2 })).toEqual({ changed: false, status: "committed" });
    expect(await stub.release("job_a", "late")).toEqual({ changed: false, status: "committed" });
    expect(await stub.release("job_b", "failed")).toEqual({ changed: true, status: "released" });
    expect(await stub.commit({ jobId: "job_b", milli: 8, images: 1, steps: 2 })).toEqual({ changed: false, status: "released" });
    expect(await stub.commit({ jobId: "job_zzz", milli: 8, images: 1, steps: 2 })).toEqual({ changed: false, status: "missing" });
    expect(await stub.snapshot()).toMatchObject({ committedMilli: 8, reservedMilli: 0, activeSlots: 0 });
    expect(await stub.reserve("a", { ...base, jobId: "job_d", milli: 99_993 })).toMatchObject({ ok: false, reason: "quota", usedMilli: 8, limitMilli: 100_000 });
    expect(await stub.reserve("a", { ...base, jobId: "job_d", milli: 99_992 })).toMatchObject({ ok: true });
  });
});
