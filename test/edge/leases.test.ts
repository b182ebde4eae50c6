// Reservation leases and n-image slots: a reservation whose holder died is released by the Account alarm
// within one lease, a live holder's renewals keep it (and charge nothing), a late settle of an expired
// lease charges once and never releases twice; a request for n images takes n concurrency slots.
import { describe, expect, it } from "vitest";
import { runDurableObjectAlarm } from "cloudflare:test";
import { accountStub, bearer, call, callWith, createKey, createPlan, isStandIn, json, png, standInCalls, uniq, waitFor } from "./support/helpers";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const base = { keyId: "key_1", task: "image_generation" as const, milli: 10, concurrency: 2, monthlyUnits: 100 };

describe("reservation leases (Account object)", () => {
  it("releases a reservation nobody renews once its lease ran out, freeing its slots and units", async () => {
    const stub = accountStub(uniq("acct-lease"));
    expect(await stub.reserve("a", { ...base, jobId: "job_dead", slots: 2, leaseMs: 150 })).toMatchObject({ ok: true, activeSlots: 2 });
    expect(await stub.reserve("a", { ...base, jobId: "job_next" })).toMatchObject({ ok: false, reason: "concurrency", limit: 2, active: 2, requested: 1 });
    // before the lease ends the alarm leaves it alone
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.snapshot()).toMatchObject({ activeSlots: 2, reservedMilli: 10 });
    await sleep(200);
    await runDurableObjectAlarm(stub);
    expect(await stub.snapshot()).toMatchObject({ activeSlots: 0, reservedMilli: 0, committedMilli: 0 });
    expect((await stub.ledger("job_dead"))[0]).toMatchObject({ status: "released", release_reason: "lease expired" });
    expect(await stub.reserve("a", { ...base, jobId: "job_next", slots: 2 })).toMatchObject({ ok: true });
  });

  it("a renewal extends the lease and charges nothing", async () => {
    const stub = accountStub(uniq("acct-renew"));
    await stub.reserve("a", { ...base, jobId: "job_live", leaseMs: 300 });
    for (let i = 0; i < 4; i++) {
      await sleep(120);
      expect(await stub.renew("job_live")).toEqual({ status: "reserved", leaseMs: 300 });
      await runDurableObjectAlarm(stub);
    }
    // 480 ms after the reservation, well past one lease, it still holds
    expect((await stub.ledger("job_live"))[0]).toMatchObject({ status: "reserved", committed_milli: 0 });
    expect(await stub.snapshot()).toMatchObject({ activeSlots: 1, reservedMilli: 10, committedMilli: 0, outbox: 0 });
    expect(await stub.usage("2000-01-01", "2999-12-31")).toEqual([]);
    expect(await stub.renew("job_unknown")).toEqual({ status: "missing" });
  });

  it("a late settle of an expired lease charges once and never releases twice", async () => {
    const stub = accountStub(uniq("acct-late"));
    await stub.reserve("a", { ...base, jobId: "job_slow", leaseMs: 50 });
    await stub.reserve("a", { ...base, jobId: "job_gone", leaseMs: 50 });
    await sleep(80);
    await runDurableObjectAlarm(stub);
    expect(await stub.renew("job_slow")).toEqual({ status: "released" });
    // the holder of job_slow was alive after all and finished: charged like any commit, once
    expect(await stub.commit({ jobId: "job_slow", milli: 7, images: 1, steps: 2 })).toEqual({ changed: true, status: "committed" });
    expect(await stub.commit({ jobId: "job_slow", milli: 7, images: 1, steps: 2 })).toEqual({ changed: false, status: "committed" });
    // the holder of job_gone failed: its release finds the row released already and changes nothing
    expect(await stub.release("job_gone", "failed: backend_error")).toEqual({ changed: false, status: "released" });
    expect((await stub.ledger("job_gone"))[0]).toMatchObject({ status: "released", release_reason: "lease expired" });
    expect(await stub.snapshot()).toMatchObject({ committedMilli: 7, reservedMilli: 0, activeSlots: 0 });
    // the usage event is written for the late commit too
    expect((await stub.usage("2000-01-01", "2999-12-31")).map((r) => r.units_milli)).toEqual([7]);
    // a release for any other reason stays final: no commit after it
    await stub.reserve("a", { ...base, jobId: "job_cancelled" });
    await stub.release("job_cancelled", "cancelled by client");
    expect(await stub.commit({ jobId: "job_cancelled", milli: 7, images: 1, steps: 2 })).toEqual({ changed: false, status: "released" });
  });
});

