// /v1/chat/completions: image understanding with data URLs and remote URLs (size/time capped), streamed
// chat.completion.chunk events, and error shapes.
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { accountStub, bearer, call, callWith, createKey, dataUrl, isStandIn, json, parseSse, png, standInCalls, uniq } from "./support/helpers";

const standIn = isStandIn();
const ask = (url: string, extra: Record<string, unknown> = {}) => ({
  model: "lumina-dimoo",
  messages: [
    { role: "system", content: "Answer briefly." },
    { role: "user", content: [{ type: "text", text: "What is in this picture?" }, { type: "image_url", image_url: { url } }] },
  ],
  max_tokens: 64,
  ...extra,
});

describe("POST /v1/chat/completions", () => {
  it("answers about a data-URL image in OpenAI's chat.completion shape", async () => {
    const k = await createKey();
    const rid = uniq("chat");
    const res = await call("/v1/chat/completions", json(ask(dataUrl(await png(40, 30))), bearer(k.key, { "x-request-id": rid })));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; object: string; model: string; choices: { message: { role: string; content: string }; finish_reason: string }[]; usage: Record<string, number | string> };
    expect(body).toMatchObject({ object: "chat.completion", model: "lumina-dimoo" });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.choices[0].message.role).toBe("assistant");
    expect(body.choices[0].finish_reason).toMatch(/stop|length/);
    expect(body.usage).toMatchObject({ billing_unit: "megapixel_step" });
    expect(body.usage.total_tokens).toBe(Number(body.usage.prompt_tokens) + Number(body.usage.completion_tokens));
    if (standIn) {
      expect(body.choices[0].message.content).toContain("40x30");
      const [c] = await standInCalls(rid);
      expect(c).toMatchObject({ method: "Understand", images: 1, authorized: true });
      expect(c.prompt).toBe("Answer briefly.\nWhat is in this picture?");
    }
  });

  it("fetches a remote image_url (allowed private host in tests) and refuses private hosts otherwise", async () => {
    const k = await createKey();
    const remote = `${inject("orchestratorUrl")}/__standin/image.png`;
    const ok = await call("/v1/chat/completions", json(ask(remote), bearer(k.key)));
    expect(ok.status).toBe(200);
    if (standIn) expect(((await ok.json()) as { choices: { message: { content: string } }[] }).choices[0].message.content).toContain("64x48");
    const blocked = await callWith({ ALLOW_PRIVATE_URLS: "false" }, "/v1/chat/completions", json(ask(remote), bearer(k.key)));
    expect(blocked.status).toBe(400);
    expect(((await blocked.json()) as { error: { param: string; code: string } }).error).toMatchObject({ param: "messages.1.content.1.image_url.url", code: "invalid_url" });
    const missing = await call("/v1/chat/completions", json(ask(`${inject("orchestratorUrl")}/__standin/nothing.png`), bearer(k.key)));
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("image_fetch_failed");
  });

  it("gives one answer for every failed image_url fetch (network, status, redirect, non-image, timeout), naming the field", async () => {
    const k = await createKey();
    const base = `${inject("orchestratorUrl")}/__standin`;
    const urls = [`${inject("deadUrl")}/cat.png`, `${base}/nothing.png`, `${base}/redirect.png`, `${base}/calls`, `${base}/slow.png`];
    const answers = await Promise.all(
      urls.map(async (url) => {
        const res = await call("/v1/chat/completions", json(ask(url), bearer(k.key)));
        return { status: res.status, error: ((await res.json()) as { error: { message: string; param: string; code: string; type: string } }).error };
      }),
    );
    const param = "messages.1.content.1.image_url.url";
    for (const [i, a] of answers.entries()) {
      expect(a.status, urls[i]).toBe(400);
      expect(a.error, urls[i]).toEqual(answers[0].error);
    }
    expect(answers[0].error).toMatchObject({ type: "invalid_request_error", param, code: "image_fetch_failed" });
    expect(answers[0].error.message).toMatch(new RegExp(`^could not fetch an image from ${param.replaceAll(".", "\\.")} `));
    expect(await accountStub(k.account_id).ledger()).toEqual([]);
  });

  it("streams chat.completion.chunk events, usage when asked, and [DONE]", async () => {
    const k = await createKey();
    const res = await call("/v1/chat/completions", json(ask(dataUrl(await png(16, 16)), { stream: true, stream_options: { include_usage: true } }), bearer(k.key)));
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = parseSse(await res.text());
    expect(events.at(-1)?.data).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    expect(text.length).toBeGreaterThan(0);
    expect(chunks.at(-2).choices[0].finish_reason).toMatch(/stop|length/);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { billing_unit: "megapixel_step" } });
  });

  it("requires an image, valid data URLs and well-formed messages", async () => {
    const k = await createKey();
    const noImage = await call("/v1/chat/completions", json({ messages: [{ role: "user", content: "hello" }] }, bearer(k.key)));
    expect(((await noImage.json()) as { error: { param: string } }).error.param).toBe("messages");
    const badUrl = await call("/v1/chat/completions", json(ask("data:image/png;base64,!!!"), bearer(k.key)));
    expect(badUrl.status).toBe(400);
    const badRole = await call("/v1/chat/completions", json({ messages: [{ role: "robot", content: "x" }] }, bearer(k.key)));
    expect(((await badRole.json()) as { error: { param: string } }).error.param).toBe("messages.0.role");
    const empty = await call("/v1/chat/completions", json({ messages: [] }, bearer(k.key)));
    expect(((await empty.json()) as { error: { param: string } }).error.param).toBe("messages");
  });
});
