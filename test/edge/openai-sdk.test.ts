// The official `openai` npm package against the edge (its fetch routed into the Worker): generate an image
// (b64 and url), edit one with a mask, describe one, streamed and not; errors surface as typed SDK errors.
import { describe, expect, it } from "vitest";
import OpenAI, { toFile } from "openai";
import { fromBase64 } from "../../edge/src/lib/encoding";
import { imageInfo } from "../../edge/src/lib/images";
import { BASE, call, createKey, createPlan, dataUrl, png } from "./support/helpers";

const client = (apiKey: string) =>
  new OpenAI({
    apiKey,
    baseURL: `${BASE}/v1`,
    maxRetries: 0,
    fetch: (url: RequestInfo | URL, init?: RequestInit) => call(String(url).slice(BASE.length), init),
  });

// DiMOO extensions (steps) ride along as extra body fields.
const small = { size: "64x64", steps: 2 } as unknown as { size: "1024x1024" };

describe("official openai SDK", () => {
  it("images.generate: b64_json and url", async () => {
    const k = await createKey();
    const ai = client(k.key);
    const r = await ai.images.generate({ model: "lumina-dimoo", prompt: "a watercolor boat", n: 2, ...small });
    expect(r.data).toHaveLength(2);
    expect(imageInfo(fromBase64(r.data![0].b64_json!))).toMatchObject({ type: "png", width: 64, height: 64 });
    expect(r.usage).toBeDefined();
    const u = await ai.images.generate({ model: "lumina-dimoo", prompt: "a boat", response_format: "url", ...small });
    expect(u.data![0].url).toContain("/v1/files/results/");
  });

  it("images.generate with stream: true yields progress, partial and completed events", async () => {
    const k = await createKey();
    const stream = await client(k.key).images.generate({ model: "lumina-dimoo", prompt: "streamed", stream: true, partial_images: 1, size: "64x64", steps: 4 } as unknown as OpenAI.Images.ImageGenerateParamsStreaming);
    const types: string[] = [];
    for await (const ev of stream) types.push(ev.type);
    expect(types.filter((t) => t === "image_generation.progress" as string)).toHaveLength(4);
    expect(types.at(-1)).toBe("image_generation.completed");
  });

  it("images.edit with an image and a mask (multipart)", async () => {
    const k = await createKey();
    const image = await toFile(await png(48, 32), "photo.png", { type: "image/png" });
    const mask = await toFile(await png(48, 32, (x) => (x < 24 ? 0 : 255)), "mask.png", { type: "image/png" });
    const r = await client(k.key).images.edit({ model: "lumina-dimoo", image, mask, prompt: "replace the left half with the sea", ...({ steps: 2 } as object) } as OpenAI.Images.ImageEditParamsNonStreaming);
    expect(imageInfo(fromBase64(r.data![0].b64_json!))).toMatchObject({ width: 48, height: 32 });
    const two = await client(k.key).images.edit({ model: "lumina-dimoo", image: [image, await toFile(await png(48, 32), "b.png", { type: "image/png" })], prompt: "merge", ...({ steps: 2, task: "style" } as object) } as OpenAI.Images.ImageEditParamsNonStreaming);
    expect(two.data).toHaveLength(1);
  });

  it("chat.completions.create describes an image, streamed and not", async () => {
    const k = await createKey();
    const ai = client(k.key);
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "user", content: [{ type: "text", text: "Describe it." }, { type: "image_url", image_url: { url: dataUrl(await png(32, 32)) } }] },
    ];
    const r = await ai.chat.completions.create({ model: "lumina-dimoo", messages, max_tokens: 32 });
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    expect(r.usage!.total_tokens).toBeGreaterThan(0);
    const stream = await ai.chat.completions.create({ model: "lumina-dimoo", messages, max_tokens: 32, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: unknown;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage ??= chunk.usage ?? undefined;
    }
    expect(text).toBe(r.choices[0].message.content);
    expect(usage).toBeDefined();
  });

  it("surfaces edge errors as the SDK's typed errors with request ids", async () => {
    const bad = client("dmo_live_1111111111111111111111111111111111111111");
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    await createPlan("sdk-rate", { rpm: 1, burst: 1 });
    const k = await createKey("sdk-rate");
    const ai = client(k.key);
    await ai.models.list();
    const err = await ai.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect((err as InstanceType<typeof OpenAI.APIError>).requestID).toMatch(/^req_/);
    expect((err as InstanceType<typeof OpenAI.APIError>).code).toBe("rate_limit_exceeded");
    const k2 = await createKey();
    const e400 = await client(k2.key).images.generate({ model: "lumina-dimoo", prompt: "x", size: "100x100" as "1024x1024" }).catch((e: unknown) => e);
    expect(e400).toBeInstanceOf(OpenAI.BadRequestError);
    expect((e400 as InstanceType<typeof OpenAI.APIError>).param).toBe("size");
  });
});