describe("reservation leases (requests)", () => {
  it.skipIf(!isStandIn())("a running generation renews its lease, streamed or not, charges nothing meanwhile and commits once at the end", async () => {
    const k = await createKey();
    const acct = accountStub(k.account_id);
    for (const stream of [false, true]) {
      const rid = uniq(`renewed-${stream}`);
      // 12 steps x 80 ms: about 1 s, more than three 300 ms leases
      const pending = callWith(
        { RESERVATION_LEASE_SECONDS: "0.3" },
        "/v1/images/generations",
        json({ prompt: "slow [standin:delay=80]", size: "64x64", steps: 12, stream }, bearer(k.key, { "x-request-id": rid })),
      );
      await waitFor(async () => (await standInCalls(rid)).length > 0);
      const [row] = (await acct.ledger()).filter((r) => r.status === "reserved");
      let checks = 0;
      for (;;) {
        await sleep(150);
        await runDurableObjectAlarm(acct);
        const now = (await acct.ledger(row.job_id))[0];
        if (now.status !== "reserved") break;
        checks++;
        expect(now.committed_milli, "a renewal charges nothing").toBe(0);
      }
      expect(checks, "the work outlived several leases").toBeGreaterThanOrEqual(3);
      expect((await pending).status).toBe(200);
      expect((await acct.ledger(row.job_id))[0]).toMatchObject({ status: "committed", release_reason: null, committed_milli: 50 }); // 64x64 x 12 steps
    }
    expect(await acct.snapshot()).toMatchObject({ activeSlots: 0, reservedMilli: 0, committedMilli: 100 });
  });

  it("an async job's Job object renews the reservation made at its creation", async () => {
    const k = await createKey();
    const acct = accountStub(k.account_id);
    const res = await callWith({ RESERVATION_LEASE_SECONDS: "0.3" }, "/v1/jobs", json({ prompt: "slow [standin:delay=80]", size: "64x64", steps: 12 }, bearer(k.key)));
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    let checks = 0;
    for (;;) {
      await sleep(150);
      await runDurableObjectAlarm(acct);
      const row = (await acct.ledger(id))[0];
      if (row.status !== "reserved") break;
      checks++;
    }
    expect(checks).toBeGreaterThanOrEqual(3);
    expect((await acct.ledger(id))[0]).toMatchObject({ status: "committed", release_reason: null, committed_milli: 50 });
  });
});

describe("n images take n concurrency slots", () => {
  it("refuses n above the plan's concurrency with a 400 naming n, before reserving", async () => {
    await createPlan("test-two-slots", { concurrency: 2 });
    const k = await createKey("test-two-slots");
    const gen = await call("/v1/images/generations", json({ prompt: "x", size: "64x64", steps: 1, n: 3 }, bearer(k.key)));
    expect(gen.status).toBe(400);
    expect(((await gen.json()) as { error: { param: string; code: string; message: string } }).error).toMatchObject({ param: "n", code: "n_not_allowed" });
    const fd = new FormData();
    fd.append("prompt", "x");
    fd.append("n", "4");
    fd.append("image", new File([await png(32, 32)], "a.png", { type: "image/png" }));
    const edit = await call("/v1/images/edits", { method: "POST", headers: bearer(k.key), body: fd });
    expect(((await edit.json()) as { error: { param: string } }).error.param).toBe("n");
    const job = await call("/v1/jobs", json({ prompt: "x", size: "64x64", steps: 1, n: 3 }, bearer(k.key)));
    expect(job.status).toBe(400);
    expect(((await job.json()) as { error: { param: string } }).error.param).toBe("n");
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });

  it.skipIf(!isStandIn())("a request for n images takes n slots: 429 naming the limit while they are taken, for generations and jobs", async () => {
    await createPlan("test-four-slots", { concurrency: 4 });
    const k = await createKey("test-four-slots");
    const rid = uniq("three");
    const three = call("/v1/images/generations", json({ prompt: "slow [standin:delay=40]", size: "64x64", steps: 15, n: 3 }, bearer(k.key, { "x-request-id": rid })));
    await waitFor(async () => (await standInCalls(rid)).length === 3);
    expect(await accountStub(k.account_id).snapshot()).toMatchObject({ activeSlots: 3 });
    const two = await call("/v1/images/generations", json({ prompt: "two", size: "64x64", steps: 1, n: 2 }, bearer(k.key)));
    expect(two.status).toBe(429);
    expect(two.headers.get("ratelimit-policy")).toContain('"concurrency";q=4');
    const e = ((await two.json()) as { error: { code: string; message: string } }).error;
    expect(e.code).toBe("concurrency_limit_exceeded");
    expect(e.message).toContain("limit 4 images at a time; this request needs 2 (one per image) and 1 are free");
    const jobTwo = await call("/v1/jobs", json({ prompt: "two", size: "64x64", steps: 1, n: 2 }, bearer(k.key)));
    expect(jobTwo.status).toBe(429);
    // one image still fits
    const one = await call("/v1/images/generations", json({ prompt: "one", size: "64x64", steps: 1, n: 1 }, bearer(k.key)));
    expect(one.status).toBe(200);
    const done = await three;
    expect(done.status).toBe(200);
    await done.text(); // the slots are freed once the answer's body has ended
    const after = await call("/v1/images/generations", json({ prompt: "two", size: "64x64", steps: 1, n: 2 }, bearer(k.key)));
    expect(after.status).toBe(200);
    expect(await accountStub(k.account_id).snapshot()).toMatchObject({ activeSlots: 0 });
  });
});
