// The outbound URL policy (edge/src/lib/url-policy.ts) for image URLs and webhook URLs: every spelling of a
// special-purpose address or local name is refused, public hosts pass, and webhook URLs are checked again
// at every delivery.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { checkUrl, isPrivateHost } from "../../edge/src/lib/url-policy";
import { deliverWebhook } from "../../edge/src/webhooks";
import { bearer, callWith, createKey, json, testEnv, uniq, waitFor } from "./support/helpers";

const REFUSED = [
  // the reported bypasses
  "localhost.",
  "metadata.google.internal.",
  "[::127.0.0.1]",
  "[64:ff9b::a9fe:a9fe]",
  "[fec0::1]",
  "198.18.0.1",
  "127.0.0.1.nip.io",
  // IPv4 spellings the URL parser turns into dotted decimal
  "2130706433",
  "0x7f000001",
  "0177.0.0.1",
  "0x7f.1",
  "127.1",
  // every special-purpose IPv4 block
  "0.0.0.0",
  "10.0.0.1",
  "100.64.0.1",
  "100.127.255.254",
  "127.255.255.255",
  "169.254.169.254",
  "172.31.255.255",
  "192.0.0.170",
  "192.0.2.1",
  "192.88.99.1",
  "192.168.1.1",
  "198.19.255.255",
  "198.51.100.7",
  "203.0.113.9",
  "224.0.0.1",
  "239.255.255.250",
  "240.0.0.1",
  "255.255.255.255",
  // IPv6: unspecified, loopback, mapped, compatible, NAT64 of private, local-use NAT64, 6to4 of loopback,
  // discard, Teredo, benchmarking, documentation, unique-local, link-local, site-local, multicast
  "[::]",
  "[::1]",
  "[::ffff:127.0.0.1]",
  "[::ffff:8.8.8.8]",
  "[::8.8.8.8]",
  "[64:ff9b::10.0.0.1]",
  "[64:ff9b:1::808:808]",
  "[2002:7f00:1::]",
  "[100::1]",
  "[2001::1]",
  "[2001:2::1]",
  "[2001:db8::1]",
  "[3fff::1]",
  "[fc00::1]",
  "[fd12:3456::1]",
  "[fe80::1]",
  "[ff02::1]",
  // local and metadata names, in any case or width
  "localhost",
  "LOCALHOST",
  "ｌｏｃａｌｈｏｓｔ",
  "api.localhost",
  "metadata.google.internal",
  "printer.local",
  "metadata",
  "db.svc",
  "router.home.arpa",
  // names that embed a refused address before a wildcard-DNS suffix
  "app.10.0.0.1.sslip.io",
  "127-0-0-1.sslip.io",
  "app-169-254-169-254.nip.io",
  "7f000001.nip.io",
  "--1.sslip.io",
  "fe80--1.sslip.io",
  "127.0.0.1.example.com",
  // names that always resolve to loopback
  "localtest.me",
  "app.lvh.me",
];

const ALLOWED = ["example.com", "images.example.org.", "8.8.8.8", "172.32.0.1", "100.128.0.1", "[2606:4700:4700::1111]", "[64:ff9b::808:808]", "[2002:808:808::1]", "8.8.8.8.nip.io", "cdn-1-2-3-4.example.net"];

