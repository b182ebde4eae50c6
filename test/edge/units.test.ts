// Pure pieces, run in workerd: key format, GCRA, Standard Webhooks signing, signed URLs, image sniffing,
// billing units.
import { describe, expect, it } from "vitest";
import { checkKeyFormat, generateKey, keyDigest, keyStart, KEY_PATTERN } from "../../edge/src/keys";
import { gcra } from "../../edge/src/durable/gcra";
import { accountWebhookSecret, signWebhook, verifyWebhook } from "../../edge/src/webhooks";
import { checkSignature, signedFileUrl } from "../../edge/src/signed-urls";
import { imageInfo } from "../../edge/src/lib/images";
import { imageUnitsMilli, understandUnitsMilli, usageEvent } from "../../edge/src/metering";
import { isPrivateHost } from "../../edge/src/services/inputs";
import { hmacSha256 } from "../../edge/src/lib/crypto";
import { toBase64 } from "../../edge/src/lib/encoding";
import { png } from "./support/helpers";

describe("API key format", () => {
  it("has a distinct prefix, a high-entropy base58 body and a valid checksum", async () => {
    const k = generateKey("live");
    expect(k).toMatch(/^dmo_live_[1-9A-HJ-NP-Za-km-z]{38}$/);
    expect(KEY_PATTERN.test(k)).toBe(true);
    expect(checkKeyFormat(k)).toEqual({ ok: true, mode: "live" });
    expect(checkKeyFormat(generateKey("test"))).toEqual({ ok: true, mode: "test" });
    const keys = new Set(Array.from({ length: 200 }, () => generateKey()));
    expect(keys.size).toBe(200);
    expect(keyStart(k)).toBe(k.slice(0, 13));
    expect(await keyDigest(k)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("rejects look-alikes offline: wrong prefix, bad alphabet, wrong length, altered character", () => {
    const k = generateKey();
    expect(checkKeyFormat(k.replace("dmo_live_", "sk_live_"))).toEqual({ ok: false, reason: "format" });
    expect(checkKeyFormat(k.slice(0, -1) + "0")).toEqual({ ok: false, reason: "format" }); // 0 is not base58
    expect(checkKeyFormat(k + "a")).toEqual({ ok: false, reason: "format" });
    const body = k.split("");
    const i = 12;
    body[i] = body[i] === "a" ? "b" : "a";
    expect(checkKeyFormat(body.join(""))).toEqual({ ok: false, reason: "checksum" });
  });
});

describe("GCRA", () => {
  it("allows a burst, then spaces requests by the emission interval", () => {
    let tat = 0;
    const t0 = 1_000_000;
    const results = [];
    for (let i = 0; i < 5; i++) {
      const r = gcra(t0, tat, 60, 60_000, 3);
      results.push(r);
      if (r.allowed) tat = r.tatMs;
    }
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false]);
    expect(results.map((r) => r.remaining)).toEqual([2, 1, 0, 0, 0]);
    expect(results[3].retryAfterMs).toBe(1000);
    expect(gcra(t0 + 1000, tat, 60, 60_000, 3).allowed).toBe(true);
  });
});

describe("Standard Webhooks", () => {
  it("signs v1,base64(HMAC(secret, id.ts.body)) and verifies with a tolerance window", async () => {
    const whsec = await accountWebhookSecret("s3cret", "acct_1");
    expect(whsec).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(await accountWebhookSecret("s3cret", "acct_2")).not.toBe(whsec);
    const body = JSON.stringify({ hello: "world" });
    const sig = await signWebhook(whsec, "msg_1", 1_700_000_000, body);
    const expected = `v1,${toBase64(await hmacSha256(Uint8Array.from(atob(whsec.slice(6)), (c) => c.charCodeAt(0)), `msg_1.1700000000.${body}`))}`;
    expect(sig).toBe(expected);
    const headers = new Headers({ "webhook-id": "msg_1", "webhook-timestamp": "1700000000", "webhook-signature": `v1,bogus ${sig}` });
    expect(await verifyWebhook(whsec, headers, body, 1_700_000_100)).toBe(true);
    expect(await verifyWebhook(whsec, headers, body + " ", 1_700_000_100)).toBe(false);
    expect(await verifyWebhook(whsec, headers, body, 1_700_000_000 + 301)).toBe(false);
  });
});

describe("signed result URLs", () => {
  it("verify until they expire and not after tampering", async () => {
    const now = Date.now();
    const url = new URL(await signedFileUrl("k", "https://edge", "results/a/job_1/0.png", 60, now));
    expect(url.pathname).toBe("/v1/files/results/a/job_1/0.png");
    const exp = url.searchParams.get("expires")!;
    const sig = url.searchParams.get("signature")!;
    expect(await checkSignature("k", "results/a/job_1/0.png", exp, sig, now)).toBe("ok");
    expect(await checkSignature("k", "results/a/job_1/0.png", exp, sig, now + 61_000)).toBe("expired");
    expect(await checkSignature("k", "results/a/job_1/1.png", exp, sig, now)).toBe("invalid");
    expect(await checkSignature("k", "results/a/job_1/0.png", String(Number(exp) + 1000), sig, now)).toBe("invalid");
    expect(await checkSignature("other", "results/a/job_1/0.png", exp, sig, now)).toBe("invalid");
  });
});

describe("image headers and billing units", () => {
  it("reads PNG dimensions without decoding", async () => {
    expect(imageInfo(await png(40, 24))).toEqual({ type: "png", width: 40, height: 24 });
    expect(imageInfo(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });

  it("charges megapixel-steps in integer milli-units", () => {
    expect(imageUnitsMilli(1024, 1024, 64)).toBe(67109); // 1.048576 MP x 64 steps = 67.108864 MPS
    expect(imageUnitsMilli(512, 512, 32, 4)).toBe(33555);
    expect(understandUnitsMilli(1024 * 1024, 256)).toBe(268436);
    const e = usageEvent("job_x", { account_id: "a", key_id: "k", task: "image_generation", units_milli: 1500, images: 1, steps: 8 }, new Date(0));
    expect(e).toMatchObject({ specversion: "1.0", id: "job_x", source: "dimoo-edge", subject: "a", time: "1970-01-01T00:00:00.000Z", data: { units: 1.5, unit: "megapixel_step" } });
  });

  it("blocks private hosts for outbound fetches", () => {
    for (const h of ["localhost", "127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "[::1]", "fd00::1", "metadata.internal"]) expect(isPrivateHost(h), h).toBe(true);
    for (const h of ["example.com", "8.8.8.8", "172.32.0.1"]) expect(isPrivateHost(h), h).toBe(false);
  });
});
