// End to end through the real stack (embedded backend → orchestrator → `wrangler dev` edge) with the official
// `openai` npm package pointed at the local edge: images.generate (b64_json and url, streamed), images.edit
// with a mask, chat.completions.create with an image (streamed and not), typed errors, and the ML-Cache on
// and off.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import OpenAI, { toFile } from "openai";
import sharp from "sharp";
import { TRANSFORMER_CACHED_MODEL } from "../../gpu-backend/src/engine/contract";
import { TritonClient } from "../../gpu-backend/src/triton/client";
import { logsOnFailure, startTestStack, type TestStack } from "./support/stack";

let stack: TestStack | undefined;
let ai: OpenAI;

beforeAll(async () => {
  stack = await startTestStack();
  ai = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.edgeUrl}/v1`, maxRetries: 0, timeout: 60_000 });
});
afterAll(async () => {
  await stack?.stop();
});
afterEach((ctx) => logsOnFailure(stack, ctx));

// DiMOO's extensions (steps, seed, small sizes) ride along as extra body fields.
const ext = <T>(params: object) => params as T;
type GenParams = OpenAI.Images.ImageGenerateParamsNonStreaming;

async function pngInfo(b64OrBytes: string | Uint8Array) {
  const bytes = typeof b64OrBytes === "string" ? Buffer.from(b64OrBytes, "base64") : Buffer.from(b64OrBytes);
  expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
  const meta = await sharp(bytes).metadata();
  const stats = await sharp(bytes).stats();
  // not a flat image: the model's tokens went through the VQ decoder
  const spread = Math.max(...stats.channels.slice(0, 3).map((c) => c.max - c.min));
  return { width: meta.width, height: meta.height, spread };
}

async function testImage(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.set([(x * 255) / width, (y * 255) / height, 128], (y * width + x) * 3);
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** OpenAI's mask convention: transparent pixels are regenerated (here: the left half). */
async function leftHalfMask(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set([0, 0, 0, x < width / 2 ? 0 : 255], (y * width + x) * 4);
  return sharp(raw, { raw: { width, height, channels: 4 } }).png().toBuffer();
}

describe("the openai SDK against the local stack", () => {
  it("images.generate with b64_json: a real PNG of the asked size, its seed and megapixel-step usage; same seed, same image", async () => {
    const params = ext<GenParams>({ model: "lumina-dimoo", prompt: "a lighthouse at dusk", size: "128x64", steps: 4, seed: 1234 });
    const r = await ai.images.generate(params);
    expect(r.data).toHaveLength(1);
    const img = r.data![0] as OpenAI.Images.Image & { seed: number };
    expect(await pngInfo(img.b64_json!)).toMatchObject({ width: 128, height: 64 });
    expect((await pngInfo(img.b64_json!)).spread).toBeGreaterThan(0);
    expect(img.seed).toBe(1234);
    const usage = r.usage as unknown as { billing_unit: string; billing_units: number; steps: number; output_tokens: number };
    expect(usage).toMatchObject({ billing_unit: "megapixel_step", steps: 4, output_tokens: (128 / 16) * (64 / 16) });
    expect(usage.billing_units).toBeCloseTo((128 * 64 * 4) / 1e6, 3);
    const again = await ai.images.generate(params);
    expect(again.data![0].b64_json).toBe(img.b64_json);
  });

  it("images.generate with response_format url: a signed link that serves the image without a key, and refuses a forged one", async () => {
    const r = await ai.images.generate(ext<GenParams>({ prompt: "a boat", size: "64x64", steps: 2, response_format: "url", n: 2 }));
    expect(r.data).toHaveLength(2);
    const url = r.data![0].url!;
    expect(url.startsWith(`${stack!.edgeUrl}/v1/files/results/`)).toBe(true);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    expect(await pngInfo(new Uint8Array(await res.arrayBuffer()))).toMatchObject({ width: 64, height: 64 });
    const seeds = r.data!.map((d) => (d as { seed?: number }).seed!);
    expect(seeds[1]).toBe(seeds[0] + 1);
    const forged = new URL(url);
    forged.searchParams.set("signature", "A".repeat(43));
    expect((await fetch(forged)).status).toBe(403);
  });

  it("images.generate with stream: true yields every step, the previews and the completed image", async () => {
    const stream = await ai.images.generate({ prompt: "streamed", stream: true, partial_images: 2, ...ext<object>({ size: "64x64", steps: 6 }) } as OpenAI.Images.ImageGenerateParamsStreaming);
    const steps: number[] = [];
    let partials = 0;
    let completed: OpenAI.Images.ImageGenCompletedEvent | undefined;
    for await (const ev of stream) {
      if ((ev.type as string) === "image_generation.progress") steps.push((ev as unknown as { step: number }).step);
      else if (ev.type === "image_generation.partial_image") partials++;
      else if (ev.type === "image_generation.completed") completed = ev;
    }
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
    expect(partials).toBeGreaterThanOrEqual(1);
    expect(partials).toBeLessThanOrEqual(2);
    expect(completed).toBeDefined();
    expect(await pngInfo(completed!.b64_json)).toMatchObject({ width: 64, height: 64 });
  });

  it("images.generate with ml_cache on and off: both real PNGs of the asked size; the cached one ran on the stateful model", async () => {
    const triton = new TritonClient(stack!.tritonUrl!);
    const cachedRuns = async () => (await triton.modelStatistics(TRANSFORMER_CACHED_MODEL))[0]?.executionCount ?? 0;
    try {
      const before = await cachedRuns();
      const params = { model: "lumina-dimoo", prompt: "a lighthouse at dusk", size: "128x96", steps: 8, seed: 77 };
      const [off, on] = await Promise.all([ai.images.generate(ext<GenParams>({ ...params, ml_cache: false })), ai.images.generate(ext<GenParams>({ ...params, ml_cache: true }))]);
      for (const r of [off, on]) {
        const png = await pngInfo(r.data![0].b64_json!);
        expect(png).toMatchObject({ width: 128, height: 96 });
        expect(png.spread).toBeGreaterThan(0);
        expect(r.usage as unknown as { steps: number }).toMatchObject({ steps: 8 });
      }
      // Every step of the cached request was one call of the stateful model (the uncached one never calls it).
      expect((await cachedRuns()) - before).toBe(8);
    } finally {
      triton.close();
    }
  });

  it("images.edit with an image and a mask (multipart): the result keeps the input size", async () => {
    const image = await toFile(await testImage(96, 64), "photo.png", { type: "image/png" });
    const mask = await toFile(await leftHalfMask(96, 64), "mask.png", { type: "image/png" });
    const r = await ai.images.edit(ext<OpenAI.Images.ImageEditParamsNonStreaming>({ image, mask, prompt: "replace the left half with the sea", steps: 3, seed: 5 }));
    expect(r.data).toHaveLength(1);
    expect(await pngInfo(r.data![0].b64_json!)).toMatchObject({ width: 96, height: 64 });
    expect((r.usage as unknown as { steps: number }).steps).toBe(3);
    // a mask of another size is refused, naming the field
    const wrong = await toFile(await leftHalfMask(64, 64), "mask.png", { type: "image/png" });
    const err = await ai.images.edit(ext<OpenAI.Images.ImageEditParamsNonStreaming>({ image, mask: wrong, prompt: "x", steps: 1 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("mask");
  });

  it("chat.completions.create describes an image, streamed and not, with the same answer and usage", async () => {
    const url = `data:image/png;base64,${(await testImage(64, 64)).toString("base64")}`;
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "user", content: [{ type: "text", text: "What is in this picture?" }, { type: "image_url", image_url: { url } }] },
    ];
    // understanding always encodes the image at the model's 1024-class resolution: few steps keep it quick
    const r = await ai.chat.completions.create({ model: "lumina-dimoo", messages, max_tokens: 8, seed: 3, ...ext<object>({ steps: 2 }) });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message.role).toBe("assistant");
    expect(typeof r.choices[0].message.content).toBe("string"); // the dev model is random: often empty text
    expect(["stop", "length"]).toContain(r.choices[0].finish_reason);
    expect(r.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(8);

    const stream = await ai.chat.completions.create({ model: "lumina-dimoo", messages, max_tokens: 8, seed: 3, ...ext<object>({ steps: 2 }), stream: true, stream_options: { include_usage: true } });
    let text = "";
    let role: string | undefined;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      role ??= chunk.choices[0]?.delta?.role;
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage ??= chunk.usage ?? undefined;
    }
    expect(role).toBe("assistant");
    expect(text).toBe(r.choices[0].message.content);
    expect(finish).toBe(r.choices[0].finish_reason);
    expect(usage).toMatchObject({ prompt_tokens: r.usage!.prompt_tokens, completion_tokens: r.usage!.completion_tokens });
  });

  it("edge errors arrive as the SDK's typed errors", async () => {
    const bad = new OpenAI({ apiKey: "dmo_live_1111111111111111111111111111111111111111", baseURL: `${stack!.edgeUrl}/v1`, maxRetries: 0 });
    const auth = await bad.models.list().catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((auth as InstanceType<typeof OpenAI.APIError>).requestID).toMatch(/^req_/);
    const size = await ai.images.generate(ext<GenParams>({ prompt: "x", size: "100x100" })).catch((e: unknown) => e);
    expect(size).toBeInstanceOf(OpenAI.BadRequestError);
    expect((size as InstanceType<typeof OpenAI.APIError>).param).toBe("size");
    const models = await ai.models.list();
    expect(models.data.map((m) => m.id)).toContain("lumina-dimoo");
  });
});