describe("outbound URL policy", () => {
  it("refuses every spelling of a special-purpose address or local name, and lets public hosts through", () => {
    for (const h of REFUSED) expect(isPrivateHost(h), h).toBe(true);
    for (const h of ALLOWED) expect(isPrivateHost(h), h).toBe(false);
    for (const h of REFUSED) expect(checkUrl(`https://${h}/x.png`, { allowPrivate: false }), h).toEqual({ ok: false, reason: "must point to a public host" });
  });

  it("wants https without credentials; the development flag allows http and private hosts, never credentials", () => {
    const strict = { allowPrivate: false };
    expect(checkUrl("https://example.com/a.png", strict).ok).toBe(true);
    expect(checkUrl("http://example.com/a.png", strict)).toEqual({ ok: false, reason: "must be an https URL" });
    expect(checkUrl("ftp://example.com/a.png", strict)).toEqual({ ok: false, reason: "must be an https URL" });
    expect(checkUrl("https://user:pw@example.com/a.png", strict)).toEqual({ ok: false, reason: "must not contain credentials" });
    expect(checkUrl("not a url", strict)).toEqual({ ok: false, reason: "is not a valid URL" });
    const dev = { allowPrivate: true };
    expect(checkUrl("http://127.0.0.1:8787/a.png", dev).ok).toBe(true);
    expect(checkUrl("http://user@127.0.0.1/a.png", dev)).toEqual({ ok: false, reason: "must not contain credentials" });
  });

  it("answers 400 invalid_url naming the field for image URLs and webhook URLs, before anything is reserved", async () => {
    const k = await createKey();
    const strict = { ALLOW_PRIVATE_URLS: "false" };
    for (const host of ["localhost.", "[::127.0.0.1]", "[64:ff9b::a9fe:a9fe]", "127.0.0.1.nip.io", "0x7f.1"]) {
      const chat = await callWith(strict, "/v1/chat/completions", json({ messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: `https://${host}/cat.png` } }] }] }, bearer(k.key)));
      expect(chat.status, host).toBe(400);
      expect(((await chat.json()) as { error: { param: string; code: string } }).error, host).toMatchObject({ param: "messages.0.content.0.image_url.url", code: "invalid_url" });
      const edit = await callWith(strict, "/v1/images/edits", json({ prompt: "x", image: `https://${host}/cat.png` }, bearer(k.key)));
      expect(((await edit.json()) as { error: { param: string; code: string } }).error, host).toMatchObject({ param: "image", code: "invalid_url" });
      const job = await callWith(strict, "/v1/jobs", json({ prompt: "x", size: "64x64", webhook_url: `https://${host}/hook` }, bearer(k.key)));
      expect(((await job.json()) as { error: { param: string; code: string } }).error, host).toMatchObject({ param: "webhook_url", code: "invalid_url" });
    }
  });

  it("checks a webhook URL again at every delivery and never follows a redirect", async () => {
    const calls: string[] = [];
    const fake = (async (input: RequestInfo | URL) => {
      calls.push(String(input));
      return new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } });
    }) as typeof fetch;
    const refused = await deliverWebhook("https://metadata.google.internal./hook", "whsec_AAAA", "job_x.succeeded", {}, { allowPrivate: false }, fake);
    expect(refused).toMatchObject({ ok: false, refused: true, error: "webhook_url must point to a public host" });
    expect(calls).toEqual([]);
    const redirected = await deliverWebhook("https://hooks.example.com/x", "whsec_AAAA", "job_x.succeeded", {}, { allowPrivate: false }, fake);
    expect(redirected).toMatchObject({ ok: false, status: 302 });
    expect(calls).toEqual(["https://hooks.example.com/x"]);
  });

  it("a job whose stored webhook URL the policy refuses fails its delivery at once, without retries", async () => {
    const id = `job_${uniq("wh").replace(/[^A-Za-z0-9]/g, "")}`;
    const stub = testEnv.JOB.get(testEnv.JOB.idFromName(id));
    // stored before the policy could see it (as a job created under an older policy would be)
    const hook = `${inject("webhookUrl")}/hooks/${id}`.replace("http://", "http://user:secret@");
    await stub.create({ id, accountId: "acct_policy", keyId: "key_policy", origin: "http://edge.test", requestId: id, webhookUrl: hook, work: { type: "image_generation", spec: { kind: "image_generation", task: "text_to_image", prompt: "p", width: 64, height: 64, steps: 1, n: 1, seed: 1, outputFormat: "png", partialImages: 0, inputPixels: 0 }, inputs: [] } });
    const done = await waitFor(async () => {
      const e = await stub.events("acct_policy", 0);
      return e?.events.find((x) => x.type === "webhook.failed");
    }, 15_000, 100);
    expect(JSON.parse(done.data)).toMatchObject({ attempts: 1, error: "webhook_url must not contain credentials" });
  });
});
