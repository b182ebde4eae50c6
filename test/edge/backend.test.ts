// Orchestrator pool: Connect over fetch with the service token, health checks, failover to the next host,
// and 503 + Retry-After with nothing charged when no host takes the call.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { accountStub, bearer, callWith, createKey, isStandIn, json, parseSse, standInCalls, uniq } from "./support/helpers";

const standIn = isStandIn();
const primary = inject("orchestratorUrl");
const secondary = inject("secondaryUrl");
const unhealthy = inject("unhealthyUrl");
const dead = inject("deadUrl");
const slowHealth = inject("slowHealthUrl");

const gen = (key: string, rid: string, extra: Record<string, unknown> = {}) => json({ prompt: "pool test", size: "64x64", steps: 2, ...extra }, bearer(key, { "x-request-id": rid }));

describe("orchestrator pool", () => {
  it("fails over from an unreachable host to a ready one", async () => {
    const k = await createKey();
    const rid = uniq("failover");
    const res = await callWith({ ORCHESTRATOR_URLS: `${dead}, ${secondary}` }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status).toBe(200);
    const calls = await standInCalls(rid, secondary);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ server: "secondary", authorized: true });
  });

  it("skips a host whose Health says not ready", async () => {
    const k = await createKey();
    const rid = uniq("unhealthy");
    const res = await callWith({ ORCHESTRATOR_URLS: `${unhealthy},${primary}` }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status).toBe(200);
    expect(await standInCalls(rid, unhealthy)).toEqual([]);
    if (standIn) expect(await standInCalls(rid, primary)).toHaveLength(1);
  });

  it("answers 503 with Retry-After and charges nothing when no host is reachable", async () => {
    const k = await createKey();
    for (const urls of [dead, unhealthy, `${dead},${unhealthy}`, ""]) {
      const res = await callWith({ ORCHESTRATOR_URLS: urls }, "/v1/images/generations", gen(k.key, uniq("none")));
      expect(res.status, urls).toBe(503);
      expect(res.headers.get("retry-after"), urls).toBe("5");
      expect(((await res.json()) as { error: { type: string; code: string } }).error).toMatchObject({ type: "service_unavailable", code: "backend_unavailable" });
    }
    const ledger = await accountStub(k.account_id).ledger();
    expect(ledger.every((r) => r.status === "released" && r.committed_milli === 0)).toBe(true);
    expect(await accountStub(k.account_id).snapshot()).toMatchObject({ committedMilli: 0, reservedMilli: 0, activeSlots: 0 });
  });

  it("still calls a host whose Health timed out when no host is ready (busy is not down); /healthz does not count it", async () => {
    const k = await createKey();
    const rid = uniq("slowhealth");
    const res = await callWith({ ORCHESTRATOR_URLS: slowHealth }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status, await res.clone().text()).toBe(200);
    const calls = (await standInCalls(rid, slowHealth)).filter((c) => c.method === "Generate");
    expect(calls).toHaveLength(1);
    // a ready host still goes first
    const rid2 = uniq("slowhealth2");
    expect((await callWith({ ORCHESTRATOR_URLS: `${slowHealth},${secondary}` }, "/v1/images/generations", gen(k.key, rid2))).status).toBe(200);
    expect(await standInCalls(rid2, slowHealth)).toEqual([]);
    expect(await standInCalls(rid2, secondary)).toHaveLength(1);
    const hz = await callWith({ ORCHESTRATOR_URLS: slowHealth }, "/healthz");
    expect(hz.status).toBe(503);
  });

  it("sends the service token; a wrong token is refused by the orchestrator and becomes a 503", async () => {
    const k = await createKey();
    const rid = uniq("token");
    const res = await callWith({ ORCHESTRATOR_URLS: secondary, ORCHESTRATOR_TOKEN: "wrong" }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status).toBe(503);
    const all = (await (await fetch(`${secondary}/__standin/calls`)).json()) as { method: string; authorized: boolean }[];
    expect(all.some((c) => c.method === "Health" && !c.authorized)).toBe(true);
    expect(await standInCalls(rid, secondary)).toEqual([]);
  });

  it.skipIf(!standIn)("turns RESOURCE_EXHAUSTED into 503 with the orchestrator's RetryInfo", async () => {
    const k = await createKey();
    const res = await callWith({ ORCHESTRATOR_URLS: primary }, "/v1/images/generations", gen(k.key, uniq("busy"), { prompt: "busy [standin:fail=exhausted]" }));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("2");
  });

  it("streams through a failed-over host as well", async () => {
    const k = await createKey();
    const res = await callWith({ ORCHESTRATOR_URLS: `${dead},${secondary}` }, "/v1/images/generations", gen(k.key, uniq("sfail"), { stream: true, steps: 3 }));
    const events = parseSse(await res.text());
    expect(events.filter((e) => e.event === "image_generation.progress")).toHaveLength(3);
    expect(events.at(-1)!.event).toBe("image_generation.completed");
  });

  it("GET /healthz reports how many hosts are ready (never their addresses)", async () => {
    const ok = await callWith({ ORCHESTRATOR_URLS: `${primary},${unhealthy}` }, "/healthz");
    expect(ok.status).toBe(200);
    const body = await ok.text();
    expect(JSON.parse(body)).toEqual({ status: "ok", backends: { configured: 2, ready: 1 } });
    expect(body).not.toContain("127.0.0.1");
    const down = await callWith({ ORCHESTRATOR_URLS: dead }, "/healthz");
    expect(down.status).toBe(503);
  });
});
