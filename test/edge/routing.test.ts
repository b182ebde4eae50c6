// Balanced routing (ORCHESTRATOR_ROUTING=balanced): each URL is a load balancer that health-checks the hosts
// itself, so the isolate sends calls without probing, fails over past a balancer that refuses, and
// still answers 503 with nothing charged when none takes the call.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { accountStub, bearer, callWith, createKey, json, standInCalls, uniq } from "./support/helpers";

const secondary = inject("secondaryUrl");
const unhealthy = inject("unhealthyUrl");
const dead = inject("deadUrl");

const gen = (key: string, rid: string) => json({ prompt: "routing test", size: "64x64", steps: 2 }, bearer(key, { "x-request-id": rid }));

describe("balanced routing", () => {
  it("sends the call without a Health probe (a host whose Health says not ready still gets it)", async () => {
    const k = await createKey();
    const rid = uniq("balanced-noprobe");
    const res = await callWith({ ORCHESTRATOR_URLS: unhealthy, ORCHESTRATOR_ROUTING: "balanced" }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status).toBe(200);
    expect(await standInCalls(rid, unhealthy)).toHaveLength(1);
  });

  it("retries past a balancer that does not take the call", async () => {
    const k = await createKey();
    const rid = uniq("balanced-failover");
    const res = await callWith({ ORCHESTRATOR_URLS: `${dead},${secondary}`, ORCHESTRATOR_ROUTING: "balanced" }, "/v1/images/generations", gen(k.key, rid));
    expect(res.status).toBe(200);
    expect(await standInCalls(rid, secondary)).toHaveLength(1);
  });

  it("answers 503 with Retry-After and charges nothing when no balancer takes the call", async () => {
    const k = await createKey();
    const res = await callWith({ ORCHESTRATOR_URLS: dead, ORCHESTRATOR_ROUTING: "balanced" }, "/v1/images/generations", gen(k.key, uniq("balanced-none")));
    expect(res.status).toBe(503);
    expect(res.headers.get("retry-after")).toBe("5");
    expect(await accountStub(k.account_id).snapshot()).toMatchObject({ committedMilli: 0, reservedMilli: 0, activeSlots: 0 });
  });

  it("GET /healthz asks each balancer once for its Health", async () => {
    const ok = await callWith({ ORCHESTRATOR_URLS: secondary, ORCHESTRATOR_ROUTING: "balanced" }, "/healthz");
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ status: "ok", backends: { configured: 1, ready: 1 } });
  });
});
